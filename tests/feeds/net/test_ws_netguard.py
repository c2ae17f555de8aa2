"""The test rig itself: the network guard stops sockets and feeds aimed past 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket

import pytest

from feeds.net.ws import WsFeed
from tests.helpers.fake_ws import wait_until
from tests.helpers.netguard import NetworkBlocked, install
from tests.helpers.ws_feed_rig import (
    FAST,
    Recorder,
    fast_backoff,
    parse_binance,
    running,
    warnings_from,
)

pytestmark = pytest.mark.usefixtures("loopback_only")


def test_netguard_refuses_non_loopback_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = install(monkeypatch)
    with socket.socket() as s, pytest.raises(NetworkBlocked):
        s.connect(("192.0.2.1", 443))
    with socket.socket() as s, pytest.raises(NetworkBlocked):
        s.connect_ex(("192.0.2.1", 443))
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("fstream.binance.com", 443)
    assert guard.blocked == ["192.0.2.1:443", "192.0.2.1:443", "dns:fstream.binance.com"]
    guard.blocked.clear()  # or the loopback_only fixture fails this test on teardown


async def test_a_feed_aimed_at_the_internet_is_stopped_by_the_guard(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    guard = install(monkeypatch)
    rec = Recorder()
    feed = WsFeed("binance", "ws://192.0.2.1:9/market/ws/x", parse_binance, rec.sink,
                  timing=FAST, backoff=fast_backoff())
    async with asyncio.timeout(5), running(feed):
        await wait_until(lambda: feed.stats.failures >= 2)
    assert "NetworkBlocked" in warnings_from(caplog, "connect failed")[0]
    assert set(guard.blocked) == {"192.0.2.1:9"}
    guard.blocked.clear()
