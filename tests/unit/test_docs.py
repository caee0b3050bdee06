"""The README stays true to the code: every setting documented, every route listed."""

import re
from pathlib import Path

from pydantic import AliasChoices

from producers.api import create_app
from tickfleet.config.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(
            alias.choices[0] if isinstance(alias, AliasChoices) else f"TICKFLEET_{name.upper()}"
        )
    return {str(n) for n in names}


def test_every_setting_is_in_the_configuration_table() -> None:
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]*_[A-Z0-9_]+)`", table))
    assert env_names() - documented == set()
    assert (
        documented
        - env_names()
        - {"API_HOST", "FLOWER_ADDRESS", "FLOWER_PORT", "FLOWER_BASIC_AUTH", "STREAM_CONCURRENCY"}
        == set()
    )


def test_every_route_is_in_the_api_table() -> None:
    # The OpenAPI document lists every operation; included routers do not show as paths
    # in ``app.routes`` on every FastAPI version.
    paths = create_app().openapi()["paths"]
    routes = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert len(routes) >= 10, routes  # the whole API, not an empty list
    table = README.split("## REST API", 1)[1].split("\n## ", 1)[0]
    for method, path in routes:
        assert re.search(rf"`{method} {re.escape(path)}[`?\[]", table), f"{method} {path}"
