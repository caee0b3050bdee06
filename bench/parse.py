"""Kite tick frame parsing: ``tickfleet.kite.parse_frame`` against the official client's parser.

The frames are what a stream of NIFTY options receives: full-mode packets of NFO tokens
with realistic prices, volumes and depth, 200 to a frame, encoded by
``tickfleet.kite.encode``. Both parsers run on the same frames in the same run
(``KiteTicker._parse_binary``, no connection opened); rounds alternate which goes first
and figures are medians over rounds. Smaller frames and other modes follow, for the
per-frame cost and the struct path. Then the live feed's other per-frame work, IV and
greeks for the frame's options (``bench/greeks.py``'s measurement: ``enrich`` against
vollib's per-option loop). The last line printed is one JSON object.

    python bench/parse.py [--packets 200] [--frames 40] [--rounds 7] [--seconds 0.8]
                          [--enrich-seconds 2]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kiteconnect import KiteTicker

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.greeks import measure_enrichment  # noqa: E402
from tickfleet.kite import Tick, TickMode, encode_frame, parse_frame  # noqa: E402
from tickfleet.kite.tokens import SEGMENT_IDS, encode_token  # noqa: E402

TARGET_RATIO = 5.0
GOAL_PACKETS_PER_S = 1_000_000
NFO = SEGMENT_IDS["NFO"]

Parser = Callable[[bytes], Sequence[object]]


def option_tick(rng: random.Random, mode: TickMode, now: int) -> Tick:
    """A NIFTY option's tick as Kite sends it, prices on the 0.05 grid."""
    price = round(rng.uniform(0.05, 1500.0) * 20) / 20
    close = round(price * rng.uniform(0.8, 1.2) * 20) / 20
    token = encode_token(rng.randrange(10_000, 16_000_000), NFO)
    if mode == "ltp":
        return Tick(token, mode, price)
    volume = rng.randrange(0, 20_000_000)
    quote = Tick(
        token, mode, price, 75 * rng.randrange(1, 40), round(price * 0.99, 2), volume,
        rng.randrange(0, 5_000_000), rng.randrange(0, 5_000_000),
        close, max(price, close), min(price, close), close,
    )  # fmt: skip
    if mode == "quote":
        return quote
    buy = tuple((75 * rng.randrange(1, 200), max(0.0, price - 0.05 * i), i) for i in range(1, 6))
    sell = tuple((75 * rng.randrange(1, 200), price + 0.05 * i, i) for i in range(1, 6))
    oi = rng.randrange(0, 10_000_000)
    return quote._replace(
        last_trade_time=now - rng.randrange(0, 5), oi=oi, oi_day_high=oi + 1000,
        oi_day_low=max(0, oi - 1000), exchange_timestamp=now, depth=(buy, sell),
    )  # fmt: skip


