"""The ``instruments`` SQL table and the conversions between its rows and ``Instrument``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, DateTime, Double, Index, Integer, String
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from tickfleet.instruments.model import INSTRUMENT_FIELDS, Instrument
from tickfleet.storage.sql import Base


class InstrumentRow(Base):
    """One tradable instrument as last seen by a refresh.

    Subscriptions refer to instruments by token value, not by foreign key, so a refresh
    may delete a contract that is still subscribed; the reload then deactivates it.
    """

    __tablename__ = "instruments"
    __table_args__ = (
        Index("ix_instruments_chain", "underlying", "expiry", "instrument_type", "strike"),
    )

    instrument_token: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    exchange_token: Mapped[int] = mapped_column(BigInteger)
    tradingsymbol: Mapped[str] = mapped_column(String)
    name: Mapped[str] = mapped_column(String)
    underlying: Mapped[str] = mapped_column(String)
    last_price: Mapped[float] = mapped_column(Double)
    expiry: Mapped[date | None] = mapped_column(Date)
    strike: Mapped[float] = mapped_column(Double)
    tick_size: Mapped[float] = mapped_column(Double)
    lot_size: Mapped[int] = mapped_column(Integer)
    instrument_type: Mapped[str] = mapped_column(String)
    segment: Mapped[str] = mapped_column(String)
    exchange: Mapped[str] = mapped_column(String)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def instrument_columns() -> list[InstrumentedAttribute[Any]]:
    """The row's columns in ``Instrument`` field order, so a result row builds one directly."""
    return [getattr(InstrumentRow, name) for name in INSTRUMENT_FIELDS]


def row_values(instrument: Instrument, refreshed_at: datetime) -> dict[str, Any]:
    """Column values of ``instrument`` for a bulk insert or update."""
    values = {name: getattr(instrument, name) for name in INSTRUMENT_FIELDS}
    values["refreshed_at"] = refreshed_at
    return values
