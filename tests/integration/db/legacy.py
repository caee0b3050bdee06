"""The schema as tickfleet 0.3.0's ``create_all`` made it, frozen here to build old databases.

It must never follow the models: it is what databases in the field were created with.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    insert,
)

LEGACY = MetaData()

META = Table(
    "tickfleet_meta",
    LEGACY,
    Column("key", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
)

SUBSCRIPTIONS = Table(
    "subscriptions",
    LEGACY,
    Column("token", Integer, primary_key=True, autoincrement=False),
    Column("mode", String(8), nullable=False),
    Column("pinned_account", String(64), nullable=True),
    Column("status", String(8), nullable=False, index=True),
    Column("account", String(64), nullable=True),
    Column("connection", Integer, nullable=True),
    Column("reason", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

INSTRUMENTS = Table(
    "instruments",
    LEGACY,
    Column("instrument_token", BigInteger, primary_key=True, autoincrement=False),
    Column("exchange_token", BigInteger, nullable=False),
    Column("tradingsymbol", String, nullable=False),
    Column("name", String, nullable=False),
    Column("underlying", String, nullable=False),
    Column("last_price", Double, nullable=False),
    Column("expiry", Date, nullable=True),
    Column("strike", Double, nullable=False),
    Column("tick_size", Double, nullable=False),
    Column("lot_size", Integer, nullable=False),
    Column("instrument_type", String, nullable=False),
    Column("segment", String, nullable=False),
    Column("exchange", String, nullable=False),
    Column("refreshed_at", DateTime(timezone=True), nullable=False),
    Index("ix_instruments_chain", "underlying", "expiry", "instrument_type", "strike"),
)


def create_legacy_database(engine: Engine, database_id: str, token: int, now: datetime) -> None:
    """What 0.3.0's ``tickfleet init-db`` left: the tables, the stamp, one subscription."""
    LEGACY.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(META),
            [
                {"key": "database_id", "value": database_id},
                {"key": "initialised_at", "value": now.isoformat()},
            ],
        )
        conn.execute(
            insert(SUBSCRIPTIONS),
            [
                {
                    "token": token,
                    "mode": "FULL",
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
