"""The manual stays true to the code: every setting, route, subcommand and recorded metric.

Each check reads a page's text (``tests/support/manual.py``) and returns its drift: what
the code has that the page lacks, and what the page names that the code does not have.
The drift is empty for the pages in ``docs/``, and a copy with one name changed must show
it in both directions, so a check that reads the wrong table, or nothing, fails here
instead of passing forever.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import pytest
from pydantic import AliasChoices

from producers.api import create_app
from producers.cli.parser import build_parser
from tests.support.manual import DOCS, listed_metrics, page, table
from tickfleet.config.settings import Settings
from tickfleet.metrics.catalog import CATALOG

README = DOCS.parent / "README.md"

# Read by Flower itself (``--address``, ``--basic-auth``), not by Settings.
FLOWER_VARIABLES = {"FLOWER_ADDRESS", "FLOWER_BASIC_AUTH"}


@dataclass(frozen=True, slots=True)
class Drift:
    missing: frozenset[str]  # in the code, not on the page
    unknown: frozenset[str]  # on the page, not in the code


def drift(code: set[str], documented: set[str]) -> Drift:
    return Drift(frozenset(code - documented), frozenset(documented - code))


NONE = Drift(frozenset(), frozenset())


def env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(
            alias.choices[0] if isinstance(alias, AliasChoices) else f"TICKFLEET_{name.upper()}"
        )
    return {str(n) for n in names}


def settings_drift(text: str) -> Drift:
    """The configuration table's first column against every variable Settings reads."""
    rows = table(text, "variable")
    documented = {name for cells in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0])}
    return drift(env_names(), documented - FLOWER_VARIABLES)


@cache
def api_routes() -> frozenset[str]:
    # The OpenAPI document lists every operation; included routers do not show as paths
    # in ``app.routes`` on every FastAPI version.
    paths = create_app().openapi()["paths"]
    return frozenset(f"{method.upper()} {path}" for path, item in paths.items() for method in item)


def routes_drift(text: str) -> Drift:
    """The REST table's routes (``METHOD /path`` before any ``?`` or ``[``) against the
    OpenAPI document."""
    documented = set()
    for cells in table(text, "route"):
        route = re.fullmatch(r"`([A-Z]+ /[^`?\[]*)[^`]*`", cells[0])
        assert route, cells[0]
        documented.add(route[1])
    return drift(set(api_routes()), documented)


def parsed_commands() -> set[str]:
    """Every subcommand of ``tickfleet`` and each of its long options, as "name --option"."""
    subparsers = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    found = set()
    for name, parser in subparsers.choices.items():
        found.add(name)
        for action in parser._actions:
            found |= {f"{name} {o}" for o in action.option_strings if o.startswith("--")}
    return found - {f"{name} --help" for name in subparsers.choices}


def cli_drift(text: str) -> Drift:
    """The synopsis block of the command-line page: a line starting ``tickfleet NAME`` opens
    a subcommand, and every ``--option`` until the next one is one of its options."""
    synopsis = text.split("```", 2)[1]
    documented: set[str] = set()
    name = ""
    for line in synopsis.splitlines():
        if line.startswith("tickfleet "):
            name = line.split()[1]
            documented.add(name)
        documented |= {f"{name} {o}" for o in re.findall(r"--[a-z][a-z-]*", line)}
    return drift(parsed_commands(), documented)


def catalog_drift(text: str) -> Drift:
    """The metrics table against what processes record
    (``tickfleet.metrics.catalog.CATALOG``): name, type and labels. The families
    ``/health``'s code computes at scrape time are not in the catalog;
    ``tests/integration/monitor/test_metrics_listed.py`` holds the whole table to a running
    fleet's ``/metrics``."""
    listed = listed_metrics(text).values()
    recorded = {f"{m.name} {m.kind} {sorted(m.labels)}" for m in CATALOG.values()}
    documented = {f"{m.name} {m.type} {sorted(m.labels)}" for m in listed if m.name in CATALOG}
    return drift(recorded, documented)


