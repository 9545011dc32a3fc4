"""fork_map: results in order, a failed child is None, and no child outlives the call."""

import multiprocessing as mp
import os
import time

import pytest

from napkit.verify.forked import fork_map


def test_results_come_back_in_order_from_every_process():
    got = fork_map(lambda p: (p * p, os.getpid()), [1, 2, 3], time.monotonic() + 30)
    assert [g[0] for g in got] == [1, 4, 9]
    assert got[0][1] == os.getpid() and len({g[1] for g in got}) == 3


def test_a_child_that_fails_or_overruns_gives_none():
    def work(p):
        if p == "raise":
            raise RuntimeError("a child's failure")
        if p == "exit":
            os._exit(3)
        if p == "hang":
            time.sleep(60)
        return p

    got = fork_map(work, ["here", "raise", "exit", "hang"], time.monotonic() + 0.5, grace=0.5)
    assert got == ["here", None, None, None]
    assert not mp.active_children()


def test_no_child_outlives_a_failure_of_this_process_part():
    parent = os.getpid()

    def work(p):
        if os.getpid() == parent:
            raise RuntimeError("this process's part failed")
        time.sleep(60)

    with pytest.raises(RuntimeError, match="this process's part"):
        fork_map(work, [0, 1, 2], time.monotonic() + 60)
    assert not mp.active_children()
