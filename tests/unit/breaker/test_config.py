from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tickfleet.breaker import BreakerConfig
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(10)


def test_defaults_are_the_predecessors() -> None:
    config = BreakerConfig()
    assert config.failure_threshold == 10
    assert config.recovery_timeout == 60.0
    assert config.half_open_max_attempts == 3
    assert (config.window_seconds, config.sync_seconds) == (60.0, 1.0)


def test_from_settings_reads_the_breaker_fields() -> None:
    settings = Settings(
        breaker_failure_threshold=4,
        breaker_recovery_timeout=7.5,
        breaker_half_open_max_attempts=2,
        breaker_window_seconds=30.0,
        breaker_sync_seconds=0.5,
    )

    config = BreakerConfig.from_settings(settings)

    assert config == BreakerConfig(
        failure_threshold=4,
        window_seconds=30.0,
        recovery_timeout=7.5,
        half_open_max_attempts=2,
        sync_seconds=0.5,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"failure_threshold": 0},
        {"half_open_max_attempts": 0},
        {"window_seconds": 0.0},
        {"probe_reservation_ttl": -1.0},
    ],
)
def test_rejects_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(BreakerConfig(), **bad)
