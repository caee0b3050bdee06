"""The stream's bars in memory, and merging their segments: pure, no I/O."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from tickfleet.history.bars import (
    CLOSE,
    HIGH,
    LAST_TS,
    LOW,
    MOCK,
    OI,
    OPEN,
    START,
    VOLUME_FIRST,
    VOLUME_LAST,
    BarBuilder,
    Segment,
    collapse,
    merge,
)

pytestmark = pytest.mark.timeout(10)

T0 = 1_764_561_600.0  # a whole minute


def test_a_bar_is_first_max_min_last_of_its_ticks() -> None:
    bars = BarBuilder(60)
    for i, price in enumerate([100.0, 104.0, 98.0, 101.0]):
        bars.add(7, T0 + i, price, 1000 + i * 10, 50 + i, True)
    (bar,) = bars.take()
    assert bar[START] == T0
    assert (bar[OPEN], bar[HIGH], bar[LOW], bar[CLOSE]) == (100.0, 104.0, 98.0, 101.0)
    assert (bar[VOLUME_FIRST], bar[VOLUME_LAST], bar[OI], bar[MOCK]) == (1000, 1030, 53, True)


def test_add_writes_the_slots_its_literal_numbers_stand_for() -> None:
    # add writes HIGH, LOW, ... as numbers (a global lookup per tick costs); a renumbering
    # must show here, not as bars with a wrong column
    assert (HIGH, LOW, LAST_TS, CLOSE, VOLUME_LAST, OI) == (4, 5, 6, 7, 9, 10)
    bars = BarBuilder(60)
    bars.add(7, T0, 10.0, 100, 5, False)
    bars.add(7, T0 + 1, 12.0, 110, 6, False)
    bars.add(7, T0 + 2, 9.0, 120, 7, False)
    (bar,) = bars.take()
    assert (bar[HIGH], bar[LOW], bar[LAST_TS], bar[CLOSE]) == (12.0, 9.0, T0 + 2, 9.0)
    assert (bar[VOLUME_FIRST], bar[VOLUME_LAST], bar[OI]) == (100, 120, 7)


def test_a_new_bar_starts_on_the_boundary_and_the_closed_one_is_still_taken() -> None:
    bars = BarBuilder(60)
    bars.add(7, T0 + 59.999, 10.0, None, None, False)
    bars.add(7, T0 + 60.0, 11.0, None, None, False)
    taken = bars.take()
    assert [(b[START], b[OPEN]) for b in taken] == [(T0, 10.0), (T0 + 60, 11.0)]
    assert bars.take() == []  # nothing changed since


def test_take_returns_copies_so_a_growing_bar_is_flushed_again() -> None:
    bars = BarBuilder(60)
    bars.add(7, T0, 10.0, None, None, False)
    (first,) = bars.take()
    bars.add(7, T0 + 1, 12.0, None, None, False)
    (second,) = bars.take()
    assert first[CLOSE] == 10.0 and second[CLOSE] == 12.0 and second[HIGH] == 12.0


def test_ticks_going_back_across_a_boundary_resume_a_token_bar_that_starts_there() -> None:
    # 7 stays in the first bar while 8 moves on; 9 goes back and forth, so each of its
    # returns begins a new segment of the bar it returns to and closes the other one
    bars = BarBuilder(60)
    ticks = [(7, T0 + 58, 10.0), (8, T0 + 58, 20.0), (8, T0 + 61, 21.0), (9, T0 + 59, 30.0)]
    ticks += [(9, T0 + 62, 31.0), (7, T0 + 59, 12.0), (9, T0 + 59.5, 32.0), (8, T0 + 63, 19.0)]
    for token, ts, price in ticks:
        bars.add(token, ts, price, None, None, False)
    taken = {(b[0], b[START], b[OPEN], b[HIGH], b[LOW], b[CLOSE]) for b in bars.take()}
    assert taken == {
        (7, T0, 10.0, 12.0, 10.0, 12.0),
        (8, T0, 20.0, 20.0, 20.0, 20.0),
        (8, T0 + 60, 21.0, 21.0, 19.0, 19.0),
        (9, T0, 30.0, 30.0, 30.0, 30.0),
        (9, T0 + 60, 31.0, 31.0, 31.0, 31.0),
        (9, T0, 32.0, 32.0, 32.0, 32.0),
    }
    assert len(bars) == 3
    bars.add(7, T0 + 59.9, 9.0, None, None, False)  # its bar, not a new one after the take
    assert [(b[OPEN], b[LOW], b[CLOSE]) for b in bars.take()] == [(10.0, 9.0, 9.0)]


def test_a_forgotten_token_keeps_no_bar_and_its_last_changes_still_go_out() -> None:
    bars = BarBuilder(60)
    bars.add(7, T0, 10.0, None, None, False)
    bars.add(8, T0, 20.0, None, None, False)
    bars.take()
    bars.add(7, T0 + 1, 11.0, None, None, False)
    bars.forget([7, 8, 9])  # 8 unchanged since the take, 9 never seen
    assert len(bars) == 0
    (last,) = bars.take()
    assert (last[START], last[CLOSE]) == (T0, 11.0)
    assert bars.take() == []


def test_ltp_ticks_without_volume_or_oi_keep_them_unknown() -> None:
    bars = BarBuilder(60)
    bars.add(7, T0, 10.0, None, None, False)
    bars.add(7, T0 + 1, 9.0, None, None, False)
    (bar,) = bars.take()
    assert (bar[VOLUME_FIRST], bar[VOLUME_LAST], bar[OI], bar[LOW]) == (None, None, None, 9.0)


def _segments_of(ticks: list[tuple[float, float, int]]) -> Segment:
    bars = BarBuilder(60)
    for ts, price, volume in ticks:
        bars.add(7, ts, price, volume, volume // 10, False)
    (bar,) = bars.take()
    return bar


def test_segments_merge_to_the_bar_of_all_their_ticks_in_any_order_any_number_of_times() -> None:
    rng = random.Random(5)
    ticks = [(T0 + i * 0.5, round(rng.uniform(90, 110), 2), 1000 + i) for i in range(100)]
    whole = _segments_of(ticks)
    # a failover: the first worker's ticks up to 40, the second's from 40 on; plus a
    # flush of the first worker's bar as it was at tick 20 (flushed again later)
    parts = [_segments_of(ticks[:20]), _segments_of(ticks[:40]), _segments_of(ticks[40:])]
    for order in itertools.permutations(parts):
        merged = order[0]
        for part in order[1:]:
            merged = merge(merged, part)
        assert merged == whole
    assert merge(whole, whole) == whole


def test_collapse_merges_per_token_and_start() -> None:
    a = _segments_of([(T0, 10.0, 1), (T0 + 1, 12.0, 2)])
    b = _segments_of([(T0 + 2, 8.0, 3)])
    c = _segments_of([(T0 + 61, 20.0, 4)])
    bars = collapse([a, c, b])
    assert set(bars) == {(7, int(T0)), (7, int(T0) + 60)}
    bar = bars[(7, int(T0))]
    assert (bar[OPEN], bar[HIGH], bar[LOW], bar[CLOSE]) == (10.0, 12.0, 8.0, 8.0)


def _per_tick_and_chain(
    rounds: list[tuple[tuple[int, ...], float, list[float], list[int], list[int]]],
    forget_after: int | None = None,
) -> tuple[dict[tuple[int, int], Segment], dict[tuple[int, int], Segment]]:
    """The same chain ticks through ``add`` one by one and through ``add_chain``, each
    builder taken every few rounds as the flusher does, segments collapsed per bar."""
    ticked, chained = BarBuilder(60), BarBuilder(60)
    one: list[Segment] = []
    whole: list[Segment] = []
    for n, (tokens, ts, prices, volumes, ois) in enumerate(rounds):
        for token, price, volume, oi in zip(tokens, prices, volumes, ois, strict=True):
            ticked.add(token, ts, price, volume, oi, True)
        chained.add_chain(tokens, ts, np.array(prices), np.array(volumes), np.array(ois), True)
        if n == forget_after:
            ticked.forget(tokens[:1])
            chained.forget(tokens[:1])
        if n % 3 == 2:
            one += ticked.take()
            whole += chained.take()
    return collapse(one + ticked.take()), collapse(whole + chained.take())


def test_a_chain_at_once_makes_the_bars_its_ticks_one_by_one_make() -> None:
    rng = random.Random(16)
    first: tuple[int, ...] = (11, 12, 13, 14)
    second: tuple[int, ...] = (12, 13, 14, 15, 16)  # the chain's tokens change
    rounds = []
    for n in range(200):  # 200 rounds half a second apart: across bars, one change
        tokens = first if n < 90 else second
        ts = T0 + 0.5 * n
        prices = [round(rng.uniform(90, 110), 2) for _ in tokens]
        volumes = [1000 + 10 * n + t for t in tokens]
        ois = [5000 + rng.randrange(100) for _ in tokens]
        rounds.append((tokens, ts, prices, volumes, ois))
    ticked, chained = _per_tick_and_chain(rounds, forget_after=150)
    assert len(ticked) > 10
    assert chained == ticked
    closed = chained[(12, int(T0 + 60))]  # a whole bar of a token in both chains
    heard = [p for toks, ts, ps, _, _ in rounds if T0 + 60 <= ts < T0 + 120
             for t, p in zip(toks, ps, strict=True) if t == 12]  # fmt: skip
    assert (closed[OPEN], closed[HIGH], closed[LOW], closed[CLOSE]) == (
        heard[0], max(heard), min(heard), heard[-1]
    )  # fmt: skip


def test_a_chain_flushed_twice_into_the_flusher_merges_not_overwrites() -> None:
    bars = BarBuilder(60)
    tokens = (1, 2)
    bars.add_chain(tokens, T0, np.array([10.0, 20.0]), np.array([1, 2]), np.array([5, 5]), True)
    bars.add_chain(tokens, T0 + 1, np.array([15.0, 19.0]), np.array([3, 4]), np.array([6, 6]), True)
    bars.forget([2])  # the chain ends: its segments go out, the next tick begins anew
    bars.add_chain((1,), T0 + 2, np.array([8.0]), np.array([5]), np.array([7]), True)
    pending = collapse(bars.take())
    assert len(pending) == 2
    one = pending[(1, int(T0))]
    assert (one[OPEN], one[HIGH], one[LOW], one[CLOSE]) == (10.0, 15.0, 8.0, 8.0)
    assert (one[VOLUME_FIRST], one[VOLUME_LAST], one[OI]) == (1, 5, 7)
    assert bars.take() == []  # nothing changed since
