"""The destination type and the shared retry: what every chat adapter relies on."""

from __future__ import annotations

import asyncio

import pytest

from bot.chat import lifecycle
from bot.chat.lifecycle import Lifecycle, keep_trying
from bot.chat.text import pack
from bot.destination import Destination


@pytest.mark.parametrize("text, platform, chat", [
    ("telegram:-100123", "telegram", "-100123"),
    ("telegram:@channel", "telegram", "@channel"),
    ("discord-webhook:1234567890", "discord-webhook", "1234567890"),
    ("console", "console", ""),
])
def test_a_destination_round_trips(text, platform, chat):
    dest = Destination.parse(text)
    assert (dest.platform, dest.chat_id) == (platform, chat)
    assert str(dest) == text and Destination.parse(str(dest)) == dest


@pytest.mark.parametrize("text", ["", "telegram:", ":123", " telegram:1"])
def test_a_malformed_destination_says_what_is_wrong(text):
    with pytest.raises(ValueError, match="destination"):
        Destination.parse(text)


async def test_keep_trying_retries_transient_errors_and_lets_fatal_ones_through(monkeypatch):
    monkeypatch.setattr(lifecycle, "retry_delay", lambda attempt, cap_s: 0.0)
    tries: list[int] = []
    cleaned: list[int] = []

    async def flaky() -> None:
        tries.append(1)
        if len(tries) < 3:
            raise OSError("refused")

    async def cleanup() -> None:
        cleaned.append(1)

    await keep_trying(flaky, platform="x", what="cannot connect", cap_s=1, transient=(OSError,),
                      between=cleanup)
    assert (len(tries), len(cleaned)) == (3, 2)

    async def refused() -> None:
        raise PermissionError("bad token")

    with pytest.raises(PermissionError):
        await keep_trying(refused, platform="x", what="cannot connect", cap_s=1,
                          transient=(Exception,), fatal=(PermissionError,))


def test_retry_delay_grows_to_the_cap_with_jitter():
    delays = [lifecycle.retry_delay(n, 30.0) for n in range(1, 12)]
    assert 0.8 <= delays[0] <= 1.0 and all(24.0 <= d <= 30.0 for d in delays[6:])


async def test_a_replay_waits_for_the_connect_to_settle_and_a_live_run_does_not():
    ready = False
    life = Lifecycle("x", lambda: ready)
    gate = asyncio.Event()

    async def connect() -> None:
        nonlocal ready
        await gate.wait()
        ready = True
        life.settle()

    await life.begin(connect(), live=True, wait_s=5)
    assert not await life.wait_ready(0.01)
    gate.set()
    assert await life.wait_ready(1)
    await life.cancel()


def test_pack_cuts_only_between_pieces_and_drops_blank_messages():
    assert pack(["aaa", "bb", "c", " "], limit=6) == ["aaa\nbb", "c\n "]
    assert pack(["", "  "], limit=6) == []
