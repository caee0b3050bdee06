from __future__ import annotations

from collections.abc import Iterator

import pytest

from tickfleet.instruments import InstrumentRegistry, InstrumentRow
from tickfleet.storage.sql import Base, SessionFactory, make_engine, make_session_factory


@pytest.fixture
def session_factory(database_url: str) -> Iterator[SessionFactory]:
    """Sessions on a fresh database holding only the instruments table."""
    engine = make_engine(database_url, create=True)
    Base.metadata.tables[InstrumentRow.__tablename__].create(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def registry(session_factory: SessionFactory) -> InstrumentRegistry:
    return InstrumentRegistry(session_factory)
