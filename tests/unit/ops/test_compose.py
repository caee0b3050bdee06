"""The production compose path holds together without a Docker engine to try it.

``compose_checks`` compares docker-compose.yml, .env.example, the Dockerfile and
deploy/ with the code; here it runs on the repository's files, which must pass, and on
broken copies of them, which must each be caught: a check that passes anything would
leave the compose path as unvalidated as before.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from flower.command import default_options as flower_options
from prometheus_client.parser import text_string_to_metric_families
from pydantic import AliasChoices

from producers.api import create_app
from tests.support.instants import FLEET_NOW, offset_to
from tests.support.redis_server import RedisServer
from tests.support.seed import init_database
from tests.unit.ops.compose_checks import Code, Deployment, all_problems, promql_metrics
from tickfleet.config.settings import Settings
from tickfleet.metrics.catalog import CATALOG

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[3]
FILES = ("docker-compose.yml", ".env.example", "Dockerfile", "deploy")
# What each kind of Prometheus series a family of /metrics exposes is called.
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "unknown": ("",),
}


def settings_env_names() -> frozenset[str]:
    """Every env name Settings reads: the prefixed field names and the plain aliases."""
    found: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            found |= {str(c) for c in alias.choices if str(c).isupper()}
        else:
            found.add(f"TICKFLEET_{name.upper()}")
    return frozenset(found)


def process_env_names() -> frozenset[str]:
    """Env the fleet's processes read outside Settings: what ``make run`` exports
    (scripts/fleet-env.sh) and every option Flower takes as ``FLOWER_<OPTION>``."""
    script = (REPO / "scripts" / "fleet-env.sh").read_text()
    exported = set(re.findall(r"^export ([A-Z_][A-Z0-9_]*)=", script, re.MULTILINE))
    return frozenset(exported | {f"FLOWER_{o.upper()}" for o in flower_options})


def exported_metrics(text: str) -> frozenset[str]:
    """The series names a /metrics page exports, by family type (a labelled family with no
    series yet still names its series)."""
    return frozenset(
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SERIES_SUFFIXES[family.type]
    )


@pytest.fixture(scope="module")
def code(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Code:
    """What the project has, read from the code: /metrics of a real API on a real Redis."""
    if not redis_server.running:
        redis_server.start()
    redis_server.client().flushall()
    folder = tmp_path_factory.mktemp("compose-api")
    settings = Settings(
        redis_url=redis_server.url,
        database_url=f"sqlite:///{folder}/tickfleet.db",
        clock_offset_seconds=offset_to(FLEET_NOW),
    )
    init_database(settings)
    app = create_app(settings)
    with TestClient(app) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    return Code(
        env_names=settings_env_names(),
        process_env=process_env_names(),
        metrics=exported_metrics(response.text),
        api_paths=frozenset(app.openapi()["paths"]),
    )


def test_the_repository_compose_path_has_no_problems(code: Code) -> None:
    assert all_problems(Deployment(REPO), code) == []


def test_the_metrics_known_include_every_metric_of_the_catalog(code: Code) -> None:
    """The exported set is read from a live /metrics: it must hold every metric the fleet
    records (tickfleet.metrics.catalog.CATALOG) under its Prometheus series name, and the
    scrape-time gauges, or the metric checks would flag real names."""
    series = {
        spec.name + ("_bucket" if spec.kind == "histogram" else "") for spec in CATALOG.values()
    }
    assert series | {"subscriptions_not_streaming", "kite_connection_up"} <= code.metrics
    assert "ticks_published" not in code.metrics  # a counter's series ends in _total


def test_promql_names_series_not_functions_labels_or_durations() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(tick_publish_latency_seconds_bucket{job="x"}'
        "[$__rate_interval]))) / on (job) group_left up offset 5m"
        " and max(redis_circuit_state) > 1e3"
    )
    assert promql_metrics(expr) == {
        "tick_publish_latency_seconds_bucket",
        "up",
        "redis_circuit_state",
    }


# --- broken copies ------------------------------------------------------------------------

Doc = dict[str, Any]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name in FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    return tmp_path


def edit_yaml(path: Path, change: Callable[[Doc], None]) -> None:
    # Through JSON: compose's anchors load as shared objects; a copy edits one service only.
    doc = json.loads(json.dumps(yaml.safe_load(path.read_text())))
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def compose(change: Callable[[Doc], None]) -> Callable[[Path], None]:
    return lambda root: edit_yaml(root / "docker-compose.yml", change)


def service(name: str, change: Callable[[Doc], None]) -> Callable[[Path], None]:
    return compose(lambda doc: change(doc["services"][name]))


def set_key(key: str, value: object) -> Callable[[Doc], None]:
    return lambda doc: doc.__setitem__(key, value)


def replace_in(relative: str, old: str, new: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        path = root / relative
        text = path.read_text()
        assert old in text, f"{old} is not in {relative}: the broken copy would break nothing"
        path.write_text(text.replace(old, new))

    return change


def celery_command(*args: str) -> list[str]:
    return ["celery", "-A", *args]


BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "unknown module": (
        service("api", set_key("command", ["python", "-m", "producers.apis"])),
        "module producers.apis does not exist",
    ),
    "unknown celery app": (
        service("beat", set_key("command", celery_command("workerz", "beat"))),
        "celery -A workerz: the app does not load",
    ),
    "unknown celery command": (
        service("beat", set_key("command", celery_command("workers", "beats"))),
        "celery beats: no such celery command",
    ),
    "unknown worker option": (
        service("control", set_key("command", celery_command("workers", "worker", "--prefetch=1"))),
        "No such option",
    ),
    "unknown queue": (
        service(
            "control", set_key("command", celery_command("workers", "worker", "-Q", "controls"))
        ),
        "-Q controls: no such queue",
    ),
    "unknown CLI command": (
        service("init", set_key("command", ["tickfleet", "init-database"])),
        "invalid choice: 'init-database'",
    ),
    "unknown import in a health check": (
        service(
            "beat",
            lambda s: s["healthcheck"].__setitem__(
                "test", ["CMD", "python", "-c", "from tickfleet.keyspace.keys import BeatKeys"]
            ),
        ),
        "tickfleet.keyspace.keys has no BeatKeys",
    ),
    "unknown program": (
        service("stream", set_key("command", ["rq", "worker"])),
        "rq is no program of the project's image",
    ),
    "unknown env var": (
        service("api", lambda s: s["environment"].__setitem__("TICKFLEET_API_TOKEN", "x")),
        "environment TICKFLEET_API_TOKEN is read by nothing",
    ),
    "undocumented variable": (
        service(
            "api",
            lambda s: s["environment"].__setitem__("TICKFLEET_LOG_LEVEL", "${LOG_LEVEL:-INFO}"),
        ),
        "${LOG_LEVEL} is not documented in .env.example",
    ),
    "secret with a value in .env.example": (
        replace_in(
            ".env.example", "\nTICKFLEET_API_KEY=\n", "\nTICKFLEET_API_KEY=0123456789abcdefXYZ\n"
        ),
        "gives the secret TICKFLEET_API_KEY a value",
    ),
    "Celery as root": (service("stream", set_key("user", "root")), "stream: runs as root"),
    "image as root": (
        replace_in("Dockerfile", "USER tickfleet", "USER root"),
        "Dockerfile: the image runs as",
    ),
    "port on every interface": (
        service("api", set_key("ports", ["8000:8000"])),
        "not published on 127.0.0.1",
    ),
    "port published twice": (
        service("flower", set_key("ports", ["127.0.0.1:8000:5555"])),
        "host port 8000 is",
    ),
    "port nothing listens on": (
        service("api", set_key("ports", ["127.0.0.1:8000:8080"])),
        "api: publishes 8080, where nothing listens",
    ),
    "health check on a port nothing listens on": (
        replace_in(
            "docker-compose.yml", "127.0.0.1:5555/healthcheck", "127.0.0.1:5556/healthcheck"
        ),
        "flower: its health check asks port 5556",
    ),
    "undeclared volume": (
        compose(lambda doc: doc["volumes"].pop("redisdata")),
        "volume redisdata is used but not declared",
    ),
    "no health check": (
        service("flower", lambda s: s.pop("healthcheck")),
        "flower: no health check",
    ),
    "no restart policy": (
        service("redis", lambda s: s.pop("restart")),
        "redis: restart policy missing",
    ),
    "URL to a port nothing listens on": (
        service("api", lambda s: s["environment"].__setitem__("REDIS_URL", "redis://redis:6380/0")),
        "nothing listens on redis:6380",
    ),
    "Prometheus target that is no service": (
        replace_in("deploy/prometheus/prometheus.yml", '"api:8000"', '"apis:8000"'),
        "apis is no service",
    ),
    "unknown metric in a rule": (
        replace_in(
            "deploy/prometheus/rules/tickfleet.yml",
            "max(redis_circuit_state)",
            "max(redis_breaker_state)",
        ),
        "redis_breaker_state is not a metric the fleet exports",
    ),
    "unknown metric in a panel": (
        replace_in(
            "deploy/grafana/dashboards/tickfleet.json",
            "rate(ticks_published_total",
            "rate(ticks_published",
        ),
        "ticks_published is not a metric the fleet exports",
    ),
    "panel on a data source not provisioned": (
        replace_in(
            "deploy/grafana/provisioning/datasources/prometheus.yml",
            "uid: tickfleet-prometheus",
            "uid: other",
        ),
        "data source tickfleet-prometheus is not provisioned",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_copy_is_caught(case: str, copy: Path, code: Code) -> None:
    break_it, expected = BROKEN[case]
    assert all_problems(Deployment(copy), code) == []  # the copy passes before it is broken
    break_it(copy)
    problems = all_problems(Deployment(copy), code)
    assert any(expected in p for p in problems), problems
