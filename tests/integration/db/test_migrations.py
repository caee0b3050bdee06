"""The schema comes from the migrations alone, and they end where the models are.

Each test runs on an empty SQLite file and an empty PostgreSQL schema: ``head`` must
equal the models there (what autogenerate would find is nothing), the baseline must equal
what 0.3.0's ``create_all`` made, and ``tickfleet init-db`` must bring such an old
database to ``head`` keeping its id and its rows.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest
from alembic import command

from tests.integration.db.legacy import LEGACY, create_legacy_database
from tests.integration.db.schema import differences, head, revision
from tests.support.instants import FLEET_NOW
from tests.support.processes import BIN, run_text
from tickfleet.config.settings import Settings
from tickfleet.migrations import BASELINE, alembic_config, initialise, target_metadata
from tickfleet.storage.sql import make_engine
from tickfleet.subscriptions.store import SubscriptionRequest
from tickfleet.wiring.services import Services

pytestmark = [pytest.mark.timeout(60), pytest.mark.processes]

LEGACY_TOKEN = 12073986
TOP_TOKEN = 2**32 - 1


def test_an_empty_database_migrated_to_head_equals_the_models(database_url: str) -> None:
    engine = make_engine(database_url, create=True)
    try:
        database = initialise(engine, FLEET_NOW)
        assert initialise(engine, FLEET_NOW) == database  # a re-run keeps the stamp
        assert differences(engine, target_metadata()) == []
        assert revision(engine) == head(engine)
    finally:
        engine.dispose()


def test_the_baseline_is_the_schema_0_3_0_created(database_url: str) -> None:
    engine = make_engine(database_url, create=True)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), BASELINE)
        assert differences(engine, LEGACY) == []
    finally:
        engine.dispose()


def _init_db(settings: Settings) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TICKFLEET_")}
    clean.pop("DATABASE_URL", None)
    return run_text(
        [str(BIN / "tickfleet"), "init-db", "--wait", "5"],
        env={**clean, **settings.to_env()},
        timeout=45,
    )


def test_init_db_brings_a_database_from_before_migrations_to_head(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url=database_url)
    engine = make_engine(database_url, create=True)
    try:
        create_legacy_database(engine, "legacy-id", LEGACY_TOKEN, FLEET_NOW)
        assert revision(engine) is None

        result = _init_db(settings)

        assert result.returncode == 0, result.stdout + result.stderr
        assert "(id legacy-id)" in result.stdout
        assert revision(engine) == head(engine)
        assert differences(engine, target_metadata()) == []
    finally:
        engine.dispose()
    services = Services(settings)
    try:
        kept = services.subscriptions.get(LEGACY_TOKEN)
        assert kept is not None and kept.active
        [top] = services.subscriptions.upsert_many([SubscriptionRequest(TOP_TOKEN)], FLEET_NOW)
        assert top.token == TOP_TOKEN
        assert services.registry.count() > 0  # init-db went on to load the instruments
    finally:
        services.close()
