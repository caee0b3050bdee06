"""``tickfleet status``: the health document as an operator reads it at a glance.

``/health`` answers a page of JSON (streams with their leases and connections, the
breaker, every subscription not streaming, failures with tracebacks). ``summarise``
keeps what decides whether someone must act, and ``render`` lays it out: one verdict
line, a stream table, then the problems in red. Without the API key the API shows only
its public summary, and so does this.

``--watch`` redraws it in place: an API that stops answering (restarted, redeployed) is
then one more problem on the screen, not the end of the watch, so the operator who
watches a restart sees the fleet come back without starting the command again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

_STYLE = {"ok": "bold green", "degraded": "bold yellow", "down": "bold red"}


@dataclass(frozen=True, slots=True)
class StreamLine:
    name: str
    holder: str | None
    mode: str | None
    tokens: int
    ticks: int
    last_tick_age: float | None  # seconds, by the fleet clock
    problem: str | None


@dataclass(frozen=True, slots=True)
class FleetSummary:
    status: str
    streams: list[StreamLine] = field(default_factory=list)
    breaker: str | None = None
    subscriptions: dict[str, Any] = field(default_factory=dict)
    stream_workers: int | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    full: bool = True  # False: the public summary (no API key sent)

    @property
    def healthy(self) -> bool:
        return self.status == "ok"


def summarise(doc: dict[str, Any], now: float) -> FleetSummary:
    """The parts of a health document (full or public) that tell whether to act.

    ``now`` is the fleet clock's epoch time: a dead stream's last tick ages with it.
    """
    problems = [f"{part} unreachable: {doc[part].get('error')}" for part in _down_parts(doc)]
    problems += list(doc.get("problems", []))
    workers = doc.get("stream_workers", {}).get("workers")
    return FleetSummary(
        status=str(doc.get("status", "unknown")),
        streams=[_stream(name, s, now) for name, s in sorted(doc.get("streams", {}).items())],
        breaker=doc.get("breaker", {}).get("state"),
        subscriptions=dict(doc.get("subscriptions", {})),
        stream_workers=None if workers is None else len(workers),
        problems=problems,
        warnings=list(doc.get("warnings", [])),
        full="streams" in doc or "redis" in doc,
    )


def unreachable(reason: str) -> FleetSummary:
    """What a watch shows while the API gives no health document: the fleet is unknown."""
    return FleetSummary(status="unknown", problems=[f"API unreachable: {reason}"])


def _down_parts(doc: dict[str, Any]) -> list[str]:
    return [p for p in ("redis", "database") if not doc.get(p, {}).get("ok", True)]


def _stream(name: str, s: dict[str, Any], now: float) -> StreamLine:
    last = s.get("last_tick_at")
    age = None if last is None else round(max(0.0, now - last), 1)
    return StreamLine(
        name,
        s.get("lease_holder"),
        s.get("replay") or s.get("mode"),  # a replay says its day and speed
        int(s.get("tokens") or 0),
        int(s.get("ticks") or 0),
        age,
        s.get("problem"),
    )


def render(summary: FleetSummary) -> RenderableType:
    """The summary for a terminal (rich drops the colours when output is not one)."""
    parts: list[RenderableType] = [_verdict(summary)]
    if summary.streams:
        parts.append(_streams_table(summary.streams))
    parts += [Text(f"problem: {p}", style="red") for p in summary.problems]
    parts += [Text(f"warning: {w}", style="yellow") for w in summary.warnings]
    if not summary.full:
        parts.append(Text("(public summary: set TICKFLEET_API_KEY for the full document)"))
    return Group(*parts)


def render_watched(summary: FleetSummary, at: datetime, every: float) -> RenderableType:
    """The summary with the time it was read: a screen that changes shows it is live."""
    footer = Text(f"as of {at:%H:%M:%S}, every {every:g}s (Ctrl-C to stop)", style="dim")
    return Group(render(summary), footer)


def _verdict(summary: FleetSummary) -> Text:
    word = "healthy" if summary.healthy else summary.status
    line = Text(f"fleet {word}", style=_STYLE.get(summary.status, "bold red"))
    subs = summary.subscriptions
    if subs:
        line.append(
            f"  subscriptions: {subs.get('active', 0)} active, "
            f"{subs.get('streaming', 0)} streaming, {subs.get('not_streaming', 0)} not"
        )
        line.append(_reasons(subs.get("by_reason", {})))
    if summary.breaker is not None:
        line.append("  breaker: ")
        line.append(summary.breaker, style="green" if summary.breaker == "closed" else "red")
    if summary.stream_workers is not None:
        line.append(f"  stream workers: {summary.stream_workers}")
    return line


def _reasons(by_reason: dict[str, int]) -> str:
    listed = ", ".join(f"{reason} {n}" for reason, n in sorted(by_reason.items()) if n)
    return f" ({listed})" if listed else ""


def _streams_table(streams: list[StreamLine]) -> Table:
    table = Table("stream", "lease holder", "mode", "tokens", "ticks", "last tick", "state")
    for s in streams:
        age = "—" if s.last_tick_age is None else f"{s.last_tick_age:.1f}s ago"
        state = Text(s.problem or "ok", style="red" if s.problem else "green")
        table.add_row(
            s.name, s.holder or "—", s.mode or "—", str(s.tokens), str(s.ticks), age, state
        )
    return table
