"""Greeks throughput for a whole option chain: vectorised pricing against a scalar loop.

The simulated market prices every option of a stream on every tick, and live ticks
get their greeks computed too, so the question is how many options per second one
core can price. The baseline is the obvious per-option loop over the ``math`` module,
timed in the same run on the same chain.

Live enrichment: Kite's ticks carry prices only, so each binary frame gets its IV
solved and its greeks computed (``tickfleet.market.enrichment.enrich``). Frames of a
NIFTY chain as Kite sends them (strikes every 50 around the spot, expiries from hours
to three months, a volatility smile, prices on the 0.05 tick) are timed against the
obvious way on the same frames, in interleaved rounds of the same run (medians
reported): vollib's Let's Be Rational ``implied_volatility`` and its analytical
greeks, one option at a time. The largest IV difference where both solve shows a
fast wrong answer. The last line printed is one JSON object with every figure.

    python bench/greeks.py [--options 5000] [--seconds 4] [--frame-size 200] [--frames 20]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from vollib.black_scholes.greeks import analytical  # type: ignore[import-untyped]
from vollib.black_scholes.implied_volatility import (  # type: ignore[import-untyped]
    implied_volatility,
)
from vollib.lets_be_rational import (  # type: ignore[import-untyped]
    AboveMaximumException,
    BelowIntrinsicException,
)

from tickfleet.market.blackscholes import DAYS_PER_YEAR, greeks, implied_vol, price
from tickfleet.market.enrichment import enrich
from tickfleet.market.options import round_to_tick
from tickfleet.market.smile import SmileSpec, smile_iv

RATE = 0.065
SPOT = 24_000.0
TICK = 0.05
EXPIRY_DAYS = (0.2, 2.0, 7.0, 14.0, 21.0, 28.0, 56.0, 91.0)  # weeklies, monthlies, expiry day
_Batch = TypeVar("_Batch", bound=Sized)


@dataclass(frozen=True, slots=True)
class Chain:
    strikes: NDArray[np.float64]
    years: NDArray[np.float64]
    vols: NDArray[np.float64]
    is_call: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.strikes)

    def rows(self) -> list[tuple[float, float, float, bool]]:
        """Plain Python values per option, as a per-option loop would receive them."""
        columns = (self.strikes, self.years, self.vols, self.is_call)
        return list(zip(*(c.tolist() for c in columns), strict=True))


def make_chain(n_options: int, seed: int = 7) -> Chain:
    """A NIFTY-like chain: strikes every 50 around the spot, weekly expiries, calls and puts."""
    rng = np.random.default_rng(seed)
    strikes = (SPOT + 50.0 * rng.integers(-80, 81, n_options)).astype(np.float64)
    years = (1 + 7 * rng.integers(0, 8, n_options)) / DAYS_PER_YEAR
    vols = rng.uniform(0.10, 0.30, n_options)
    return Chain(strikes, years, vols, np.arange(n_options) % 2 == 0)


def scalar_greeks(
    spot: float, strike: float, years: float, vol: float, is_call: bool
) -> tuple[float, float, float, float, float]:
    """Textbook Black-Scholes for one option: the per-option Python baseline."""
    sqrt_t = math.sqrt(years)
    d1 = (math.log(spot / strike) + (RATE + 0.5 * vol * vol) * years) / (vol * sqrt_t)
    d2 = d1 - vol * sqrt_t
    density = math.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
    discounted = strike * math.exp(-RATE * years)
    sign = 1.0 if is_call else -1.0
    n_d1 = 0.5 * (1.0 + math.erf(sign * d1 / math.sqrt(2.0)))
    n_d2 = 0.5 * (1.0 + math.erf(sign * d2 / math.sqrt(2.0)))
    price = sign * (spot * n_d1 - discounted * n_d2)
    theta = -spot * density * vol / (2.0 * sqrt_t) - sign * RATE * discounted * n_d2
    return (
        price,
        sign * n_d1,
        density / (spot * vol * sqrt_t),
        theta / DAYS_PER_YEAR,
        spot * density * sqrt_t / 100.0,
    )


def _vectorised(chain: Chain) -> None:
    greeks(SPOT, chain.strikes, chain.years, chain.vols, chain.is_call, RATE)


def _scalar(chain: Chain) -> None:
    rows = chain.rows()
    for strike, years, vol, is_call in rows:
        scalar_greeks(SPOT, strike, years, vol, is_call)


def _rate(run: Callable[[_Batch], object], batches: Sequence[_Batch], seconds: float) -> float:
    """Options handled per second by ``run``, over ``batches`` in turn, for ``seconds``."""
    run(batches[0])  # warm-up: first-call allocations do not count
    options, start = 0, time.perf_counter()
    while True:
        for batch in batches:
            run(batch)
            options += len(batch)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return options / elapsed


def max_price_difference(chain: Chain) -> float:
    """Largest disagreement between the two implementations, so a fast wrong answer shows."""
    vectorised = greeks(SPOT, chain.strikes, chain.years, chain.vols, chain.is_call, RATE)
    rows = chain.rows()
    scalar = np.array([scalar_greeks(SPOT, k, t, v, c)[0] for k, t, v, c in rows])
    return float(np.max(np.abs(vectorised.price - scalar)))


def measure_greeks(n_options: int, seconds: float) -> dict[str, float]:
    """Throughput of vectorised greeks vs the scalar loop, half of ``seconds`` each."""
    chain = make_chain(n_options)
    vectorised = _rate(_vectorised, [chain], seconds / 2)
    baseline = _rate(_scalar, [chain], seconds / 2)
    return {
        "n_options": float(n_options),
        "options_per_s": vectorised,
        "baseline_options_per_s": baseline,
        "ratio": vectorised / baseline,
        "chain_ms": 1000.0 * n_options / vectorised,
        "max_price_diff": max_price_difference(chain),
    }


@dataclass(frozen=True, slots=True)
class Frame:
    """One binary frame's options: last traded prices and what the contracts say."""

    prices: NDArray[np.float64]
    strikes: NDArray[np.float64]
    years: NDArray[np.float64]
    is_call: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.prices)

    def rows(self) -> list[tuple[float, float, float, bool]]:
        columns = (self.prices, self.strikes, self.years, self.is_call)
        return list(zip(*(c.tolist() for c in columns), strict=True))


