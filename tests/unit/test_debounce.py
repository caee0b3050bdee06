import pytest

from tickfleet.control.debounce import ReloadTiming

T = ReloadTiming(debounce=1.0, max_wait=5.0, min_interval=5.0)


def test_trailing_debounce_waits_for_quiet_after_the_last_request() -> None:
    assert T.due_at(last_request=100.0, first_pending=99.5, last_started=None) == 101.0
    assert T.delay(
        now=100.4, last_request=100.0, first_pending=99.5, last_started=None
    ) == pytest.approx(0.6)


def test_max_wait_caps_a_steady_trickle() -> None:
    # requests every 0.5 s since t=100 would push the debounce forever; max-wait stops it
    assert T.due_at(last_request=104.9, first_pending=100.0, last_started=None) == 105.0


def test_min_interval_delays_a_batch_that_is_otherwise_due() -> None:
    assert T.due_at(last_request=100.0, first_pending=100.0, last_started=98.0) == 103.0
    assert T.delay(
        now=101.5, last_request=100.0, first_pending=100.0, last_started=98.0
    ) == pytest.approx(1.5)


def test_a_due_batch_has_no_delay() -> None:
    assert T.delay(now=200.0, last_request=100.0, first_pending=100.0, last_started=50.0) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"debounce": -1.0},
        {"min_interval": -0.1},
        {"debounce": 2.0, "max_wait": 1.0},
    ],
)
def test_nonsense_timings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ReloadTiming(**kwargs)
