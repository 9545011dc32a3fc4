"""LM tests run with sockets forbidden: no code path may contact a model hub."""

from __future__ import annotations

import socket

import pytest

_INTERNET = (socket.AF_INET, socket.AF_INET6)


class _NoNetwork(socket.socket):
    """Internet sockets raise; local ones (asyncio's self-pipe, used by zarr) still work."""

    def __init__(self, family=-1, *args, **kwargs) -> None:
        if family in _INTERNET or family == -1 and not args and not kwargs.get("fileno"):
            raise OSError("network access is forbidden in napkit's LM tests")
        super().__init__(family, *args, **kwargs)


def _no_connection(*args, **kwargs):
    raise OSError("network access is forbidden in napkit's LM tests")


@pytest.fixture(scope="session", autouse=True)
def no_network():
    """Every test under tests/lm/ (and its session fixtures) fails if anything opens a socket."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "socket", _NoNetwork)
        mp.setattr(socket, "create_connection", _no_connection)
        yield


@pytest.fixture(scope="session")
def tiny(no_network):
    """The committed reference tiny model (loaded once per test session)."""
    from napkit.lm.models import load_tiny

    return load_tiny()
