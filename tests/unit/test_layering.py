"""The layout's contract: no import circle, and each package imports only what lies below it.

``docs/architecture/layout.md`` draws these layers. A package may import packages of its
own tier or lower ones; within a tier, the graph between packages must stay free of
circles, and a few pairs are kept apart on purpose (``SEPARATE``). The domain package
never imports the frameworks nor the processes built on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support.import_graph import Graph, collapse, cycles, read_imports

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("tickfleet", "workers", "producers")

# Top tier first. Each tier names tickfleet's subpackages by their last part.
TIERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("wiring", frozenset({"wiring"})),
    ("fleet roles", frozenset({"control", "stream", "chain", "health", "migrations"})),
    (
        "domain",
        frozenset(
            {
                "subscriptions",
                "assignment",
                "history",
                "instruments",
                "breaker",
                "accounts",
                "kite",
                "market",
                "ticks",
                "supervision",
                "archive",
            }
        ),
    ),
    ("basics", frozenset({"config", "runtime", "keyspace", "metrics", "storage"})),
)

# (importer, imported): kept apart although their tiers would allow it.
SEPARATE: tuple[tuple[str, str, str], ...] = (
    ("stream", "control", "streams learn of the control plane only through the assignment"),
    ("control", "stream", "the control plane starts streams by task name, never runs them"),
    ("chain", "stream", "the chain reads the latest ticks in Redis, not a stream's memory"),
    ("kite", "instruments", "the Kite adapter knows Kite's tokens, not the fleet's registry"),
    ("kite", "history", "the Kite adapter answers candles; history decides what to ask"),
    ("market", "instruments", "pricing needs a contract's fields, not the registry"),
)

FRAMEWORKS = frozenset({"celery", "kombu", "redbeat", "flower", "fastapi", "starlette"})
FRAMEWORKS |= frozenset({"sse_starlette", "uvicorn", "workers", "producers"})


def subpackage_graph(local: Graph) -> Graph:
    """tickfleet's subpackages and which import which (``tickfleet.stream`` → ``stream``)."""
    inside = {m: deps for m, deps in local.items() if m.startswith("tickfleet.")}
    named = {
        m: frozenset(d for d in deps if d.startswith("tickfleet.")) for m, deps in inside.items()
    }
    return {
        name.removeprefix("tickfleet."): frozenset(d.removeprefix("tickfleet.") for d in deps)
        for name, deps in collapse(named).items()
    }


def tier_of(package: str) -> int:
    for rank, (_, members) in enumerate(TIERS):
        if package in members:
            return rank
    raise AssertionError(f"tickfleet.{package} is in no tier: add it to TIERS and the layout page")


def layer_breaches(packages: Graph) -> list[str]:
    """Imports that reach up a tier or join a pair kept apart, with why each is wrong."""
    breaches = []
    for package, imported in sorted(packages.items()):
        for other in sorted(imported):
            if tier_of(other) < tier_of(package):
                low, high = TIERS[tier_of(package)][0], TIERS[tier_of(other)][0]
                breaches.append(f"{package} ({low}) imports {other} ({high})")
        breaches.extend(
            f"{package} imports {other}: {why}"
            for importer, other, why in SEPARATE
            if importer == package and other in imported
        )
    return breaches


def framework_imports(external: Mapping[str, frozenset[str]]) -> list[str]:
    return [
        f"{module} imports {', '.join(sorted(names & FRAMEWORKS))}"
        for module, names in sorted(external.items())
        if module.split(".")[0] == "tickfleet" and names & FRAMEWORKS
    ]


@pytest.fixture(scope="module")
def project() -> tuple[Graph, Mapping[str, frozenset[str]]]:
    imports = read_imports(ROOT, PROJECT)
    return imports.local, imports.external


def test_no_module_imports_another_in_a_circle(project: tuple[Graph, object]) -> None:
    assert cycles(project[0]) == []


def test_no_two_tickfleet_subpackages_import_each_other_in_a_circle(
    project: tuple[Graph, object],
) -> None:
    assert cycles(subpackage_graph(project[0])) == []


def test_tickfleet_imports_no_framework_and_no_process(
    project: tuple[object, Mapping[str, frozenset[str]]],
) -> None:
    assert framework_imports(project[1]) == []


def test_workers_never_import_producers(project: tuple[Graph, object]) -> None:
    assert [m for m, deps in project[0].items() if m.startswith("workers") and any(
        d.startswith("producers") for d in deps
    )] == []  # fmt: skip


def test_every_package_imports_only_its_tier_and_below(project: tuple[Graph, object]) -> None:
    packages = subpackage_graph(project[0])
    assert set(packages) - {"", "tickfleet"} <= {p for _, tier in TIERS for p in tier}
    assert layer_breaches(packages) == []


# --- the contract catches what it must: planted circles and breaches ----------------------


def _plant(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_planted_module_circle_is_found_even_through_a_function_level_import(
    tmp_path: Path,
) -> None:
    _plant(
        tmp_path,
        {
            "tickfleet/__init__.py": "",
            "tickfleet/a.py": "from tickfleet.b import B\n",
            "tickfleet/b.py": "def f():\n    from tickfleet import a\n",
            "tickfleet/c.py": "from . import a\n",
        },
    )
    local = read_imports(tmp_path, ["tickfleet"]).local
    assert cycles(local) == [["tickfleet.a", "tickfleet.b"]]


def test_a_planted_circle_between_subpackages_is_found_though_modules_form_none(
    tmp_path: Path,
) -> None:
    _plant(
        tmp_path,
        {
            "tickfleet/__init__.py": "",
            "tickfleet/kite/__init__.py": "",
            "tickfleet/kite/rest.py": "from tickfleet.history.candles import Candle\n",
            "tickfleet/history/__init__.py": "",
            "tickfleet/history/candles.py": "class Candle: ...\n",
            "tickfleet/history/source.py": "from tickfleet.kite.rest import Client\n",
        },
    )
    local = read_imports(tmp_path, ["tickfleet"]).local
    assert cycles(local) == []
    assert cycles(subpackage_graph(local)) == [["history", "kite"]]


def test_a_planted_upward_import_and_framework_import_are_named(tmp_path: Path) -> None:
    _plant(
        tmp_path,
        {
            "tickfleet/__init__.py": "",
            "tickfleet/market/__init__.py": "",
            "tickfleet/market/hours.py": "from tickfleet.wiring.services import S\nimport celery\n",
            "tickfleet/wiring/__init__.py": "",
            "tickfleet/wiring/services.py": "from tickfleet.market import hours\n",
        },
    )
    imports = read_imports(tmp_path, ["tickfleet"])
    packages = subpackage_graph(imports.local)
    assert layer_breaches(packages) == ["market (domain) imports wiring (wiring)"]
    assert framework_imports(imports.external) == ["tickfleet.market.hours imports celery"]
