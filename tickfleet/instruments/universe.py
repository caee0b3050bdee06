"""An offline universe: each underlying's index and option chains, made without a broker.

Without Kite credentials the fleet still needs instruments to subscribe to and simulate.
The universe is a pure function of the day, the spot and a ``UniverseSpec``, so every
process that generates it on the same day gets the same contracts and tokens.

Tokens are stable across regenerations (a subscription made today still names the same
contract tomorrow) and cannot collide inside one universe, because an option's exchange
token is its contract written in bits rather than a hash::

    bit 23      the underlying's code, high bit (``tickfleet.config.underlyings``)
    bit 22      1 (marks a generated contract and keeps the token above zero)
    bit 21      0 for CE, 1 for PE
    bits 11-20  expiry day number modulo 1024
    bit 10      the underlying's code, low bit
    bits 0-9    strike / strike step, modulo 1024

The code tells apart the underlyings of one exchange (their segment byte, NFO or BFO,
tells the exchanges apart); NIFTY's code is 0, so its tokens are those of the layout
before there were several underlyings. Two contracts of one universe could share a token
only if their expiries lay 1024 or more days apart or their strikes 1024 steps apart;
``UniverseSpec`` refuses such windows. An exchange token fits in 24 bits, so the
instrument token stays below 2**32 as Kite's do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from tickfleet.config.settings import Settings
from tickfleet.config.underlyings import KNOWN, Underlying
from tickfleet.instruments.expiry_calendar import (
    is_monthly_expiry,
    monthly_expiries,
    weekly_expiries,
)
from tickfleet.instruments.model import Instrument
from tickfleet.instruments.symbols import monthly_option_symbol, weekly_option_symbol
from tickfleet.kite.tokens import SEGMENT_IDS, encode_token
from tickfleet.market.calendar import WEEKDAYS_ONLY, TradingCalendar, load_calendar

INDEX_TOKEN = KNOWN["NIFTY"].index_token  # NIFTY 50's, the first underlying's
OPTION_TICK_SIZE = 0.05

_GENERATED_BIT = 1 << 22
_PUT_BIT = 1 << 21
_CODE_HIGH_BIT = 1 << 23
_CODE_LOW_BIT = 1 << 10
_EXPIRY_SHIFT = 11
_EXPIRY_SLOTS = 1 << 10
_STRIKE_SLOTS = 1 << 10
MAX_WEEKLY_EXPIRIES = 140  # 140 weeks stay inside the 1024-day expiry window
MAX_MONTHLY_EXPIRIES = 32  # so do 32 months, counted from the day after an expiry
MAX_STRIKES_EACH_SIDE = (_STRIKE_SLOTS - 1) // 2  # 511


@dataclass(frozen=True, slots=True)
class UniverseSpec:
    """The shape of one underlying's generated universe (spot is the default centre of
    the strikes). ``trading`` moves an expiry that falls on an exchange holiday to the
    trading day before; ``underlying`` names the index and its exchange; monthly
    expiries only unless it has weekly contracts.
    """

    spot: float
    strike_step: int
    strikes_each_side: int
    weekly_expiries: int
    monthly_expiries: int
    expiry_weekday: int
    lot_size: int
    trading: TradingCalendar = WEEKDAYS_ONLY
    underlying: Underlying = KNOWN["NIFTY"]

    def __post_init__(self) -> None:
        _require(math.isfinite(self.spot) and self.spot > 0, "spot must be a positive number")
        _require(self.strike_step > 0, "strike_step must be positive")
        _require(self.lot_size > 0, "lot_size must be positive")
        _require(0 <= self.expiry_weekday <= 6, "expiry_weekday must be 0 (Monday) to 6")
        _require(
            0 <= self.strikes_each_side <= MAX_STRIKES_EACH_SIDE,
            f"strikes_each_side must be 0..{MAX_STRIKES_EACH_SIDE}",
        )
        _require(
            0 <= self.weekly_expiries <= MAX_WEEKLY_EXPIRIES,
            f"weekly_expiries must be 0..{MAX_WEEKLY_EXPIRIES}",
        )
        _require(
            0 <= self.monthly_expiries <= MAX_MONTHLY_EXPIRIES,
            f"monthly_expiries must be 0..{MAX_MONTHLY_EXPIRIES}",
        )

    @classmethod
    def from_settings(cls, settings: Settings, name: str = "NIFTY") -> UniverseSpec:
        underlying = settings.underlying(name)
        return cls(
            spot=underlying.spot,
            strike_step=underlying.strike_step,
            strikes_each_side=settings.mock_strikes_each_side,
            weekly_expiries=settings.mock_weekly_expiries if underlying.weekly else 0,
            monthly_expiries=settings.mock_monthly_expiries,
            expiry_weekday=underlying.expiry_weekday,
            lot_size=underlying.lot_size,
            trading=load_calendar(settings.exchange_calendar),
            underlying=underlying,
        )

    @classmethod
    def configured(cls, settings: Settings) -> tuple[UniverseSpec, ...]:
        """One spec per configured underlying, in the configured order."""
        return tuple(cls.from_settings(settings, name) for name in settings.underlying_names)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"UniverseSpec: {message}")


def expiry_days(today: date, spec: UniverseSpec) -> list[date]:
    """Weekly and monthly expiry days from ``today`` on, each day once, in order."""
    weekly = weekly_expiries(today, spec.expiry_weekday, spec.weekly_expiries, spec.trading)
    monthly = monthly_expiries(today, spec.expiry_weekday, spec.monthly_expiries, spec.trading)
    return sorted(set(weekly) | set(monthly))


def strike_grid(spot: float, step: int, each_side: int) -> list[int]:
    """Strikes every ``step`` points around ``spot`` rounded half-up to the step."""
    centre = math.floor(spot / step + 0.5) * step
    strikes = (centre + offset * step for offset in range(-each_side, each_side + 1))
    return [strike for strike in strikes if strike > 0]


def option_exchange_token(
    expiry: date, strike: int, step: int, option_type: str, code: int = 0
) -> int:
    """The generated exchange token of one contract (layout in the module docstring)."""
    if not 0 <= code <= 3:
        raise ValueError(f"an underlying's code is 0..3, not {code}")
    put = _PUT_BIT if option_type == "PE" else 0
    expiry_slot = expiry.toordinal() % _EXPIRY_SLOTS
    strike_slot = (strike // step) % _STRIKE_SLOTS
    codes = (_CODE_HIGH_BIT if code & 2 else 0) | (_CODE_LOW_BIT if code & 1 else 0)
    return codes | _GENERATED_BIT | put | expiry_slot << _EXPIRY_SHIFT | strike_slot


def _option(expiry: date, strike: int, option_type: str, spec: UniverseSpec) -> Instrument:
    u = spec.underlying
    monthly = is_monthly_expiry(expiry, spec.expiry_weekday, spec.trading)
    symbol = monthly_option_symbol if monthly else weekly_option_symbol
    exchange_token = option_exchange_token(expiry, strike, spec.strike_step, option_type, u.code)
    return Instrument(
        instrument_token=encode_token(exchange_token, SEGMENT_IDS[u.exchange]),
        exchange_token=exchange_token,
        tradingsymbol=symbol(u.name, expiry, strike, option_type),
        name=u.name,
        underlying=u.name,
        last_price=0.0,
        expiry=expiry,
        strike=float(strike),
        tick_size=u.tick_size,
        lot_size=spec.lot_size,
        instrument_type=option_type,
        segment=u.segment,
        exchange=u.exchange,
    )


def index_row(underlying: Underlying, spot: float) -> Instrument:
    """The index row exactly as Kite lists it (type EQ, zero tick and lot size)."""
    return Instrument(
        instrument_token=underlying.index_token,
        exchange_token=underlying.index_exchange_token,
        tradingsymbol=underlying.index_symbol,
        name=underlying.index_symbol,
        underlying=underlying.name,
        last_price=spot,
        expiry=None,
        strike=0.0,
        tick_size=0.0,
        lot_size=0,
        instrument_type="EQ",
        segment="INDICES",
        exchange=underlying.index_exchange,
    )


def _check_unique_tokens(instruments: list[Instrument]) -> None:
    seen: dict[int, str] = {}
    for instrument in instruments:
        other = seen.setdefault(instrument.instrument_token, instrument.tradingsymbol)
        if other != instrument.tradingsymbol:
            raise ValueError(
                f"token {instrument.instrument_token} generated for both {other} "
                f"and {instrument.tradingsymbol}"
            )


def generate_universe(today: date, spot: float, spec: UniverseSpec) -> list[Instrument]:
    """The index followed by CE and PE options per strike, ordered by expiry and strike."""
    if not (math.isfinite(spot) and spot > 0):
        raise ValueError(f"spot must be a positive number, not {spot!r}")
    options = [
        _option(expiry, strike, option_type, spec)
        for expiry in expiry_days(today, spec)
        for strike in strike_grid(spot, spec.strike_step, spec.strikes_each_side)
        for option_type in ("CE", "PE")
    ]
    _check_unique_tokens(options)
    return [index_row(spec.underlying, spot), *options]
