"""The manual builds as a site, offline: ``mkdocs build --strict`` with the venv's mkdocs.

``--strict`` turns every warning into a failure, and ``mkdocs.yml``'s ``validation`` makes
a warning of a link to a missing page, an anchor no page has and a page left out of the nav.
The build runs with every socket refused, and the test fails if anything tried one: a theme
or plugin that fetches fonts or scripts at build time works on a laptop and fails on a
machine without internet.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# mkdocs' own command line, run after every way out to the network is refused (and noted).
OFFLINE_MKDOCS = """
import socket, sys

def refuse(*args, **kwargs):
    print("NETWORK", args, file=sys.stderr)
    raise OSError("no network while building the manual")

socket.socket.connect = socket.socket.connect_ex = refuse
socket.getaddrinfo = socket.create_connection = refuse
from mkdocs.__main__ import cli
cli(prog_name="mkdocs")
"""


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", OFFLINE_MKDOCS, "build", "--strict", "--config-file"]
    return subprocess.run(
        [*argv, str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_the_manual_builds_strict_and_offline(tmp_path: Path) -> None:
    done = build(REPO / "mkdocs.yml", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr and "NETWORK" not in done.stderr, done.stderr
    pages = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("index.html")}
    assert {"index.html", "architecture/layout/index.html", "metrics/index.html"} <= pages
    html = "".join(p.read_text() for p in tmp_path.rglob("*.html"))
    assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html


def test_a_broken_anchor_or_a_page_out_of_the_nav_fails_the_build(tmp_path: Path) -> None:
    """The same configuration on a copy of the pages with a link to an anchor no page has
    and a page the nav leaves out."""
    docs = tmp_path / "docs"
    for source in (REPO / "docs").rglob("*.md"):
        target = docs / source.relative_to(REPO / "docs")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text())
    index = docs / "index.md"
    index.write_text(index.read_text() + "\n[gone](runbook.md#no-such-section)\n")
    (docs / "stray.md").write_text("# Stray\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text((REPO / "mkdocs.yml").read_text())
    done = build(config, tmp_path / "site")
    assert done.returncode != 0
    assert "no-such-section" in done.stderr and "stray.md" in done.stderr, done.stderr


def test_every_code_block_is_closed() -> None:
    """A fence left open swallows the rest of the page into one code block, and mkdocs
    does not warn about it."""
    pages = [REPO / "README.md", *(REPO / "docs").rglob("*.md")]
    assert len(pages) > 15
    for path in pages:
        fences = re.findall(r"^ *```", path.read_text(), re.MULTILINE)
        assert len(fences) % 2 == 0, path
