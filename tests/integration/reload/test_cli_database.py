"""`tickfleet reload --now` run from the wrong place never touches the fleet's assignment.

The fleet runs on its own database; the command line is started from another working
directory, without DATABASE_URL, with a relative one, and with another initialised
database. Each time it refuses, says why, creates nothing, and leaves Redis as it was.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.support.processes import BIN, run_text
from tests.support.seed import seed_universe
from tickfleet.config.settings import Settings
from tickfleet.subscriptions.store import SubscriptionRequest
from tickfleet.wiring.services import Services

pytestmark = [pytest.mark.timeout(90), pytest.mark.processes]


class RecordingStarter:
    def start(self, stream: str, worker: str | None = None) -> None:
        pass


def reload_now(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TICKFLEET_")}
    clean.pop("DATABASE_URL", None)
    return run_text(
        [str(BIN / "tickfleet"), "reload", "--now"], env={**clean, **env}, timeout=60, cwd=cwd
    )


def test_reload_now_from_elsewhere_leaves_the_fleet_alone(
    make_settings: Callable[..., Settings], tmp_path: Path, redis_client: redis.Redis
) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path}/fleet/tickfleet.db")
    tokens = [o.instrument_token for o in seed_universe(settings)[:4]]
    services = Services(settings)
    try:
        services.subscriptions.upsert_many(
            [SubscriptionRequest(t) for t in tokens], services.hours.at(services.clock.time())
        )
        services.rebalancer(RecordingStarter())()
        saved = redis_client.get(services.keys.assignment)
    finally:
        services.close()
    assert saved is not None
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in settings.to_env().items() if k != "DATABASE_URL"}

    # No DATABASE_URL: the absolute default under the project's var/, never the cwd.
    default = reload_now(elsewhere, env)
    assert default.returncode in (1, 2), default.stdout + default.stderr
    assert "tickfleet init-db" in default.stderr or "not the one" in default.stdout

    # A relative path is resolved against the working directory, and nothing is created.
    relative = reload_now(elsewhere, {**env, "DATABASE_URL": "sqlite:///./var/tickfleet.db"})
    assert relative.returncode == 2
    assert f"no database file at {elsewhere}/var/tickfleet.db" in relative.stderr
    assert list(elsewhere.iterdir()) == []

    # Another initialised database: refused by its id.
    other = make_settings(database_url=f"sqlite:///{tmp_path}/other.db")
    seed_universe(other)
    foreign = reload_now(elsewhere, {**env, "DATABASE_URL": other.database_url})
    assert foreign.returncode == 1
    assert "not the one the fleet's assignment" in foreign.stdout

    assert redis_client.get(services.keys.assignment) == saved

    # The fleet's own database: the reload runs (and, with nothing changed, keeps v1).
    own = reload_now(elsewhere, {**env, "DATABASE_URL": settings.database_url})
    assert own.returncode == 0, own.stdout + own.stderr
    assert redis_client.get(services.keys.assignment) == saved
