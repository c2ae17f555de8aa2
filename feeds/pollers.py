"""REST pollers for current funding and open interest, one per venue, that never give up.

    poller = FundingPoller("bybit", ["BTCUSDT", "ETHUSDT"], writer)   # writer: async, list in
    task = asyncio.create_task(poller.run())                          # cancel to stop
    poller.stats.as_dict()                                            # for `liqbot status`

Each poll fetches every symbol, hands one mixed list of Funding and OpenInterest to the writer,
and sleeps `interval_s`. A failed poll logs one WARNING line and retries sooner, with capped,
jittered backoff. Venue endpoints live in the VENUES table; parsing lives in feeds.venues.funding.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from feeds.clock import Clock, WallClock
from feeds.model import HOUR_MS, Funding, OpenInterest, ParseError
from feeds.net.backoff import Backoff
from feeds.net.http import HttpError, JsonClient, Sleep, describe
from feeds.venues import funding as fp

logger = logging.getLogger(__name__)

Item = Funding | OpenInterest
Writer = Callable[[list[Item]], Awaitable[Any]]
DEFAULT_INTERVAL_S = 300.0
# Published interval tables change rarely; refetch them hourly, not on every poll.
_TABLE_TTL_MS = HOUR_MS


@dataclass(slots=True)
class PollStats:
    """Counters and times (epoch ms) for `liqbot status`."""

    name: str
    last_ok_ms: int | None = None
    polls: int = 0
    items: int = 0
    failures: int = 0  # failed polls, all time
    consecutive_failures: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Poller:
    """Call `poll_once` every `interval_s` until cancelled; a failure never ends the loop.

    Failures retry sooner than the regular poll, with capped, jittered backoff, and log one
    WARNING line each. Subclasses implement `poll_once` (return items written) and `close`.
    """

    def __init__(self, name: str, interval_s: float, clock: Clock | None,
                 backoff: Backoff | None, sleep: Sleep) -> None:
        if interval_s <= 0:
            raise ValueError(f"{name}: interval_s must be > 0, got {interval_s}")
        self.name, self.interval_s, self.sleep = name, interval_s, sleep
        self.clock: Clock = clock or WallClock()
        self.backoff = backoff or Backoff(base_s=min(5.0, interval_s), cap_s=interval_s,
                                          rng=random.Random())
        self.stats = PollStats(name)

    async def poll_once(self) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        """Release the HTTP session; called when `run` ends."""

    async def run(self) -> None:
        """Poll until cancelled; `close` runs on the way out."""
        try:
            while True:
                await self.sleep(await self._attempt())
        finally:
            await self.close()

    async def _attempt(self) -> float:
        """Poll once; return how long to sleep before the next poll."""
        s = self.stats
        try:
            n = await self.poll_once()
        except Exception as exc:  # CancelledError is a BaseException and passes through
            s.failures += 1
            s.consecutive_failures += 1
            s.last_error = describe(exc)
            delay = self.backoff.next_delay()
            logger.warning("%s: poll failed (%s); retry %d in %.1fs",
                           self.name, s.last_error, self.backoff.attempt, delay)
            if not isinstance(exc, HttpError | ParseError):  # likely our bug: keep the trace
                logger.debug("%s: poll failure traceback", self.name, exc_info=exc)
            return delay
        s.polls += 1
        s.items += n
        s.consecutive_failures = 0
        s.last_ok_ms = self.clock.now_ms()
        self.backoff.reset()
        return self.interval_s


@dataclass
class _Ctx:
    """What a venue fetch needs: the client, the time, and a cache that outlives one poll."""

    name: str
    http: JsonClient
    clock: Clock
    cache: dict[str, tuple[int, Any]] = field(default_factory=dict)

    async def cached(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        now = self.clock.now_ms()
        hit = self.cache.get(key)
        if hit is not None and now - hit[0] < _TABLE_TTL_MS:
            return hit[1]
        value = await load()
        self.cache[key] = (now, value)
        return value


async def _each_symbol(
    ctx: _Ctx, symbols: Sequence[str], one: Callable[[str], Awaitable[list[Item]]]
) -> list[Item]:
    """Fetch symbol by symbol, so one delisted symbol cannot blank out the others."""
    items: list[Item] = []
    failed: list[tuple[str, Exception]] = []
    for symbol in symbols:
        try:
            items.extend(await one(symbol))
        except Exception as exc:
            failed.append((symbol, exc))
    if failed and not items:
        raise failed[0][1]
    if failed:
        logger.warning("%s: %d of %d symbols failed (%s: %s)", ctx.name, len(failed),
                       len(symbols), failed[0][0], describe(failed[0][1]))
    return items


# -- venues -------------------------------------------------------------------------------


async def _binance(ctx: _Ctx, symbols: Sequence[str]) -> list[Item]:
    # Symbols absent from fundingInfo settle every 8 h (PROTOCOLS.md §1); listed ones say so.
    intervals = await ctx.cached("fundingInfo", lambda: _get(
        ctx, "/fapi/v1/fundingInfo", {}, fp.parse_binance_funding_info))

    async def one(symbol: str) -> list[Item]:
        prem = await _get(ctx, "/fapi/v1/premiumIndex", {"symbol": symbol},
                          lambda raw: fp.parse_binance_premium_index(raw, intervals))
        mark = prem[0].mark_price if prem else None
        oi = await _get(ctx, "/fapi/v1/openInterest", {"symbol": symbol},
                        lambda raw: fp.parse_binance_open_interest(raw, mark))
        return [*(p.funding for p in prem), oi]

    return await _each_symbol(ctx, symbols, one)


def _bybit_category(symbol: str) -> str:
    """BTCUSD is inverse; BTCUSDT, BTCPERP (USDC) and the like are linear."""
    return "inverse" if symbol.upper().endswith("USD") else "linear"


async def _bybit(ctx: _Ctx, symbols: Sequence[str]) -> list[Item]:
    async def one(symbol: str) -> list[Item]:
        params = {"category": _bybit_category(symbol), "symbol": symbol}
        intervals = await ctx.cached(f"instruments:{symbol}", lambda: _get(
            ctx, "/v5/market/instruments-info", params, fp.parse_bybit_instruments))
        funding, oi = await _get(ctx, "/v5/market/tickers", params,
                                 lambda raw: fp.parse_bybit_tickers(
                                     raw, params["category"], intervals))
        return [*funding, *oi]

    return await _each_symbol(ctx, symbols, one)


async def _okx(ctx: _Ctx, symbols: Sequence[str]) -> list[Item]:
    async def one(symbol: str) -> list[Item]:
        funding = await _get(ctx, "/api/v5/public/funding-rate", {"instId": symbol},
                             fp.parse_okx_funding_rate)
        oi = await _get(ctx, "/api/v5/public/open-interest",
                        {"instType": "SWAP", "instId": symbol}, fp.parse_okx_open_interest)
        return [*funding, *oi]

    return await _each_symbol(ctx, symbols, one)


async def _deribit(ctx: _Ctx, symbols: Sequence[str]) -> list[Item]:
    async def one(symbol: str) -> list[Item]:
        now = ctx.clock.now_ms()
        # Hourly points: a 3 h window always holds the latest completed one.
        history = await _get(
            ctx, "/api/v2/public/get_funding_rate_history",
            {"instrument_name": symbol, "start_timestamp": now - 3 * HOUR_MS,
             "end_timestamp": now},
            lambda raw: fp.parse_deribit_funding_history(raw, symbol))
        oi = await _get(ctx, "/api/v2/public/ticker", {"instrument_name": symbol},
                        fp.parse_deribit_ticker)
        latest = [max(history, key=lambda f: f.ts_ms)] if history else []
        return [*latest, oi]

    return await _each_symbol(ctx, symbols, one)


async def _hyperliquid(ctx: _Ctx, symbols: Sequence[str]) -> list[Item]:
    raw = await ctx.http.post("/info", {"type": "metaAndAssetCtxs"})
    funding, oi = fp.parse_hyperliquid_meta_and_ctxs(raw, ctx.clock.now_ms(), symbols or None)
    missing = {s.upper() for s in symbols} - {f.symbol.upper() for f in funding}
    if missing:
        logger.warning("%s: no such coins in metaAndAssetCtxs: %s", ctx.name, sorted(missing))
    return [*funding, *oi]


async def _get(ctx: _Ctx, path: str, params: dict[str, Any], parse: Callable[[Any], Any]) -> Any:
    return parse(await ctx.http.get(path, params))


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """A venue's REST host, default symbols and fetch function."""

    base_url: str
    symbols: tuple[str, ...]
    fetch: Callable[[_Ctx, Sequence[str]], Awaitable[list[Item]]]