def make_frames(mode: TickMode, packets: int, frames: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    now = 1_764_000_000
    return [
        encode_frame([option_tick(rng, mode, now) for _ in range(packets)]) for _ in range(frames)
    ]


def ours(frame: bytes) -> Sequence[object]:
    return parse_frame(frame).ticks


def rate(parser: Parser, frames: Sequence[bytes], seconds: float) -> float:
    """Packets per second through ``parser``, all frames at a time, for ``seconds``."""
    packets, start = 0, time.perf_counter()
    while True:
        for frame in frames:
            packets += len(parser(frame))
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return packets / elapsed


def compare(
    baseline: Parser, frames: Sequence[bytes], rounds: int, seconds: float
) -> dict[str, Any]:
    """Median packets/s of ours and the baseline, rounds interleaved, after a warm-up."""
    runs: dict[str, list[float]] = {"ours": [], "baseline": []}
    rate(ours, frames, seconds / 4)
    rate(baseline, frames, seconds / 4)
    for r in range(rounds):
        order = ("ours", "baseline") if r % 2 == 0 else ("baseline", "ours")
        for name in order:
            runs[name].append(rate(ours if name == "ours" else baseline, frames, seconds))
    paired = [o / b for o, b in zip(runs["ours"], runs["baseline"], strict=True)]
    mine, theirs = statistics.median(runs["ours"]), statistics.median(runs["baseline"])
    return {"ours": mine, "baseline": theirs, "ratio": mine / theirs, "paired": paired}


def disagreements(baseline: Parser, frames: Sequence[bytes]) -> int:
    """Ticks on which the two parsers differ, so that a fast wrong answer shows."""
    differ = 0
    for frame in frames:
        for tick, official in zip(parse_frame(frame).ticks, baseline(frame), strict=True):
            assert isinstance(official, dict)
            ohlc = official.get("ohlc", {})
            same = (
                tick.instrument_token == official["instrument_token"]
                and tick.last_price == official["last_price"]
                and tick.close == ohlc.get("close")
                and tick.change == official.get("change")
                and tick.oi == official.get("oi")
                and (tick.depth is None) == ("depth" not in official)
            )
            differ += not same
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--packets", type=int, default=200, help="packets per full-mode frame")
    parser.add_argument("--frames", type=int, default=40, help="distinct frames cycled through")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.8, help="per round and parser")
    parser.add_argument("--enrich-seconds", type=float, default=2.0, help="IV + greeks, total")
    args = parser.parse_args()

    baseline: Parser = KiteTicker("api_key", "access_token")._parse_binary
    frames = make_frames("full", args.packets, args.frames)
    wrong = disagreements(baseline, frames)
    main_run = compare(baseline, frames, args.rounds, args.seconds)
    sizes: tuple[tuple[TickMode, int], ...] = (
        ("quote", 200),
        ("ltp", 200),
        ("full", 10),
        ("full", 1),
    )
    others = {
        f"{mode} x{packets}": compare(
            baseline, make_frames(mode, packets, max(4, 4000 // packets)), 3, args.seconds / 2
        )
        for mode, packets in sizes
    }
    enrichment = measure_enrichment(args.packets, 20, args.enrich_seconds)
    report(args, main_run, others, wrong, enrichment)


def report(
    args: argparse.Namespace,
    main_run: dict[str, Any],
    others: dict[str, dict[str, Any]],
    wrong: int,
    enrichment: dict[str, float],
) -> None:
    ratio, paired = main_run["ratio"], main_run["paired"]
    verdict = "OK" if ratio >= TARGET_RATIO else "MISSED"
    print(f"full-mode frames of {args.packets} NFO option packets, {args.frames} distinct frames")
    print(f"{args.rounds} rounds of {args.seconds}s per parser, interleaved (medians)")
    print(f"tickfleet.kite.parse_frame:       {main_run['ours']:12,.0f} packets/s")
    print(f"KiteTicker._parse_binary (base):  {main_run['baseline']:12,.0f} packets/s")
    print(
        f"ratio {ratio:.1f}x (rounds {min(paired):.1f}x..{max(paired):.1f}x), "
        f"target >= {TARGET_RATIO:.0f}x: {verdict}; {main_run['ours'] / GOAL_PACKETS_PER_S:.0%} "
        f"of 1M packets/s ({1e6 / main_run['ours']:.2f} µs a packet)"
    )
    print(f"ticks on which the parsers disagree: {wrong}")
    for name, run in others.items():
        print(
            f"  {name:10s} frames: {run['ours']:10,.0f} packets/s vs {run['baseline']:9,.0f}"
            f" ({run['ratio']:.1f}x)"
        )
    print(
        f"IV + greeks per frame of {args.packets} options: "
        f"{enrichment['enrich_options_per_s']:,.0f} options/s "
        f"({enrichment['enrich_frame_ms']:.2f} ms a frame) vs vollib's loop "
        f"{enrichment['vollib_options_per_s']:,.0f} ({enrichment['enrich_ratio']:.1f}x)"
    )
    summary = {
        "packets_per_s": round(main_run["ours"]),
        "baseline_packets_per_s": round(main_run["baseline"]),
        "ratio": round(ratio, 2),
        "share_of_1m": round(main_run["ours"] / GOAL_PACKETS_PER_S, 3),
        "disagreements": wrong,
        **{
            f"{name.replace(' x', '_x')}_packets_per_s": round(run["ours"])
            for name, run in others.items()
        },
        "enrich_options_per_s": round(enrichment["enrich_options_per_s"]),
        "vollib_options_per_s": round(enrichment["vollib_options_per_s"]),
        "enrich_ratio": round(enrichment["enrich_ratio"], 2),
        "enrich_frame_ms": round(enrichment["enrich_frame_ms"], 3),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
