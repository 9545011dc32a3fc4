"""LM tests run with sockets forbidden: no code path may contact a model hub."""

from __future__ import annotations

import socket

import pytest


class _NoNetwork(socket.socket):
    def __init__(self, *args, **kwargs) -> None:
        raise OSError("network access is forbidden in napkit's LM tests")


@pytest.fixture(scope="session", autouse=True)
def no_network():
    """Every test under tests/lm/ (and its session fixtures) fails if anything opens a socket."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "socket", _NoNetwork)
        mp.setattr(socket, "create_connection", _NoNetwork)
        yield


@pytest.fixture(scope="session")
def tiny(no_network):
    """The committed reference tiny model (loaded once per test session)."""
    from napkit.lm.models import load_tiny

    return load_tiny()