VENUES: dict[str, VenueSpec] = {
    "binance": VenueSpec("https://fapi.binance.com", ("BTCUSDT", "ETHUSDT", "SOLUSDT"), _binance),
    "bybit": VenueSpec("https://api.bybit.com", ("BTCUSDT", "ETHUSDT", "SOLUSDT"), _bybit),
    "okx": VenueSpec("https://www.okx.com",
                     ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP"), _okx),
    "deribit": VenueSpec("https://www.deribit.com", ("BTC-PERPETUAL", "ETH-PERPETUAL"), _deribit),
    # Funding and OI only: Hyperliquid has no public all-market liquidation feed (§7).
    "hyperliquid": VenueSpec("https://api.hyperliquid.xyz", ("BTC", "ETH", "SOL"), _hyperliquid),
}


class FundingPoller(Poller):
    """Poll one venue's current funding and open interest into `store_writer` until cancelled."""

    def __init__(
        self,
        venue: str,
        symbols: Sequence[str] | None,
        store_writer: Writer,
        base_url: str | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Clock | None = None,
        *,
        timeout_s: float = 10.0,
        retries: int = 1,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        try:
            self.spec = VENUES[venue.lower()]
        except KeyError:
            raise ValueError(f"no funding poller for {venue!r}: choose one of "
                             f"{', '.join(VENUES)}") from None
        super().__init__(venue.lower(), interval_s, clock, backoff, sleep)
        self.venue = self.name
        self.symbols = tuple(symbols) if symbols else self.spec.symbols
        self.store_writer = store_writer
        http = JsonClient(base_url or self.spec.base_url, name=self.venue, timeout_s=timeout_s,
                          retries=retries, sleep=sleep)
        self._ctx = _Ctx(self.venue, http, self.clock)

    async def poll_once(self) -> int:
        """Fetch every symbol once and write the batch; return how many items were written."""
        items = await self.spec.fetch(self._ctx, self.symbols)
        if items:
            await self.store_writer(items)
        return len(items)

    async def run(self) -> None:
        logger.info("%s: polling funding and OI for %s every %.0fs",
                    self.venue, ", ".join(self.symbols), self.interval_s)
        await super().run()

    async def close(self) -> None:
        await self._ctx.http.close()
