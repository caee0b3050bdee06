"""The terminal the command line writes to, and its progress display.

rich drops colours and animation by itself when output is not a terminal; a pipe or a
test still gets a table wide enough for the option chain's eleven columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
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
    transaction), so the bar pulses rather than pretending to a fraction.
    """
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
    ) as progress:
        progress.add_task(description, total=None)
        yield
