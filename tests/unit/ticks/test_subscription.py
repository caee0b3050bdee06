"""The listeners tell a subscription the server ended from anything else heard."""

from __future__ import annotations

import pytest

from tickfleet.ticks.subscription import NOT_A_TICK, SubscriptionDropped, _tick

WANTED = {"ticker:{nifty}:options"}


def test_a_tick_is_its_channel_and_payload() -> None:
    message = {"type": "smessage", "channel": b"ticker:{nifty}:options", "data": b"{}"}
    assert _tick(message, WANTED) == ("ticker:{nifty}:options", b"{}")


def test_a_confirmation_or_a_pong_is_no_tick() -> None:
    for kind in ("ssubscribe", "subscribe", "pong"):
        assert (
            _tick({"type": kind, "channel": b"ticker:{nifty}:options", "data": 1}, WANTED)
            is NOT_A_TICK
        )


def test_the_server_ending_a_wanted_subscription_is_a_lost_connection() -> None:
    message = {"type": "sunsubscribe", "channel": b"ticker:{nifty}:options", "data": 0}
    with pytest.raises(SubscriptionDropped, match=r"ticker:\{nifty\}:options"):
        _tick(message, WANTED)


def test_an_unsubscribe_from_a_channel_not_listened_to_is_no_tick() -> None:
    message = {"type": "sunsubscribe", "channel": b"ticker:{sensex}:options", "data": 0}
    assert _tick(message, WANTED) is NOT_A_TICK
