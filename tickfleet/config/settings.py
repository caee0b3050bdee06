"""The one settings class of tickfleet.

Every option is an environment variable with a default that runs a simulated market on
one machine. Most names carry the ``TICKFLEET_`` prefix; the handful that operators
already know by their plain names (``REDIS_URL``, ``DATABASE_URL``, ``API_PORT``, the
breaker and mock-state knobs inherited from the predecessor service) keep them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, time
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from tickfleet.config.stream_mode import FeedSetting, OffHours
from tickfleet.config.underlyings import KNOWN, Underlying, parse_underlyings

# The project's own folder for local state (``make run``'s SQLite file and Redis files).
# Resolved from where tickfleet is installed, so every process and every working
# directory agrees on one database; production sets DATABASE_URL instead.
PROJECT_VAR = Path(__file__).resolve().parents[1] / "var"
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_VAR / 'tickfleet.db'}"


def _plain(name: str) -> AliasChoices:
    """Accept the un-prefixed env name as well as the field name (for keyword init)."""
    return AliasChoices(name, name.lower())


def _kite(name: str) -> AliasChoices:
    """Kite's names work plain (as Kite's own tools spell them) or with the prefix."""
    return AliasChoices(name, f"TICKFLEET_{name}", name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TICKFLEET_",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # --- connections -------------------------------------------------------------
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=_plain("REDIS_URL"))
    publish_redis_url: str | None = Field(None, validation_alias=_plain("PUBLISH_REDIS_URL"))
    breaker_redis_url: str | None = Field(None, validation_alias=_plain("BREAKER_REDIS_URL"))
    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias=_plain("DATABASE_URL"))
    redis_socket_timeout: float = 2.0
    database_timeout_seconds: float = Field(5.0, gt=0)  # a locked or slow database: 503 after

    # --- names -----------------------------------------------------------------
    key_prefix: str = "tickfleet:"
    # Each underlying's channels and latest-tick hashes: ``<root>:<underlying>:…``
    # (``ticker:nifty:options``), see tickfleet.ticks.channels.
    channel_root: str = "ticker"

    # --- API -------------------------------------------------------------------
    api_key: SecretStr | None = None
    # Where the API listens: outside loopback it needs a real api_key (tickfleet.config.exposure).
    api_host: str = Field("127.0.0.1", validation_alias=_plain("API_HOST"))
    api_port: int = Field(8000, validation_alias=_plain("API_PORT"))
    api_max_body_bytes: int = Field(1_048_576, gt=0)  # larger request bodies get 413
    # One log line per request cost the API 40 % of its POST throughput; a proxy in front
    # usually logs access anyway.
    api_access_log: bool = False
    # The live chain page: one Redis subscription per API process, fanned out to browsers.
    chain_frame_seconds: float = Field(0.25, gt=0)
    chain_max_watchers: int = Field(200, gt=0)  # more live chain pages at once get 503
    chain_idle_seconds: float = Field(10.0, ge=0)  # the subscription outlives its last page

    # --- bounded reload ----------------------------------------------------------
    reload_debounce_seconds: float = Field(1.0, ge=0)
    reload_max_wait_seconds: float = Field(5.0, ge=0)
    reload_min_interval_seconds: float = Field(5.0, ge=0)
    reload_lock_ttl_seconds: float = Field(30.0, gt=0)
    reload_marker_ttl_seconds: float = Field(120.0, gt=0)

    # --- accounts and assignment ---------------------------------------------------
    accounts_file: Path | None = None
    accounts: str | None = None  # JSON list, same shape as the accounts file
    max_tokens_per_connection: int = Field(3000, gt=0, le=3000)
    connections_per_account: int = Field(3, gt=0)

    # --- market ------------------------------------------------------------------
    # Comma list of the indices whose options the fleet streams (tickfleet.config.underlyings).
    underlyings: str = "NIFTY"
    market_timezone: str = "Asia/Kolkata"
    market_open: time = time(9, 15)
    market_close: time = time(15, 30)
    feed: FeedSetting = "auto"
    mock_enabled: bool = True
    expiry_weekday: int = Field(1, ge=0, le=6)  # NIFTY's (Monday=0): Tuesdays
    exchange_calendar: str = "XBOM"  # exchange-calendars name; "none": weekdays only
    clock_offset_seconds: float = 0.0  # run the fleet's wall clock shifted (demos, tests)
    instruments_csv: Path | None = None

    # --- Kite Connect (the live feed) ---------------------------------------------------
    kite_api_key: str | None = Field(None, validation_alias=_kite("KITE_API_KEY"))
    kite_access_token: SecretStr | None = Field(None, validation_alias=_kite("KITE_ACCESS_TOKEN"))
    kite_account_id: str = "primary"  # the account KITE_API_KEY/KITE_ACCESS_TOKEN make
    kite_ticker_url: str = Field("wss://ws.kite.trade", validation_alias=_kite("KITE_TICKER_URL"))
    kite_api_url: str = Field("https://api.kite.trade", validation_alias=_kite("KITE_API_URL"))
    kite_stale_seconds: float = Field(5.0, gt=0)  # no tick nor heartbeat: replace the socket
    kite_connect_timeout_seconds: float = Field(10.0, gt=0)
    kite_reconnect_base_seconds: float = Field(0.5, gt=0)
    kite_reconnect_max_seconds: float = Field(60.0, gt=0)
    kite_session_check_seconds: float = Field(5.0, gt=0)  # an invalid session: look for a token
    # Kite's historical requests per second per api key, for the whole fleet (Kite: 3).
    history_rate_per_second: int = Field(3, gt=0)
    # The fleet's own bars: one bar's seconds (Kite's minute; tests shorten it), how often
    # a stream hands its open bars to Redis and beat moves them to SQL, days kept in SQL.
    history_bar_seconds: float = Field(60.0, ge=1)  # bars start on whole seconds
    history_bar_flush_seconds: float = Field(1.0, gt=0)
    history_bar_move_seconds: float = Field(5.0, gt=0)
    history_retention_days: int = Field(30, gt=0)

    # --- simulated market --------------------------------------------------------------
    # NIFTY's start level, strike step and lot size; other underlyings take their own.
    mock_underlying_price: float = Field(24000.0, gt=0)
    mock_strike_step: int = Field(50, gt=0)
    mock_strikes_each_side: int = Field(20, ge=0)
    mock_weekly_expiries: int = Field(4, ge=0)
    mock_monthly_expiries: int = Field(3, ge=0)
    mock_lot_size: int = Field(65, gt=0)
    mock_volatility: float = Field(0.14, gt=0)  # annualised, drives the random walk
    mock_base_iv: float = Field(0.13, gt=0)  # at-the-money implied volatility
    mock_risk_free_rate: float = 0.065
    mock_tick_interval_seconds: float = Field(1.0, gt=0)
    mock_seed: int | None = None
    mock_state_max_size: int = Field(5000, gt=0, validation_alias=_plain("MOCK_STATE_MAX_SIZE"))
    mock_expiry_sweep_seconds: float = Field(300.0, gt=0)

    # --- streams -------------------------------------------------------------------------
    # A killed stream's owner is replaced by its standby once the lease lapses: the TTL
    # bounds the gap; renewals every 0.3 s keep a loaded stream's lease (measured in
    # docs/architecture/flows.md, "Failover").
    lease_ttl_seconds: float = Field(1.5, gt=0)
    lease_renew_seconds: float = Field(0.3, gt=0)
    stream_standby: bool = True  # a hot standby per stream on another worker
    watchdog_interval_seconds: float = Field(3.0, gt=0)
    stream_start_grace_seconds: float = Field(30.0, gt=0)
    stream_stale_seconds: float = Field(15.0, gt=0)
    stream_restart_limit: int = Field(5, ge=0)

    # --- publisher and breaker ---------------------------------------------------------
    publish_batch_max: int = Field(500, gt=0)
    publish_timeout_seconds: float = Field(1.0, gt=0)
    breaker_failure_threshold: int = Field(
        10, gt=0, validation_alias=_plain("BREAKER_FAILURE_THRESHOLD")
    )
    breaker_recovery_timeout: float = Field(
        60.0, gt=0, validation_alias=_plain("BREAKER_RECOVERY_TIMEOUT")
    )
    breaker_half_open_max_attempts: int = Field(
        3, gt=0, validation_alias=_plain("BREAKER_HALF_OPEN_MAX_ATTEMPTS")
    )
    breaker_window_seconds: float = Field(60.0, gt=0)
    breaker_sync_seconds: float = Field(1.0, gt=0)

    # --- tick archive (tickfleet.archive, docs/archive.md) --------------------------------------
    # Where make run's processes keep their files (scripts/fleet-env.sh); the archive's
    # default home is its ``archive/``.
    run_dir: Path = PROJECT_VAR
    archive: bool = True  # every published tick to Parquet; off: nothing written
    archive_dir: Path | None = None  # default: <run_dir>/archive
    archive_flush_seconds: float = Field(60.0, gt=0)  # a killed stream loses at most this
    # Ticks a stream holds for the archive writer; past it (a slow or stuck disk) the
    # newest batches are dropped and counted, publishing never waits.
    archive_queue_max_ticks: int = Field(500_000, gt=0)
    archive_part_max_ticks: int = Field(100_000, gt=0)  # a part is written early past this
    archive_retention_days: int = Field(30, gt=0)
    archive_compact_seconds: float = Field(3600.0, gt=0)  # beat: compaction and retention
    archive_compact_zstd_level: int = Field(9, ge=1, le=22)
    archive_min_free_mb: int = Field(1024, ge=0)  # /health warns below this free space

    # --- instruments refresh -------------------------------------------------------------
    instrument_refresh_time: time = time(8, 30)  # market timezone, before the open

    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _absolute_sqlite_path(cls, value: str) -> str:
        """A relative SQLite path is resolved once, here, against the working directory."""
        url = make_url(value)
        path = url.database
        if url.get_backend_name() != "sqlite" or not path or path == ":memory:":
            return value
        if path.startswith("file:") or Path(path).is_absolute():
            return value
        return url.set(database=str(Path(path).resolve())).render_as_string(hide_password=False)

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_no_key(cls, value: object) -> object:
        """``TICKFLEET_API_KEY=`` (compose's empty default) means no key, not the key ""."""
        return None if value == "" else value

    @field_validator("underlyings")
    @classmethod
    def _known_underlyings(cls, value: str) -> str:
        return ",".join(parse_underlyings(value))

    @field_validator("key_prefix")
    @classmethod
    def _prefix_ends_with_colon(cls, value: str) -> str:
        return value if value.endswith(":") else value + ":"

    @model_validator(mode="after")
    def _check_windows(self) -> Settings:
        if self.reload_max_wait_seconds < self.reload_debounce_seconds:
            raise ValueError("TICKFLEET_RELOAD_MAX_WAIT_SECONDS must be >= the debounce")
        if self.market_close <= self.market_open:
            raise ValueError("TICKFLEET_MARKET_CLOSE must be after TICKFLEET_MARKET_OPEN")
        if self.lease_renew_seconds >= self.lease_ttl_seconds:
            raise ValueError("TICKFLEET_LEASE_RENEW_SECONDS must be below the lease TTL")
        return self

    def to_env(self) -> dict[str, str]:
        """Environment variables that reproduce these settings in a child process."""
        env: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None:
                continue
            alias = field.validation_alias
            key = alias.choices[0] if isinstance(alias, AliasChoices) else f"TICKFLEET_{name}"
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[str(key).upper()] = (
                value.isoformat("seconds" if value.second else "minutes")
                if isinstance(value, time)
                else str(value)
            )
        return env

    @property
    def underlying_names(self) -> tuple[str, ...]:
        return tuple(self.underlyings.split(","))

    def underlying(self, name: str) -> Underlying:
        """One configured underlying's facts; NIFTY's simulated level, strike step, lot
        size and expiry weekday come from the settings that predate the others."""
        known = KNOWN[name]
        if name != "NIFTY":
            return known
        return replace(
            known,
            spot=self.mock_underlying_price,
            strike_step=self.mock_strike_step,
            lot_size=self.mock_lot_size,
            expiry_weekday=self.expiry_weekday,
        )

    def configured_underlyings(self) -> tuple[Underlying, ...]:
        return tuple(self.underlying(n) for n in self.underlying_names)

    @property
    def effective_archive_dir(self) -> Path:
        return self.archive_dir if self.archive_dir is not None else self.run_dir / "archive"

    @property
    def effective_publish_redis_url(self) -> str:
        return self.publish_redis_url or self.redis_url

    @property
    def effective_breaker_redis_url(self) -> str:
        return self.breaker_redis_url or self.redis_url

    # --- replay ------------------------------------------------------------------------
    # TICKFLEET_FEED=replay, or auto with TICKFLEET_OFF_HOURS=replay while the market is
    # closed, republishes a recorded day from the tick archive (docs/replay.md).
    off_hours: OffHours = "mock"  # what auto runs while the market is closed
    replay_date: date | None = None  # the market date replayed; None: the latest recorded
    replay_speed: float = Field(1.0, ge=0)  # 1 real time, 5 five times faster, 0 unpaced
    replay_from: time | None = None  # market time: replay from here (None: the first tick)
    replay_to: time | None = None  # market time: replay up to here (None: the last tick)

    @model_validator(mode="after")
    def _check_replay_window(self) -> Settings:
        if self.replay_from and self.replay_to and self.replay_to <= self.replay_from:
            raise ValueError("TICKFLEET_REPLAY_TO must be after TICKFLEET_REPLAY_FROM")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read from the environment once per process (tests call ``cache_clear``)."""
    return Settings()
