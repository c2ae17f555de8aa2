"""REST sources of a live run beside the sockets: funding/OI pollers, CoinGlass aggregates.

    sources = Sources(settings, ingest, writer)    # ingest: async, a mixed list of model items
    tasks = sources.start()                        # one task per poller; cancel them to stop
    await writer.run(sources.save_status, store, now_ms)   # for `liqbot status`

Funding and open interest feed the alert context and `/funding`; with a CoinGlass key its
aggregated bars become an aggregate source, and its per-exchange totals of the last hour are
compared with our own (the cross-check `liqbot status` shows: how complete are our feeds).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.config import Settings
from bot.ops.health import CHECK_KEY, POLLERS_KEY
from bot.state.writer import Writer
from feeds.clock import Clock, WallClock
from feeds.model import HOUR_MS, MARKET
from feeds.pollers import FundingPoller, Poller
from feeds.store import Store, Totals
from feeds.venues.coinglass_api import CoinglassClient, CoinglassPoller, cross_check

logger = logging.getLogger(__name__)

Ingest = Callable[[list[Any]], Awaitable[Any]]


class CrossCheck(Poller):
    """Every `interval_s`: our last hour per exchange against CoinGlass's exchange list."""

    def __init__(self, client: CoinglassClient, ours: Callable[[int], Awaitable[Totals]],
                 save: Callable[[dict[str, Any]], Awaitable[Any]], *,
                 interval_s: float = 3600.0, clock: Clock | None = None) -> None:
        super().__init__("coinglass-check", interval_s, clock, None, asyncio.sleep)
        self.client, self.ours, self.save = client, ours, save

    async def poll_once(self) -> int:
        now = self.clock.now_ms()
        totals = await self.ours(now)
        mine = {e: (lg, sh) for e, lg, sh in totals.by("exchange")}
        mine[MARKET] = (totals.long_usd, totals.short_usd)
        rows = cross_check(mine, await self.client.exchange_list("", "1h"))
        await self.save({"at_ms": now, "window": "1h", "rows": [
            {"exchange": e, "ours_usd": o, "coinglass_usd": t, "ratio": r} for e, o, t, r in rows]})
        market = next((r for r in rows if r[0] == MARKET), None)
        if market and market[3] is not None:
            logger.info("coinglass cross-check: our last hour is %.0f%% of CoinGlass's total",
                        market[3] * 100)
        return len(rows)


class Sources:
    """The pollers `settings` asks for, writing through `ingest` and `writer`."""

    def __init__(self, settings: Settings, ingest: Ingest, writer: Writer,
                 clock: Clock | None = None) -> None:
        self.clock = clock or WallClock()
        self.pollers: list[Poller] = [
            FundingPoller(venue, None, ingest, base_url=settings.funding_urls.get(venue),
                          interval_s=settings.funding_interval_s, clock=self.clock)
            for venue in settings.funding_venues
        ]
        if settings.coinglass_api_key:
            self.pollers += self._coinglass(settings, ingest, writer)

    def _coinglass(self, settings: Settings, ingest: Ingest, writer: Writer) -> list[Poller]:
        options: dict[str, Any] = {"plan": settings.coinglass_plan}
        if settings.coinglass_url:
            options["base_url"] = settings.coinglass_url
        bars = CoinglassPoller(settings.coinglass_api_key, ingest,
                               symbols=settings.coinglass_symbols, clock=self.clock, **options)

        async def ours(now_ms: int) -> Totals:
            return await writer.run(writer.store.totals, now_ms, HOUR_MS, source="events")

        async def save(doc: dict[str, Any]) -> None:
            await writer.run(writer.store.set_meta, CHECK_KEY, json.dumps(doc))

        # One client, so both share its rate limiter (the plan's requests per minute).
        return [bars, CrossCheck(bars.client, ours, save, clock=self.clock)]

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(p.run(), name=f"poll-{p.name}") for p in self.pollers]

    def save_status(self, store: Store, now_ms: int) -> None:
        """Write the pollers' counters where `liqbot status` reads them (writer thread)."""
        store.set_meta(POLLERS_KEY, json.dumps(
            {"at_ms": now_ms, "pollers": [p.stats.as_dict() for p in self.pollers]}))

