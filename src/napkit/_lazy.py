"""Lazy exports for a room's ``__init__``: heavy libraries load on first use, not on import.

``napkit`` starts in well under a second when a command needs only numpy (a VNN-LIB query
proved by bounds); torch, onnxruntime, scikit-learn and zarr load only where they are used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, where: dict[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package`` resolving each name from its submodule on demand.

    ``where`` maps an exported name to the submodule (relative to ``package``) defining it.
    """

    def __getattr__(name: str):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(where))

    return __getattr__, __dir__
