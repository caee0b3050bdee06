"""Kite's published historical responses (``data/``), as rows and as the candles they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

DATA = Path(__file__).resolve().parent / "data"


def kite_answer(name: str) -> dict[str, Any]:
    """The whole response document: ``{"status": "success", "data": {"candles": [...]}}``."""
    document: dict[str, Any] = orjson.loads((DATA / f"{name}.json").read_bytes())
    return document


def kite_rows(name: str) -> list[list[Any]]:
    rows: list[list[Any]] = kite_answer(name)["data"]["candles"]
    return rows


MINUTE_ROWS = kite_rows("historical_minute")
OI_ROWS = kite_rows("historical_oi")
