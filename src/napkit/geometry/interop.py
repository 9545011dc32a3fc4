"""Export RDMs to rsatoolbox, when it is installed (it is optional, never required)."""

from __future__ import annotations

from typing import Any

from napkit.errors import NapkitError
from napkit.geometry.rdm import to_condensed


def to_rsatoolbox(rdm: Any, method: str = "unknown", descriptors: dict | None = None) -> Any:
    """An ``rsatoolbox.rdm.RDMs`` holding this RDM (square or condensed)."""
    try:
        from rsatoolbox.rdm import RDMs
    except ImportError as exc:
        raise NapkitError("to_rsatoolbox needs rsatoolbox: pip install rsatoolbox") from exc
    v = to_condensed(rdm)
    return RDMs(
        dissimilarities=v.reshape(1, -1),
        dissimilarity_measure=method,
        descriptors=dict(descriptors or {}),
    )
