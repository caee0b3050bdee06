"""Fixtures for the breaker's integration tests: spawned worker processes, always stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.breaker.spawning import Spawner


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    spawner = Spawner()
    yield spawner
    spawner.stop_all()
