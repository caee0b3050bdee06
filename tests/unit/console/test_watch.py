"""The redrawn screen of ``tickfleet status --watch`` (and any screen ``redraw`` keeps):
drawn in place on a terminal, left quietly by Ctrl-C wherever it lands, and an API that
does not answer shown as a problem rather than ending the watch."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from rich.console import Console, RenderableType
from rich.text import Text

from producers.console.status import render_watched, unreachable
from producers.console.terminal import redraw

pytestmark = pytest.mark.timeout(10)
AT = datetime(2026, 6, 10, 11, 0, 22, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def _terminal() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=100, color_system=None), screen


def _plain(screen: io.StringIO) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())


def _watch(draw: Callable[[], RenderableType], every: float, out: Console, wait: _CtrlC) -> None:
    """``redraw``, failing the test (not interrupting the run) if Ctrl-C escapes it."""
    try:
        redraw(draw, every, out, wait)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped redraw: the operator would see a traceback")


class _CtrlC:
    """The operator's Ctrl-C after ``presses`` waits, counting the waits asked for."""

    def __init__(self, presses: int) -> None:
        self.presses = presses
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) == self.presses:
            raise KeyboardInterrupt


def test_redraw_draws_in_place_until_ctrl_c() -> None:
    out, screen = _terminal()
    frames = iter(["fleet healthy", "fleet healthy", "fleet degraded"])
    ctrl_c = _CtrlC(presses=3)

    _watch(lambda: Text(next(frames)), 0.5, out, ctrl_c)

    assert ctrl_c.waits == [0.5, 0.5, 0.5]
    text = _plain(screen)
    assert text.index("fleet healthy") < text.index("fleet degraded")
    assert text.count("fleet") == 4  # three frames, and the last one left on the screen
    assert screen.getvalue().count("\r\x1b[2K") == 3  # each frame over the one before


def test_ctrl_c_while_drawing_ends_quietly_too() -> None:
    out, _ = _terminal()
    drawn: list[int] = []

    def draw() -> RenderableType:
        drawn.append(1)
        if len(drawn) == 2:
            raise KeyboardInterrupt  # pressed while the health request was waiting
        return Text("fleet healthy")

    _watch(draw, 0.1, out, _CtrlC(presses=99))

    assert len(drawn) == 2


def test_an_unreachable_api_is_a_problem_and_the_fleet_unknown() -> None:
    summary = unreachable("[Errno 111] Connection refused")
    assert not summary.healthy
    out, screen = _terminal()
    out.print(render_watched(summary, AT, 2.0))
    text = _plain(screen)
    assert text.startswith("fleet unknown\n")
    assert "problem: API unreachable: [Errno 111] Connection refused" in text
    assert "as of 11:00:22, every 2s (Ctrl-C to stop)" in text
    assert "public summary" not in text  # no document at all, not the public one
