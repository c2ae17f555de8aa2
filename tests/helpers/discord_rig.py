"""The Discord delivery rig: the fake, a writer, both Discord services and an operator sink."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.chat.delivery import deliver_due
from bot.config import Settings
from bot.discord.delivery import DiscordLimits
from bot.discord.service import DiscordService, DiscordWebhookService
from bot.discord.webhook import parse_webhook_url
from bot.policy import Policy, PolicyConfig
from bot.state.outbox import Outbox
from bot.state.subscriptions import Subscription, Subscriptions
from bot.state.writer import Writer
from signals import SignalParams
from tests.helpers.factories import Ops, make_alert
from tests.helpers.fake_discord import CHANNEL_ID, TOKEN, FakeDiscord, FakeLimits

FAST = PolicyConfig(retry_base_ms=50, retry_cap_ms=400, max_attempts=4)
QUICK = DiscordLimits(inline_wait_s=1.0, backoff_s=0.05, timeout_s=2.0)
ALERT = make_alert(track_record="after 37 similar: BTC median +1.8 % at 4h")
OTHER = make_alert(key="second", scope="ETH")
CHANNEL = f"discord:{CHANNEL_ID}"
CKEY = ("channel", CHANNEL_ID)



@dataclasses.dataclass
class Rig:
    fake: FakeDiscord
    writer: Writer
    hooks: DiscordWebhookService
    bot: DiscordService
    ops: Ops
    ids: list[str]  # webhook ids, in configured order
    hooks_db: str = ""

    @property
    def store(self) -> Any:
        return self.writer.store

    def writer_files(self) -> list[Path]:
        db = Path(self.hooks_db)
        return [f for f in (db, Path(f"{db}-wal")) if f.exists()]

    def dest(self, i: int = 0) -> str:
        return f"discord-webhook:{self.ids[i]}"

    def key(self, i: int = 0) -> tuple[str, str]:
        return ("webhook", self.ids[i])

    def posts(self, i: int = 0) -> list[Any]:
        return [c for c in self.fake.calls if c.key == self.key(i)]

    async def record(self, alert: Any, *destinations: str) -> None:
        def go() -> None:
            Policy(self.store, SignalParams()).record([alert], list(destinations),
                                                      int(time.time() * 1000))
        await self.writer.run(go)

    async def deliver(self) -> int:
        notifiers = {"discord-webhook": self.hooks.notifier, "discord": self.bot.notifier,
                     "ops": self.ops}
        return await deliver_due(Outbox(self.store, FAST), notifiers, int(time.time() * 1000),
                                 self.writer.run)

    async def drain(self, within_s: float = 8.0) -> None:
        """Deliver until nothing is pending, sleeping until the next item is due."""
        async with asyncio.timeout(within_s):
            while True:
                await self.deliver()
                nxt = await self.writer.run(Outbox(self.store, FAST).next_due_ms,
                                            ["discord-webhook", "discord"])
                if nxt is None:
                    return
                await asyncio.sleep(max(0.01, nxt / 1000 - time.time()))

    async def rows(self) -> dict[tuple[str, str], tuple[Any, ...]]:
        def go() -> dict[tuple[str, str], tuple[Any, ...]]:
            cur = self.store.database.conn.execute(
                "SELECT alert_key, destination, status, attempts, maybe_sent, next_ms FROM outbox")
            return {(r[0], r[1]): tuple(r[2:]) for r in cur}
        return await self.writer.run(go)

    async def sub(self, platform: str, chat: str) -> Subscription | None:
        return await self.writer.run(Subscriptions(self.store).get, platform, chat)


@contextlib.asynccontextmanager
async def discord_rig(tmp_path: Path, monkeypatch: Any, fake_limits: FakeLimits,
                      limits: DiscordLimits) -> AsyncIterator[Rig]:
    """Both services started against a fresh fake; every payload checked for mentions after."""
    async with FakeDiscord(limits=fake_limits) as fake:
        fake.point_discord_py(monkeypatch)
        urls = (fake.add_webhook(), fake.add_webhook())
        db = str(tmp_path / "d.db")
        settings = Settings(db=db, discord_token=TOKEN, discord_webhook_urls=urls,
                            discord_channel_ids=(CHANNEL_ID,))
        writer = Writer(db)
        hooks = DiscordWebhookService(settings, limits=limits)
        bot = DiscordService(settings, limits=limits)
        try:
            async with asyncio.timeout(20):
                await hooks.start(writer, live=False)
                await bot.start(writer, live=False)
                assert bot.notifier.ready
                yield Rig(fake, writer, hooks, bot, Ops(), [parse_webhook_url(u).id for u in urls],
                          db)
        finally:
            await hooks.stop()
            await bot.stop()
            writer.close()
        # Whatever a test sent, through webhook or bot, no message could ping anyone.
        assert all(p["allowed_mentions"] == {"parse": []} for p in fake.all_payloads())


def with_limits(fake: FakeLimits, ours: DiscordLimits) -> Any:
    return pytest.mark.parametrize("rig", [(fake, ours)], indirect=True, ids=[""])