Check = Callable[[str], Drift]
CHECKS: list[tuple[Check, str]] = [
    (settings_drift, "configuration.md"),
    (routes_drift, "api.md"),
    (cli_drift, "cli.md"),
    (catalog_drift, "metrics.md"),
]


@pytest.mark.parametrize(("check", "name"), CHECKS, ids=[name for _, name in CHECKS])
def test_the_page_matches_the_code(check: Check, name: str) -> None:
    found = check(page(name))
    assert found == NONE, (
        f"docs/{name}: in the code, not on the page: {sorted(found.missing)}; "
        f"on the page, not in the code: {sorted(found.unknown)}"
    )


# One name changed on a copy of each page: the old one goes missing, the new one is unknown.
BROKEN: list[tuple[Check, str, str, str, Drift]] = [
    (
        settings_drift,
        "configuration.md",
        "| `TICKFLEET_MOCK_SEED` |",
        "| `TICKFLEET_MOCK_SEEDS` |",
        Drift(frozenset({"TICKFLEET_MOCK_SEED"}), frozenset({"TICKFLEET_MOCK_SEEDS"})),
    ),
    (
        routes_drift,
        "api.md",
        "| `DELETE /subscriptions/{token}` |",
        "| `DELETE /subscription/{token}` |",
        Drift(
            frozenset({"DELETE /subscriptions/{token}"}),
            frozenset({"DELETE /subscription/{token}"}),
        ),
    ),
    (
        cli_drift,
        "cli.md",
        "[--continuous] [--oi] [--csv]",
        "[--continuous] [--oi] [--cvs]",
        Drift(frozenset({"history --csv"}), frozenset({"history --cvs"})),
    ),
    (
        cli_drift,
        "cli.md",
        "tickfleet refresh-instruments ",
        "tickfleet refresh-instrument ",
        Drift(frozenset({"refresh-instruments"}), frozenset({"refresh-instrument"})),
    ),
    (
        catalog_drift,
        "metrics.md",
        "| `kite_frames_total` | counter | `connection` |",
        "| `kite_frames_total` | counter | `stream` |",
        Drift(
            frozenset({"kite_frames_total counter ['connection']"}),
            frozenset({"kite_frames_total counter ['stream']"}),
        ),
    ),
]


@pytest.mark.parametrize(
    ("check", "name", "old", "new", "expected"),
    BROKEN,
    ids=[f"{name}:{new}" for _, name, _, new, _ in BROKEN],
)
def test_a_changed_name_is_drift(
    check: Check, name: str, old: str, new: str, expected: Drift
) -> None:
    text = page(name)
    assert text.count(old) == 1, old
    assert check(text.replace(old, new)) == expected


@pytest.mark.parametrize(
    ("check", "name", "row"),
    [
        (settings_drift, "configuration.md", "| `REDIS_URL` |"),
        (routes_drift, "api.md", "| `GET /metrics` |"),
        (cli_drift, "cli.md", "tickfleet tail "),
        (catalog_drift, "metrics.md", "| `reload_runs_total` |"),
    ],
    ids=["setting", "route", "subcommand", "metric"],
)
def test_a_row_removed_is_missing(check: Check, name: str, row: str) -> None:
    lines = page(name).splitlines()
    kept = [line for line in lines if not line.startswith(row)]
    assert len(kept) == len(lines) - 1, row
    assert check("\n".join(kept)).missing, row


def test_the_readme_is_a_front_page() -> None:
    """Short, with the two commands CI and newcomers rely on, and links into the manual
    that open on GitHub as on disk."""
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    for command in ("make run", "make test", "make docs"):
        assert command in text, command
    links = set(re.findall(r"\]\((docs/[^)#]+)\)", text))
    assert len(links) >= 15, links
    assert {link for link in links if not (DOCS.parent / link).is_file()} == set()
