"""Where the prices a chain shows come from, in words a trader cannot mistake.

The chain page once said "feed live" over simulated prices: its pill meant that the
page's event stream was connected, and a trader read "live" as the market. So the page
names the source apart from its connection, and the source is what the streams report
they are running (each stream's status: its feed mode, and for a replay the day and
speed), not what the configuration asks for: under ``TICKFLEET_FEED=auto`` an account
without credentials simulates in market hours, and one with credentials goes live at
the open without anyone changing a setting.

Account streams price the options, the underlying stream the index; a chain mixing
sources (one account live, another simulated) says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tickfleet.keyspace.streams import stream_account

SourceKind = Literal["simulated", "live", "replay", "mixed", "none"]
_KIND_OF_MODE: Mapping[str, SourceKind] = {"mock": "simulated", "live": "live", "replay": "replay"}


@dataclass(frozen=True, slots=True)
class Replay:
    """A replay of a recorded day (``date`` YYYY-MM-DD) at ``speed`` times real time;
    either is None when the stream does not say."""

    date: str | None
    speed: float | None

    def words(self) -> str:
        day = f"of {self.date}" if self.date else "of a recorded day"
        pace = f" at {self.speed:g}\N{MULTIPLICATION SIGN}" if self.speed else ""
        return f"replay {day}{pace}"


@dataclass(frozen=True, slots=True)
class PriceSource:
    """The source of the prices streamed now: its kind, the accounts whose Kite feed is
    live, the replay's day and speed, and a label for people."""

    kind: SourceKind
    label: str
    accounts: tuple[str, ...] = ()
    replay: Replay | None = None

    def document(self) -> dict[str, Any]:
        replay = self.replay
        return {
            "kind": self.kind,
            "label": self.label,
            "accounts": list(self.accounts),
            "replay": None if replay is None else {"date": replay.date, "speed": replay.speed},
        }


@dataclass(frozen=True, slots=True)
class _Running:
    kind: SourceKind
    stream: str
    replay: Replay | None


def price_source(streams: Mapping[str, Mapping[str, Any]]) -> PriceSource:
    """The source of what ``streams`` (``/health``'s, by name) report they stream now."""
    running = [r for name, s in sorted(streams.items()) if (r := _running(name, s))]
    kinds = {r.kind for r in running}
    accounts = _accounts(r for r in running if r.kind == "live")
    replay = next((r.replay for r in running if r.replay is not None), None)
    if not kinds:
        return PriceSource("none", "No feed running — the prices shown are the last received")
    if len(kinds) > 1:
        return PriceSource("mixed", _mixed(running), accounts, replay)
    kind = kinds.pop()
    if kind == "simulated":
        return PriceSource(kind, "Simulated market — not real prices")
    if kind == "replay":
        words = replay.words() if replay else "replay of a recorded day"
        return PriceSource(kind, f"{words.capitalize()} — recorded prices, not live", (), replay)
    return PriceSource(kind, f"Live — Kite ({_account_words(accounts)})", accounts)


def _running(name: str, status: Mapping[str, Any]) -> _Running | None:
    kind = _KIND_OF_MODE.get(str(status.get("mode")))
    if kind is None:
        return None  # starting, idle, stopped: it streams nothing
    replay = None
    if kind == "replay":
        speed = status.get("replay_speed")
        replay = Replay(status.get("replay_date") or None, float(speed) if speed else None)
    return _Running(kind, name, replay)


def _accounts(running: Iterable[_Running]) -> tuple[str, ...]:
    return tuple(a for r in running if (a := stream_account(r.stream)) is not None)


def _account_words(accounts: tuple[str, ...]) -> str:
    if not accounts:
        return "index only"
    return ("account " if len(accounts) == 1 else "accounts ") + ", ".join(accounts)


def _mixed(running: list[_Running]) -> str:
    """``Mixed — live Kite (account a); simulated market (account b): not all prices are
    live market prices`` (the underlying stream named as the index)."""
    parts: dict[SourceKind, list[str]] = {}
    for r in running:
        parts.setdefault(r.kind, []).append(stream_account(r.stream) or "index")
    words = {"live": "live Kite", "simulated": "simulated market", "replay": "replay"}
    listed = "; ".join(f"{words[k]} ({', '.join(v)})" for k, v in sorted(parts.items()))
    return f"Mixed — {listed}: not all prices are live market prices"
