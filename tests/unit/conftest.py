"""Unit tests never touch the network: every socket connection attempt fails loudly."""

from __future__ import annotations

import socket
from typing import Any

import pytest


class NetworkBlocked(RuntimeError):
    """A unit test tried to open a network connection."""


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise NetworkBlocked(f"unit tests must not use the network (connect to {args[1:]!r})")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