def make_frames(n_frames: int, size: int, seed: int = 11) -> list[Frame]:
    """NIFTY frames: strikes every 50 within 3000 of the spot, smile vols, 0.05 ticks."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        strikes = (SPOT + 50.0 * rng.integers(-60, 61, size)).astype(np.float64)
        years = np.array(EXPIRY_DAYS)[rng.integers(0, len(EXPIRY_DAYS), size)] / DAYS_PER_YEAR
        vols = smile_iv(SmileSpec(), strikes, SPOT, years) * rng.normal(1.0, 0.02, size)
        is_call = rng.random(size) < 0.5
        prices = round_to_tick(price(SPOT, strikes, years, vols, is_call, RATE), TICK)
        frames.append(Frame(prices, strikes, years, is_call))
    return frames


def _enrich(frame: Frame) -> None:
    enrich(frame.prices, SPOT, frame.strikes, frame.years, frame.is_call, RATE)


_VOLLIB_GREEKS = (analytical.delta, analytical.gamma, analytical.theta, analytical.vega)


def vollib_enrich(frame: Frame) -> list[tuple[float, float, float, float, float] | None]:
    """The obvious way: Let's Be Rational's IV, then the analytical greeks, per option."""
    result: list[tuple[float, float, float, float, float] | None] = []
    for p, k, t, call in frame.rows():
        flag = "c" if call else "p"
        try:
            iv = implied_volatility(p, SPOT, k, t, RATE, flag)
        except (BelowIntrinsicException, AboveMaximumException):
            result.append(None)
            continue
        values = (f(flag, SPOT, k, t, RATE, iv) for f in _VOLLIB_GREEKS)
        result.append((iv, *values))
    return result


def enrichment_agreement(frames: Sequence[Frame]) -> dict[str, float]:
    """How often each side leaves an option unsolved, and the largest IV gaps between them.

    ``enrich`` publishes IV to six decimals, so its gap includes up to 5e-7 of rounding;
    the solver's own gap (``implied_vol``, unrounded) is reported beside it.
    """
    ours = [enrich(f.prices, SPOT, f.strikes, f.years, f.is_call, RATE) for f in frames]
    solver = [implied_vol(f.prices, SPOT, f.strikes, f.years, f.is_call, RATE) for f in frames]
    theirs = [row for f in frames for row in vollib_enrich(f)]
    reference = np.array([np.nan if row is None else row[0] for row in theirs])

    def largest_gap(iv: NDArray[np.float64]) -> float:
        both = np.isfinite(iv) & np.isfinite(reference)
        return float(np.max(np.abs(iv[both] - reference[both])))

    return {
        "enrich_unsolved_fraction": float(np.mean(np.concatenate([e.unsolved for e in ours]))),
        "vollib_unsolved_fraction": float(np.mean(np.isnan(reference))),
        "enrich_max_iv_diff": largest_gap(np.concatenate([e.iv for e in ours])),
        "solver_max_iv_diff": largest_gap(np.concatenate(solver)),
    }


def measure_enrichment(
    frame_size: int, n_frames: int, seconds: float, rounds: int = 5
) -> dict[str, float]:
    """IV + greeks per frame: ``enrich`` against vollib's per-option loop.

    Half of ``seconds`` each, in ``rounds`` interleaved rounds whose medians are
    reported, so a burst of load elsewhere on the machine skews neither side alone.
    """
    frames = make_frames(n_frames, frame_size)
    vectorised, baseline = [], []
    for _ in range(rounds):
        vectorised.append(_rate(_enrich, frames, seconds / (2 * rounds)))
        baseline.append(_rate(vollib_enrich, frames, seconds / (2 * rounds)))
    enrich_rate, vollib_rate = float(np.median(vectorised)), float(np.median(baseline))
    return {
        "frame_size": float(frame_size),
        "enrich_options_per_s": enrich_rate,
        "vollib_options_per_s": vollib_rate,
        "enrich_ratio": enrich_rate / vollib_rate,
        "enrich_frame_ms": 1000.0 * frame_size / enrich_rate,
        **enrichment_agreement(frames),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--options", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--frame-size", type=int, default=200)
    parser.add_argument("--frames", type=int, default=20)
    args = parser.parse_args()
    result = measure_greeks(args.options, args.seconds)
    print(f"chain of {args.options} options")
    print(f"vectorised   {result['options_per_s']:>14,.0f} options/s")
    print(f"scalar loop  {result['baseline_options_per_s']:>14,.0f} options/s (baseline)")
    print(f"ratio        {result['ratio']:>14.1f}x")
    print(f"largest price difference between the two: {result['max_price_diff']:.2e}")
    live = measure_enrichment(args.frame_size, args.frames, args.seconds)
    print(f"live enrichment, IV + greeks, frames of {args.frame_size} options")
    print(f"enrich       {live['enrich_options_per_s']:>14,.0f} options/s", end=" ")
    print(f"({live['enrich_frame_ms']:.2f} ms per frame)")
    print(f"vollib loop  {live['vollib_options_per_s']:>14,.0f} options/s (baseline)")
    print(f"ratio        {live['enrich_ratio']:>14.1f}x")
    print(
        f"unsolved: enrich {live['enrich_unsolved_fraction']:.1%}, "
        f"vollib {live['vollib_unsolved_fraction']:.1%} (an IV above 500 % is unsolved by enrich)"
    )
    print(
        f"largest IV difference where both solve: {live['enrich_max_iv_diff']:.2e} as "
        f"published (six decimals), {live['solver_max_iv_diff']:.2e} before rounding"
    )
    print(json.dumps(result | live))


if __name__ == "__main__":
    main()
