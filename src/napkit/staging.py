"""Folders written atomically: staged beside their destination, then moved there by one rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from napkit.errors import NapkitError


def staging_folder(out: Path) -> Path:
    """A fresh temporary folder beside ``out`` (same file system, so a rename moves it), with
    the permissions ``mkdir`` would give ``out`` (``mkdtemp`` makes it private)."""
    parent = out.parent if str(out.parent) else Path(".")
    try:
        staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
        mask = os.umask(0)
        os.umask(mask)
        staged.chmod(0o777 & ~mask)
        return staged
    except OSError as exc:
        raise NapkitError(f"cannot write {out}: {exc.strerror or exc}") from None
