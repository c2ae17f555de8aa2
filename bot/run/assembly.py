"""Putting a run together from Settings: chat services and sinks, live feeds, telemetry.

Both loops (replay.py, live.py) open a `Run` with `assemble(...)`: it holds the database
lock and the writer for as long as the `with` lasts and carries what the loops share, so
they pass one object instead of eight loose arguments.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from bot.chat.base import ChatService, Notifier
from bot.chat.console import ConsoleNotifier
from bot.config import ConfigError, Settings
from bot.ops.metrics import Metrics
from bot.ops.telemetry import Telemetry
from bot.policy import PolicyConfig
from bot.run.lock import acquire_lock, release_lock
from bot.run.pipeline import Pipeline, flush
from bot.run.writes import WriteGuard
from bot.state.writer import Writer
from feeds.clock import Clock
from feeds.net.backoff import Backoff
from feeds.net.ws import FeedStats, GapFn, Sink
from feeds.venues.base import FeedOptions
from feeds.venues.registry import venue_module

logger = logging.getLogger(__name__)


class Feed(Protocol):
    """A live market-data socket as the run sees it: run it, read its counters."""

    stats: FeedStats

    async def run(self) -> None: ...


@dataclass
class RunSummary:
    events_new: int = 0
    items: int = 0
    evaluations: int = 0  # every evaluation, scheduled or woken by a batch
    triggered: int = 0  # of them, woken by a batch that may have crossed a tier
    alerts: int = 0
    delivered: int = 0


def build_notifiers(settings: Settings, stream: TextIO | None = None) -> dict[str, Notifier]:
    """Always-on sinks: each is its own destination (the console)."""
    notifiers: dict[str, Notifier] = {}
    if settings.console:
        notifiers["console"] = ConsoleNotifier(stream)
    return notifiers


def chat_services(settings: Settings) -> list[ChatService]:
    """Chat platforms configured in `settings`: a notifier each, plus its lifecycle."""
    services: list[ChatService] = []
    if settings.telegram_token:
        from bot.telegram.service import (
            TelegramService,  # PTB loads only when Telegram is configured
        )

        services.append(TelegramService(settings))
    if settings.discord_webhook_urls or settings.discord_token or settings.discord_channel_ids:
        from bot.discord.service import discord_services  # discord.py loads only when configured

        services += discord_services(settings)
    return services


class Chats:
    """Sinks plus chat services of one run: who is a destination, who routes by subscription."""

    def __init__(self, sinks: Mapping[str, Notifier], services: Sequence[ChatService],
                 ops: Telemetry) -> None:
        self.services = list(services)
        self.fixed = list(sinks)
        self.platforms = [s.name for s in self.services]
        self.notifiers: dict[str, Notifier] = ops.wrap(
            {**sinks, **{s.name: s.notifier for s in self.services}})

    def pipeline(self, writer: Writer, settings: Settings) -> Pipeline:
        policy = PolicyConfig(cooldown_ms=int(settings.cooldown_s * 1000))
        return Pipeline(writer.store, settings.signals, self.fixed, policy,
                        platforms=self.platforms)

    async def start(self, writer: Writer, *, live: bool) -> None:
        for service in self.services:
            await service.start(writer, live=live)

    async def stop(self) -> None:
        for service in self.services:
            try:
                await service.stop()
            except Exception:
                logger.exception("%s: stop failed", service.name)

    def ready(self) -> list[str]:
        return [name for name, n in self.notifiers.items() if n.ready]


@dataclass
class Run:
    """What the replay and live loops share; `summary` is what they return."""

    settings: Settings
    writer: Writer
    pipeline: Pipeline
    chats: Chats
    ops: Telemetry
    summary: RunSummary = field(default_factory=RunSummary)

    async def flush(self, now_ms: int) -> int:
        """Deliver what is due at `now_ms`; how many deliveries succeeded."""
        return await flush(self.writer, self.pipeline, self.chats.notifiers, now_ms)

    async def stop(self) -> None:
        """Stop the chat services and the ops endpoint (the writer closes with the `with`)."""
        await self.chats.stop()
        await self.ops.stop()


@contextlib.contextmanager
def assemble(settings: Settings, *, notifiers: Mapping[str, Notifier] | None = None,
             services: Sequence[ChatService] | None = None, metrics: Metrics | None = None,
             ops_listen: str | None = None) -> Iterator[Run]:
    """Take the database lock and open the writer; both are let go whatever fails inside.

    `notifiers` and `services` default to what `settings` configures (tests inject theirs).
    """
    ops = Telemetry(metrics, ops_listen)
    chats = Chats(notifiers if notifiers is not None else build_notifiers(settings),
                  services if services is not None else chat_services(settings), ops)
    lock = acquire_lock(settings.db)
    writer = Writer(settings.db)
    try:
        yield Run(settings, writer, chats.pipeline(writer, settings), chats, ops)
    finally:
        writer.close()
        release_lock(lock)


def build_feeds(settings: Settings, sink: Sink, clock: Clock, on_gap: GapFn) -> list[Feed]:
    """Every configured venue's live sockets, from the venue registry."""
    feeds: list[Feed] = []
    cap = settings.backoff_cap_s
    for name in settings.venues:
        venue = venue_module(name)
        rest_url = settings.rest_urls.get(name)
        if rest_url is not None and venue.DEFAULT_REST_URL is None:
            raise ConfigError(f"feeds.rest_urls.{name}: {name} takes no REST URL")
        feeds += venue.make_feeds(sink, FeedOptions(
            clock=clock, on_gap=on_gap, backoff=Backoff(base_s=min(1.0, cap), cap_s=cap),
            store_path=settings.db, url=settings.ws_urls.get(name), rest_url=rest_url,
            api_key=settings.coinglass_api_key if name == "coinglass" else None))
    return feeds


def gap_recorder(run: Run, writes: WriteGuard | None = None) -> GapFn:
    """The feeds' `on_gap`: count the outage and record it for `liqbot status`.

    With `writes`, a record the database refuses (full disk) is held and retried in line
    with the events, instead of a traceback and a gap nobody sees.
    """
    async def on_gap(exchange: str, start_ms: int, end_ms: int | None, reason: str) -> None:
        run.ops.gap(exchange, start_ms, end_ms)
        record = run.writer.store.record_gap
        if writes is not None:
            await writes.call(record, exchange, start_ms, end_ms, reason)
        else:
            await run.writer.run(record, exchange, start_ms, end_ms, reason)

    return on_gap
