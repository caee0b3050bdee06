"""The formats ``tickfleet ticks export`` writes, named apart from the writers so that the
command line can list them without loading Arrow."""

from __future__ import annotations

from typing import Literal

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")
