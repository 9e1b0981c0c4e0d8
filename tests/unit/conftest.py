"""The unit layer: pure logic, no server, no database, no S3; the whole layer runs in seconds.

Every test here is marked `unit` (`pytest -m unit`, or `make test-fast`), and none reaches a
network service: every connection is refused, as by a host where nothing listens. A test that
needs a service belongs beside the behaviour tests above.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.unit)


class NoServiceInUnitTests(ConnectionRefusedError):
    """What a unit test's connection gets: the refusal of a port where nothing listens."""


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse outbound connections, so a unit test cannot quietly come to need a service."""

    def refuse(_socket: socket.socket, address: Any, *_: Any) -> None:
        raise NoServiceInUnitTests(f"unit tests reach no service (connecting to {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield
