"""Work split over forked processes: ``fork_map(fn, parts, deadline)`` runs ``fn(parts[0])``
here and every other part in a forked child, and returns their results in order.

Forking shares the query's state without pickling it (the children only send their results
back through a pipe). A child that fails, or has not answered ``grace`` seconds after the
deadline, gives ``None``: callers treat that part as undecided, never as decided.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

P = TypeVar("P")
R = TypeVar("R")

_LONGEST_WAIT_S = 86400.0  # the pipe's poll refuses larger timeouts (a deadline far away)


def _child(conn, fn, part) -> None:
    try:
        conn.send(fn(part))
    except Exception:  # noqa: BLE001 - the parent counts this part as undecided
        conn.send(None)
    finally:
        conn.close()


def fork_map(fn: Callable[[P], R], parts: Sequence[P], deadline: float, grace: float = 5.0
             ) -> list[R | None]:
    """``[fn(p) for p in parts]`` with ``parts[1:]`` in forked processes (``None`` for a child
    that failed or overran ``deadline`` by more than ``grace`` seconds; it is killed)."""
    if not parts:
        return []
    ctx = mp.get_context("fork")
    kids = []
    try:
        for part in parts[1:]:
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(send, fn, part), daemon=True)
            kids.append((recv, proc))
            proc.start()
            send.close()
        results: list[R | None] = [fn(parts[0])]
        for recv, _ in kids:
            wait = min(max(deadline - time.monotonic(), 0.0) + grace, _LONGEST_WAIT_S)
            try:
                results.append(recv.recv() if recv.poll(wait) else None)
            except (EOFError, OSError):
                results.append(None)
        return results
    finally:  # also when this process's part or a fork raised: no child outlives the call
        for recv, proc in kids:
            if proc.is_alive():
                proc.kill()
            if proc.pid is not None:
                proc.join()
            recv.close()


def worker_count(workers: int | Callable[[], int]) -> int:
    """How many processes to use now: ``workers`` itself, or asked of it when it is a callable
    (the cores another process holds may have come free); at least 1."""
    return max(1, workers() if callable(workers) else int(workers))


def can_fork() -> bool:
    """A daemon process (e.g. the falsifier) may not have children."""
    return not mp.current_process().daemon
