"""Every Redis key of the fleet, in one place.

Keys hang off a configurable prefix so several fleets can share one Redis. The consumers'
channels are ``tickfleet.ticks.channels``; queue and task names ``tickfleet.keyspace.tasks``;
stream names ``tickfleet.keyspace.streams``.
"""

from __future__ import annotations

from dataclasses import dataclass

# The breaker that guards publishing: its state lives under ``breaker_state(PUBLISH_BREAKER)``.
PUBLISH_BREAKER = "publish"


def publish_breaker(underlying: str | None = None) -> str:
    """The breaker of publishing to one Redis (``publish``), or on a Redis Cluster of one
    underlying's hash slot (``publish:nifty``; see ``tickfleet.stream.publishing``)."""
    return PUBLISH_BREAKER if underlying is None else f"{PUBLISH_BREAKER}:{underlying.lower()}"


@dataclass(frozen=True, slots=True)
class Keys:
    """Redis key names under one prefix (``tickfleet:`` by default)."""

    prefix: str = "tickfleet:"

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # bounded reload
    @property
    def reload_state(self) -> str:
        """Hash: generation, done_generation, pending, timestamps, counters, last error."""
        return self._k("reload", "state")

    @property
    def reload_scheduled(self) -> str:
        """Marker: a reload task is scheduled; its value names the scheduling request."""
        return self._k("reload", "scheduled")

    @property
    def reload_lock(self) -> str:
        return self._k("reload", "lock")

    # assignment
    @property
    def assignment(self) -> str:
        """JSON document of the current token → account/connection assignment."""
        return self._k("assignment", "current")

    @property
    def catalog(self) -> str:
        """Hash token → registry row of every assigned token (written by the reload)."""
        return self._k("assignment", "catalog")

    @property
    def control_channel(self) -> str:
        return self._k("control")

    # streams
    def stream_lease(self, stream: str) -> str:
        return self._k("stream", stream, "lease")

    def stream_epoch(self, stream: str) -> str:
        """Counter: the fencing epoch of the stream's latest lease holder (see
        ``tickfleet.runtime.lease``); the publisher's fence compares against it."""
        return self._k("stream", stream, "epoch")

    def stream_standby(self, stream: str) -> str:
        """Marker "<worker hostname> <owner>" of the stream's hot standby, with a short TTL
        the standby keeps renewing (see ``tickfleet.stream.standby``)."""
        return self._k("stream", stream, "standby")

    def stream_starting(self, stream: str) -> str:
        return self._k("stream", stream, "starting")

    def stream_status(self, stream: str) -> str:
        return self._k("stream", stream, "status")

    def stream_excluded(self, stream: str) -> str:
        """JSON token → reason of assigned tokens the stream does not stream."""
        return self._k("stream", stream, "excluded")

    @property
    def stream_workers(self) -> str:
        """Hash hostname → the stream worker's own record (see ``tickfleet.control.presence``)."""
        return self._k("workers", "stream")

    @property
    def streams_known(self) -> str:
        """Set of stream names that have ever reported status (for /health)."""
        return self._k("streams")

    @property
    def task_failures(self) -> str:
        """Capped list of the latest supervised-task failures (JSON)."""
        return self._k("failures")

    # Kite sessions
    def session(self, account_id: str) -> str:
        """Hash: the account's session state (valid or refused), why, since when."""
        return self._k("session", account_id, "state")

    def session_token(self, account_id: str) -> str:
        """Hash: the access token an operator posted for the account (api key, time)."""
        return self._k("session", account_id, "token")

    def session_refused(self, account_id: str) -> str:
        """Set of fingerprints of the account's credentials Kite refused."""
        return self._k("session", account_id, "refused")

    # Kite historical candles
    def history_rate(self, api_key: str) -> str:
        """Sorted set: when the fleet's latest historical requests on ``api_key`` were
        admitted (Redis time, µs), for the per-key rate limit."""
        return self._k("history", "rate", api_key)

    def history_candles(self, query: str) -> str:
        """Candles of a closed range, as Kite answered them (JSON rows, with a TTL);
        ``query`` names token, interval, range and flags."""
        return self._k("history", "candles", query)

    @property
    def history_bars(self) -> str:
        """List: the streams' bar segments waiting for the SQL store (one JSON array of
        segments per flush), see ``tickfleet.history.bars``."""
        return self._k("history", "bars")

    @property
    def history_bars_taken(self) -> str:
        """The segments a move took from ``history_bars``, until they are in SQL."""
        return self._k("history", "bars", "taken")

    # simulated market
    def market_snapshot(self, underlying: str) -> str:
        """One atomic value: the latest versioned snapshot of an underlying's index (JSON)."""
        return self._k("market", underlying, "index")

    # circuit breaker
    def breaker_state(self, name: str) -> str:
        return self._k("breaker", name, "state")

    def breaker_probes(self, name: str) -> str:
        return self._k("breaker", name, "probes")

    def breaker_failures(self, name: str) -> str:
        """Sorted set of the fleet's recent failures (score = wall time) for the window."""
        return self._k("breaker", name, "failures")

    def breaker_channel(self, name: str) -> str:
        return self._k("breaker", name, "events")

    # beat (celery-redbeat)
    @property
    def beat_entries(self) -> str:
        """RedBeat's key prefix: one hash per schedule entry (definition and last run),
        ``<prefix>:schedule`` (due times) and ``<prefix>:statics``."""
        return self._k("beat") + ":"

    @property
    def beat_leader(self) -> str:
        """RedBeat's lock: only the beat holding it sends anything. The key the previous
        lease-based scheduler used, so an old and a new beat exclude each other too."""
        return self._k("beat", "leader")

    # metrics
    @property
    def metrics(self) -> MetricKeys:
        return MetricKeys(self._k("metrics") + ":")


@dataclass(frozen=True, slots=True)
class MetricKeys:
    """Metric hashes (label values → value), see ``tickfleet.metrics``."""

    prefix: str

    def series(self, name: str) -> str:
        return self.prefix + name

    def deadlines(self, name: str) -> str:
        """Sorted set: a gauge's label values → when the series expires (Redis time, ms)."""
        return self.prefix + name + ":deadlines"
