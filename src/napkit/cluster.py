"""Work on a dask.distributed cluster: connect to a scheduler, map a function over parts.

napkit scales out through dask.distributed (the optional extra ``napkit[cluster]``), never
a scheduler of its own. Commands that take ``--scheduler tcp://HOST:PORT`` send their parts
(verification queries, store chunks, data blocks) to that cluster's workers and reduce
the answers in the calling process, so the result is the same as a local run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from napkit.errors import NapkitError

CONNECT_TIMEOUT_S = 10.0  # how long to wait for a scheduler before calling the address wrong


@contextmanager
def connect(scheduler: str, timeout: float = CONNECT_TIMEOUT_S) -> Iterator[Any]:
    """A ``dask.distributed.Client`` of the scheduler at ``scheduler`` (closed on exit)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise NapkitError(
            f"a scheduler address ({scheduler}) needs dask.distributed: pip install 'napkit[cluster]'"
        ) from None
    try:
        client = Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise NapkitError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
    try:
        yield client
    finally:
        client.close()


def map_on_cluster(
    scheduler: str, fn: Callable, parts: Sequence, *args: Any, on_done: Callable[[int], None] | None = None
) -> list:
    """``[fn(part, *args) for part in parts]`` computed on the cluster's workers, in order.

    ``on_done(n)`` is called as parts finish (for a progress bar). A failed part raises.
    """
    from dask.distributed import as_completed

    with connect(scheduler) as client:
        futures = [client.submit(fn, part, *args, pure=False) for part in parts]
        index = {f.key: i for i, f in enumerate(futures)}
        out: list = [None] * len(futures)
        try:
            for fut in as_completed(futures):
                out[index[fut.key]] = fut.result()
                if on_done is not None:
                    on_done(1)
        finally:
            client.cancel(futures)
        return out

