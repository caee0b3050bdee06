"""The terminal the command line writes to, its progress display, and its redrawn screens.

rich drops colours and animation by itself when output is not a terminal; a pipe or a
test still gets a table wide enough for the option chain's eleven columns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

PIPE_WIDTH = 160


def console(stderr: bool = False) -> Console:
    out = Console(stderr=stderr)
    if not out.is_terminal:
        out = Console(stderr=stderr, width=PIPE_WIDTH)
    return out


@contextmanager
def working(description: str) -> Iterator[None]:
    """A spinner, a pulsing bar and the time taken on stderr while a long step runs.

    The step reports no fraction done (an instrument refresh is one download and one
    transaction), so the bar pulses rather than pretending to a fraction. Off a terminal
    nothing is shown (rich would still end with an empty line on stderr).
    """
    out = console(stderr=True)
    if not out.is_terminal:
        yield
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    ) as progress:
        progress.add_task(description, total=None)
        yield


def redraw(
    draw: Callable[[], RenderableType],
    every: float,
    out: Console,
    wait: Callable[[float], object] = time.sleep,
) -> None:
    """Draw, then redraw in place every ``every`` seconds until Ctrl-C.

    Ctrl-C is how a watching operator leaves, not a failure: it ends the loop quietly
    wherever it lands (in ``draw`` too, which may be waiting on the network), and the
    last screen stays on the terminal.
    """
    try:
        with Live(console=out, auto_refresh=False) as live:
            while True:
                live.update(draw(), refresh=True)
                wait(every)
    except KeyboardInterrupt:
        return
