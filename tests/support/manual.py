"""The manual in ``docs/`` as the tests that keep it true read it: pages and their tables.

Every test that holds a page to the code (settings, routes, command line, metrics) reads
the page through these helpers, which take the page's text rather than a path, so a unit
test can hand them a copy with a row removed and see the comparison fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
TRAFFIC = "traffic"
_METRIC_TYPES = ("counter", "gauge", "histogram")


def page(name: str) -> str:
    """The text of one page, ``name`` relative to ``docs/`` (``"metrics.md"``)."""
    return (DOCS / name).read_text()


def table(text: str, first_column: str) -> list[list[str]]:
    """The body rows of the first table whose header starts with ``first_column``, each
    a list of stripped cells; a pipe escaped as ``\\|`` stays inside its cell."""
    rows: list[list[str]] = []
    lines = iter(text.splitlines())
    for line in lines:
        if _cells(line)[:1] == [first_column]:
            next(lines, None)  # the | --- | line
            for row in lines:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            break
    assert rows, f"no table headed {first_column!r}"
    return rows


def _cells(line: str) -> list[str]:
    if not line.startswith("|"):
        return []
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


@dataclass(frozen=True, slots=True)
class Listed:
    """One row of the metrics table (``docs/metrics.md``)."""

    name: str
    type: str
    labels: frozenset[str]
    moves: str

    @property
    def must_count(self) -> bool:
        """Marked "traffic": the test's traffic must have taken it above zero."""
        return self.moves == TRAFFIC

    @property
    def must_have_series(self) -> bool:
        """Marked "traffic (a series …)": series exist, their value may be 0."""
        return self.moves.startswith(f"{TRAFFIC} (")


def listed_metrics(text: str) -> dict[str, Listed]:
    """The rows of the metrics table (metric, type, labels, meaning, moves when)."""
    listed = {}
    for cells in table(text, "metric"):
        assert len(cells) == 5, (
            f"a metrics row is metric | type | labels | meaning | moves: {cells}"
        )
        name, kind, labels, _, moves = cells
        assert re.fullmatch(r"`[a-z_]+`", name) and kind in _METRIC_TYPES, cells
        listed[name.strip("`")] = Listed(
            name.strip("`"), kind, frozenset(re.findall(r"`([a-z_]+)`", labels)), moves
        )
    return listed
