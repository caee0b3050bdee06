"""Greeks throughput for a whole option chain: vectorised pricing against a scalar loop.

The simulated market prices every option of a stream on every tick, and live ticks
get their greeks computed too, so the question is how many options per second one
core can price. The baseline is the obvious per-option loop over the ``math`` module,
timed in the same run on the same chain; the last line printed is one JSON object.

    python bench/greeks.py [--options 5000] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tickfleet.market.blackscholes import DAYS_PER_YEAR, greeks

RATE = 0.065
SPOT = 24_000.0


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


def _rate(run: Callable[[Chain], None], chain: Chain, seconds: float) -> float:
    """Options priced per second by ``run``, whole chains at a time, for ``seconds``."""
    run(chain)  # warm-up: first-call allocations do not count
    passes, start = 0, time.perf_counter()
    while True:
        run(chain)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return passes * len(chain) / elapsed


def max_price_difference(chain: Chain) -> float:
    """Largest disagreement between the two implementations, so a fast wrong answer shows."""
    vectorised = greeks(SPOT, chain.strikes, chain.years, chain.vols, chain.is_call, RATE)
    rows = chain.rows()
    scalar = np.array([scalar_greeks(SPOT, k, t, v, c)[0] for k, t, v, c in rows])
    return float(np.max(np.abs(vectorised.price - scalar)))


def measure_greeks(n_options: int, seconds: float) -> dict[str, float]:
    """Throughput of vectorised greeks vs the scalar loop, half of ``seconds`` each."""
    chain = make_chain(n_options)
    vectorised = _rate(_vectorised, chain, seconds / 2)
    baseline = _rate(_scalar, chain, seconds / 2)
    return {
        "n_options": float(n_options),
        "options_per_s": vectorised,
        "baseline_options_per_s": baseline,
        "ratio": vectorised / baseline,
        "chain_ms": 1000.0 * n_options / vectorised,
        "max_price_diff": max_price_difference(chain),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--options", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    result = measure_greeks(args.options, args.seconds)
    print(f"chain of {args.options} options")
    print(f"vectorised   {result['options_per_s']:>14,.0f} options/s")
    print(f"scalar loop  {result['baseline_options_per_s']:>14,.0f} options/s (baseline)")
    print(f"ratio        {result['ratio']:>14.1f}x")
    print(f"largest price difference between the two: {result['max_price_diff']:.2e}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
