"""Outputs written atomically: staged beside their destination, then moved there by one rename.

A reader never sees half a file or half a folder, and a failed or interrupted write leaves
the earlier output (if any) in place and no temporary behind.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from napkit.errors import NapkitError


def check_parent(path: str | Path) -> Path:
    """The folder ``path`` is to be written into, refused unless it exists as a folder.

    Every output of napkit (files, stores, report and export folders, results files) goes
    through this one check: a missing parent folder is never created (a mistyped path would
    scatter folders), and the refusal is the same one line everywhere.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        raise NapkitError(f"cannot write {path}: {parent} {what}")
    return parent


def check_out_folder(out: str | Path, force: bool = False, option: str = "") -> Path:
    """An output folder that may be written into, checked before any work: in an existing
    folder (:func:`check_parent`), not a file, and empty unless ``force``. ``option`` (e.g.
    ``"--plots"``) names it in messages. Creates nothing."""
    out = Path(out)
    name = f"{option} {out}" if option else str(out)
    check_parent(out)
    if out.exists() and not out.is_dir():
        raise NapkitError(f"cannot write into {name}: it exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise NapkitError(f"{name} is not empty: choose another folder, or pass --force to write into it")
    return out


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write (same suffix, so writers that go by it still
    work); it replaces ``path`` by one rename when the block succeeds and is removed either way.
    An ``OSError`` becomes one :class:`NapkitError` naming ``path``."""
    path = Path(path)
    # unique per writer: two writers of one path at once must not share (and truncate) one file
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except IsADirectoryError:
        raise NapkitError(f"cannot write {path}: it is a folder") from None
    except OSError as exc:
        raise NapkitError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def save_png(fig, path: str | Path, dpi: int) -> Path:
    """Write a matplotlib figure as a PNG atomically and close it (also when writing fails)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def named(path: str | Path) -> Path:
    """``path``, or its resolved form when it has no name of its own (``.``, ``..``) or is a
    link: where a sibling of it (a staging folder, a journal) must go, beside the real folder."""
    path = Path(path)
    return path.resolve() if path.name in ("", "..") or path.is_symlink() else path


def kept_in_place(out: str | Path) -> bool:
    """``out`` is an existing folder that must be filled rather than replaced by a rename:
    a link (a rename would replace the link, not the folder it names), or the current folder
    or one above it."""
    out = Path(out)
    return out.is_dir() and (out.is_symlink() or Path.cwd().resolve().is_relative_to(out.resolve()))


def move_into_place(staged: Path, out: Path, last: str | None = None) -> None:
    """Put the finished folder ``staged`` at ``out`` (new, or an empty folder) by one rename;
    a folder that must stay (:func:`kept_in_place`: ``.``, a link) is filled instead, entry
    by entry, ``last`` (the file that marks the folder complete) last."""
    out = Path(out)
    if kept_in_place(out):
        for f in sorted(staged.iterdir(), key=lambda f: f.name == last):
            os.replace(f, out / f.name)
        staged.rmdir()
        return
    if out.is_dir():
        out.rmdir()  # empty: checked by the caller; rmdir refuses anything else
    os.replace(staged, out)


def staging_folder(out: Path) -> Path:
    """A fresh temporary folder beside ``out`` (same file system, so a rename moves it), with
    the permissions ``mkdir`` would give ``out`` (``mkdtemp`` makes it private)."""
    out = named(out)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
        mask = os.umask(0)
        os.umask(mask)
        staged.chmod(0o777 & ~mask)
        return staged
    except OSError as exc:
        raise NapkitError(f"cannot write {out}: {exc.strerror or exc}") from None
