"""Keep tests on loopback: any connect to another address is refused and fails the test.

Use as a fixture (`loopback_only`); tests/conftest.py can make it autouse with
`from tests.helpers.netguard import loopback_only` plus an autouse wrapper, or call
`install(monkeypatch)` from its own fixture.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class NetworkBlocked(ConnectionRefusedError):
    """A test tried to reach a non-loopback address."""


class NetGuard:
    """Records every refused destination so the fixture can fail the test afterwards."""

    def __init__(self) -> None:
        self.blocked: list[str] = []

    def check_address(self, address: Any) -> None:
        """Raise NetworkBlocked unless `address` is a loopback IP (or not an IP socket)."""
        if not isinstance(address, tuple):
            return  # AF_UNIX path or abstract name: never leaves the machine
        host = str(address[0]).split("%", 1)[0]  # drop an IPv6 scope id
        if _is_loopback(host):
            return
        self.blocked.append(f"{host}:{address[1]}")
        raise NetworkBlocked(f"network access disallowed in tests: {host}:{address[1]}")

    def check_lookup(self, host: Any) -> None:
        """Refuse DNS lookups of real names: resolving one is already network traffic."""
        if host is None:
            return
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.lower() in _LOCAL_NAMES or _is_ip_literal(name):
            return
        self.blocked.append(f"dns:{name}")
        raise socket.gaierror(socket.EAI_NONAME, f"DNS disallowed in tests: {name}")


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def install(monkeypatch: pytest.MonkeyPatch) -> NetGuard:
    """Wrap socket connect, connect_ex and getaddrinfo for the rest of the test."""
    guard = NetGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        guard.check_address(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard.check_address(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        guard.check_lookup(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return guard


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetGuard]:
    """Refuse non-loopback connects; fail the test if code tried one, even if it caught that."""
    guard = install(monkeypatch)
    yield guard
    if guard.blocked:
        pytest.fail(f"test tried to reach the network: {', '.join(guard.blocked)}")
