"""A rich progress bar on stderr that never gets in the way of machine-readable stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_console = Console(stderr=True)


@contextmanager
def progress_bar(total: int, description: str, enabled: bool = True, start: int = 0) -> Iterator:
    """Yield an ``advance(n)`` callable; a no-op when disabled or stderr is not a terminal.

    ``start``: work already done (a resumed run), shown as done but not counted in the rate."""
    if not enabled or not sys.stderr.isatty():
        yield lambda n=1: None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_console,
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total, completed=start)
        yield lambda n=1: bar.advance(task, n)


@contextmanager
def status_line(description: str, enabled: bool = True) -> Iterator:
    """A live status line (spinner, text, elapsed time) on stderr for work without a known size.

    Yields ``update(text)`` to change the text; a no-op when disabled or stderr is not a terminal.
    """
    if not enabled or not sys.stderr.isatty():
        yield lambda text: None
        return
    line = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=_console,
        transient=True,
    )
    with line:
        task = line.add_task(description, total=None)
        yield lambda text: line.update(task, description=text)
