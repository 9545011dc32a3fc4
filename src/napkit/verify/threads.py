"""Torch on one thread inside a verification, without importing torch before a stage needs it.

On a shared 2-core machine more torch threads thrash, so ``verify_property`` runs inside
``one_thread()``. A query that symbolic bounds decide never loads torch (about 1 s of
start-up): the stages that use it call ``torch_pinned()`` first, which imports torch and
pins every active ``one_thread`` context to one thread; leaving a context restores the count.
"""

from __future__ import annotations

import sys

_active: list[one_thread] = []


class one_thread:
    """Context: torch on one thread (pinned now if torch is loaded, else when a stage loads it)."""

    def __enter__(self) -> one_thread:
        self.n: int | None = None
        _active.append(self)
        if "torch" in sys.modules:
            self._pin()
        return self

    def _pin(self) -> None:
        if self.n is None:
            import torch

            self.n = torch.get_num_threads()
            torch.set_num_threads(1)

    def __exit__(self, *exc) -> None:
        _active.remove(self)
        if self.n is not None:
            import torch

            torch.set_num_threads(self.n)


def torch_pinned() -> None:
    """Load torch for a stage that needs it, on one thread inside every active ``one_thread``."""
    import torch  # noqa: F401

    for ctx in _active:
        ctx._pin()
