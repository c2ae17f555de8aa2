"""CoinGlass API v4 REST: liquidation aggregates for backfill, a live poller and cross-checks.

    n = await backfill(writer, api_key, since_ms=t0, until_ms=t1)      # writer: list[Bucket]
    task = asyncio.create_task(CoinglassPoller(api_key, writer).run())
    rows = cross_check({"bybit": (long, short)}, await client.exchange_list("BTC"))

The key travels only in the `CG-API-KEY` header; it never appears in a log line or an error.
Numbers arrive as JSON numbers on some endpoints and strings on others (PROTOCOLS.md §8), so
every figure goes through Decimal(str(v)); the envelope `code` is the STRING "0" on success.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from feeds.clock import Clock, WallClock
from feeds.model import DAY_MS, MARKET, MINUTE_MS, Bucket, ParseError, coin_of, floor_ms
from feeds.net.backoff import Backoff
from feeds.net.http import AuthError, HttpError, JsonClient, RateLimited, RateLimiter, Sleep
from feeds.pollers import Poller
from feeds.venues.parsing import dec, need, text, ts_ms

logger = logging.getLogger(__name__)

BASE_URL = "https://open-api-v4.coinglass.com"
KEY_HEADER = "CG-API-KEY"
KEY_ENV = "LIQBOT_COINGLASS_API_KEY"
AGGREGATED = "/api/futures/liquidation/aggregated-history"
PAIR = "/api/futures/liquidation/history"
EXCHANGES = "/api/futures/liquidation/exchange-list"
# aggregated-history requires an exchange list; these are the venues liqbot itself streams.
DEFAULT_EXCHANGES = ("Binance", "OKX", "Bybit")
PAGE_LIMIT = 1000  # PROTOCOLS.md §8: limit <= 1000 per request
DEFAULT_PER_MINUTE = 30  # the Hobbyist budget: safe whatever the plan
RANGES = ("1h", "4h", "12h", "24h")
_MINUTES = {"1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "6h": 360,
            "8h": 480, "12h": 720, "1d": 1440, "1w": 10080}
INTERVAL_MS = {name: minutes * MINUTE_MS for name, minutes in _MINUTES.items()}


@dataclass(frozen=True, slots=True)
class Plan:
    """A CoinGlass plan: requests per minute, finest interval, history depth in days."""

    per_minute: int
    min_interval: str
    depth_days: Mapping[str, int]


PLANS: dict[str, Plan] = {
    "hobbyist": Plan(30, "4h", {"4h": 180, "6h": 360, "8h": 360, "12h": 360}),
    "startup": Plan(80, "30m", {"30m": 90, "1h": 180}),
    "standard": Plan(300, "1m", {"1m": 6, "5m": 30, "1h": 360}),
    "professional": Plan(1200, "1m", {"1m": 12, "1h": 720}),
}


class CoinglassError(HttpError):
    """CoinGlass refused or failed a request; the message says what to do."""


class CoinglassAuthError(CoinglassError):
    """401/403: the key is missing, wrong, or its plan lacks the endpoint."""


class CoinglassRateLimited(CoinglassError):
    """429 persisted after every wait Retry-After asked for."""


@dataclass(frozen=True, slots=True)
class LiqRow:
    """One bar exactly as CoinGlass sent it (Decimal USD, bar-open ms)."""

    time_ms: int
    long_usd: Decimal
    short_usd: Decimal


@dataclass(frozen=True, slots=True)
class ExchangeTotal:
    """One exchange-list row: CoinGlass's totals for a coin over a range."""

    exchange: str
    total_usd: Decimal
    long_usd: Decimal
    short_usd: Decimal


def check_interval(interval: str, plan: str | None = None) -> int:
    """Return the bar width in ms; ValueError when unknown or finer than the plan allows."""
    if interval not in INTERVAL_MS:
        raise ValueError(f"CoinGlass interval {interval!r}: use one of {', '.join(INTERVAL_MS)}")
    limits = _plan(plan)
    if limits is not None and INTERVAL_MS[interval] < INTERVAL_MS[limits.min_interval]:
        raise ValueError(f"CoinGlass {plan} plan serves nothing finer than {limits.min_interval}; "
                         f"{interval!r} would be refused: use {limits.min_interval} or coarser")
    return INTERVAL_MS[interval]


def _plan(plan: str | None) -> Plan | None:
    if plan is not None and plan.lower() not in PLANS:
        raise ValueError(f"unknown CoinGlass plan {plan!r}: use one of {', '.join(PLANS)}")
    return None if plan is None else PLANS[plan.lower()]


# -- parsers ------------------------------------------------------------------------------


def parse_envelope(raw: Any) -> list[dict[str, Any]]:
    """Return `data` of a successful envelope ({"code": "0", "msg": "success", "data": [...]})."""
    code = need(raw, "code", "coinglass")
    if not isinstance(code, str) or code != "0":  # "0" is truthy; 0 is not CoinGlass's success
        raise ParseError(f"coinglass: code {str(code)[:20]!r}: {str(raw.get('msg', ''))[:80]!r}")
    data = need(raw, "data", "coinglass")
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ParseError("coinglass: data is not a list of objects")
    return data


def _usd(value: Any, name: str) -> Decimal:
    d = dec(value, name)  # Decimal(str(v)): a JSON number and its string give the same value
    if d < 0:
        raise ParseError(f"{name}: negative USD {d}")
    return d


def parse_liq_rows(raw: Any, long_key: str, short_key: str) -> list[LiqRow]:
    """Return the bars of a liquidation history, oldest first."""
    return sorted((LiqRow(ts_ms(need(r, "time", "row"), "time"),
                          _usd(need(r, long_key, "row"), long_key),
                          _usd(need(r, short_key, "row"), short_key))
                   for r in parse_envelope(raw)), key=lambda r: r.time_ms)


def parse_aggregated_history(raw: Any, coin: str, span_ms: int) -> list[Bucket]:
    """Normalize aggregated-history: one coin summed over the exchange list.

    {"code": "0", "msg": "success", "data": [{"time": 1658966400000,   # bar open, ms
        "aggregated_long_liquidation_usd": 5916885.14234,             # JSON NUMBERS here
        "aggregated_short_liquidation_usd": 12969583.87632}]}
    """
    rows = parse_liq_rows(raw, "aggregated_long_liquidation_usd",
                          "aggregated_short_liquidation_usd")
    return [_bucket(r, span_ms, MARKET, coin) for r in rows]


def parse_pair_history(raw: Any, exchange: str, coin: str, span_ms: int) -> list[Bucket]:
    """Normalize pair history: one pair on one exchange.

    {"code": "0", "data": [{"time": 1658880000000,
        "long_liquidation_usd": "2369935.19562",                      # STRINGS here
        "short_liquidation_usd": "6947459.43674"}]}
    """
    rows = parse_liq_rows(raw, "long_liquidation_usd", "short_liquidation_usd")
    return [_bucket(r, span_ms, exchange.lower(), coin) for r in rows]


def _bucket(r: LiqRow, span_ms: int, exchange: str, coin: str) -> Bucket:
    return Bucket(r.time_ms, span_ms, exchange, coin.upper(), float(r.long_usd),
                  float(r.short_usd), source="coinglass")


def parse_exchange_list(raw: Any) -> list[ExchangeTotal]:
    """Normalize exchange-list: totals per exchange over `range`, plus an "All" row.

    {"code": "0", "data": [{"exchange": "All", "liquidation_usd": 14673519.81739075,
        "long_liquidation_usd": 451394.17404598, "short_liquidation_usd": 14222125.64334477}]}
    """
    return [
        ExchangeTotal(text(need(r, "exchange", "row"), "exchange"),
                      _usd(need(r, "liquidation_usd", "row"), "liquidation_usd"),
                      _usd(need(r, "long_liquidation_usd", "row"), "long_liquidation_usd"),
                      _usd(need(r, "short_liquidation_usd", "row"), "short_liquidation_usd"))
        for r in parse_envelope(raw)
    ]


def cross_check(
    ours: Mapping[str, tuple[float, float]], theirs: Iterable[ExchangeTotal]
) -> list[tuple[str, float, float | None, float | None]]:
    """Compare our (long, short) per exchange with CoinGlass: (exchange, ours, theirs, ratio).

    Names match case-insensitively ("bybit" = "Bybit"); MARKET ("*") matches "All". `theirs`
    and `ratio` (ours / theirs) are None when CoinGlass lists no such exchange or shows 0.
    """
    by_name = {t.exchange.lower(): float(t.total_usd) for t in theirs}
    out = []
    for exchange, (long_usd, short_usd) in ours.items():
        key = "all" if exchange == MARKET else exchange.lower()
        mine, cg = float(long_usd) + float(short_usd), by_name.get(key)
        out.append((exchange, mine, cg, mine / cg if cg else None))
    return out


# -- client -------------------------------------------------------------------------------


class CoinglassClient:
    """The three liquidation endpoints behind a rate limiter, with clear errors."""

    def __init__(self, api_key: str | None, *, base_url: str = BASE_URL, plan: str | None = None,
                 per_minute: int | None = None, clock: Clock | None = None,
                 sleep: Sleep = asyncio.sleep, timeout_s: float = 15.0,
                 max_429_waits: int = 3) -> None:
        if not api_key or not api_key.strip():
            raise CoinglassAuthError(f"no CoinGlass API key: set {KEY_ENV}")
        limits = _plan(plan)
        self.plan = plan
        self.clock: Clock = clock or WallClock()
        self.sleep = sleep
        self.max_429_waits = max_429_waits
        rate = per_minute or (limits.per_minute if limits else DEFAULT_PER_MINUTE)
        self.limiter = RateLimiter(rate, self.clock, sleep)
        self.http = JsonClient(base_url, name="coinglass", headers={KEY_HEADER: api_key.strip()},
                               timeout_s=timeout_s, retries=2, sleep=sleep)

    async def __aenter__(self) -> CoinglassClient:
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.close()

    async def aggregated_history(self, symbol: str, interval: str, start_ms: int, end_ms: int, *,
                                 limit: int = PAGE_LIMIT,
                                 exchanges: Sequence[str] = DEFAULT_EXCHANGES) -> list[Bucket]:
        """Bars of one coin (BTC) summed over `exchanges`, as Buckets(exchange="*")."""
        span = check_interval(interval, self.plan)
        raw = await self.call(AGGREGATED, {
            "exchange_list": ",".join(exchanges), "symbol": symbol, "interval": interval,
            "start_time": start_ms, "end_time": end_ms, "limit": limit})
        return parse_aggregated_history(raw, coin_of(symbol), span)

    async def pair_history(self, exchange: str, symbol: str, interval: str, start_ms: int,
                           end_ms: int, *, limit: int = PAGE_LIMIT) -> list[Bucket]:
        """Bars of one pair (BTCUSDT) on one exchange (Binance), as Buckets(exchange="binance")."""
        span = check_interval(interval, self.plan)
        raw = await self.call(PAIR, {
            "exchange": exchange, "symbol": symbol, "interval": interval,
            "start_time": start_ms, "end_time": end_ms, "limit": limit})
        return parse_pair_history(raw, exchange, coin_of(symbol), span)

    async def exchange_list(self, symbol: str = "", range_: str = "1h") -> list[ExchangeTotal]:
        """CoinGlass totals per exchange for one coin ('' = all coins) over the last `range_`."""
        if range_ not in RANGES:
            raise ValueError(f"CoinGlass range {range_!r}: use one of {', '.join(RANGES)}")
        return parse_exchange_list(await self.call(EXCHANGES, {"symbol": symbol,
                                                               "range": range_}))

    async def call(self, path: str, params: Mapping[str, str | int]) -> Any:
        """GET one endpoint; wait out 429s as Retry-After asks; return the checked envelope."""
        for attempt in range(self.max_429_waits + 1):
            await self.limiter.acquire()
            try:
                resp = await self.http.request("GET", path, params=params)
            except AuthError as exc:
                raise _auth_error(str(exc.status), path) from None
            except RateLimited as exc:
                wait = exc.retry_after_s
            except HttpError as exc:
                raise CoinglassError(f"CoinGlass request failed: {exc}") from None
            else:
                body = resp.data if isinstance(resp.data, dict) else {}
                if body.get("code") == "0":  # the STRING "0": never a truthiness test
                    self._adopt_limit(resp.headers.get("api-key-max-limit", ""))
                    return body
                code = str(body.get("code"))
                if code in ("401", "403"):
                    raise _auth_error(code, path)
                if code != "429":
                    msg = self.http.mask(str(body.get("msg", "")))[:160]  # servers echo keys
                    raise CoinglassError(f"CoinGlass {path} answered code {code[:20]!r}: {msg!r}")
                wait = None
            if attempt < self.max_429_waits:
                delay = 60.0 if wait is None else wait  # no Retry-After: sit out a whole minute
                how = "as Retry-After asks" if wait is not None else "(no Retry-After sent)"
                logger.warning("coinglass: rate limited (429) on %s; backing off %.0fs %s "
                               "(%d/%d)", path, delay, how, attempt + 1, self.max_429_waits)
                await self.sleep(delay)
        raise CoinglassRateLimited(
            f"CoinGlass kept answering 429 on {path} after {self.max_429_waits} waits; lower "
            f"per_minute (now {self.limiter.per_minute}) or check the plan's limit")

    def _adopt_limit(self, header: str) -> None:
        """Follow API-KEY-MAX-LIMIT when the server grants fewer requests than we assumed."""
        granted = int(header) if header.isdigit() else 0
        if 0 < granted < self.limiter.per_minute:
            logger.info("coinglass: key allows %d requests/min; throttling to that", granted)
            self.limiter.per_minute = granted


def _auth_error(code: str, path: str) -> CoinglassAuthError:
    if code == "403":
        return CoinglassAuthError(f"CoinGlass refused {path} (403): the key's plan may not include "
                                  f"it; check the plan or {KEY_ENV}")
    return CoinglassAuthError(f"CoinGlass rejected the API key (401): check {KEY_ENV}")


# -- backfill and live polling ------------------------------------------------------------

BucketWriter = Callable[[list[Bucket]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class BackfillProgress:
    symbol: str
    page: int
    pages: int
    rows: int  # bars in this page
    total: int  # bars written so far, all symbols

    def __str__(self) -> str:
        return (f"coinglass backfill {self.symbol}: page {self.page}/{self.pages}, "
                f"{self.rows} bars ({self.total} total)")


async def backfill(store_writer: BucketWriter, api_key: str | None, *,
                   symbols: Sequence[str] = ("BTC", "ETH", "SOL"), since_ms: int, until_ms: int,
                   interval: str = "1h", base_url: str = BASE_URL,
                   progress: Callable[[BackfillProgress], Any] | None = None,
                   exchanges: Sequence[str] = DEFAULT_EXCHANGES, page_limit: int = PAGE_LIMIT,
                   **client_options: Any) -> int:
    """Load aggregated-history bars for [since_ms, until_ms) page by page; return bars written.

    Pages are fixed windows of `page_limit` bars, so `limit` can never truncate one. Re-running
    is safe: the store upserts aggregate buckets. `client_options` go to CoinglassClient
    (plan, per_minute, clock, sleep, timeout_s).
    """
    if not 0 < page_limit <= PAGE_LIMIT or until_ms <= since_ms:
        raise ValueError("need 0 < page_limit <= 1000 and since_ms < until_ms")
    report = progress or (lambda p: logger.info("%s", p))
    total = 0
    async with CoinglassClient(api_key, base_url=base_url, **client_options) as client:
        span = check_interval(interval, client.plan)
        start = _clamp_to_plan(floor_ms(since_ms, span), interval, client)
        step = span * page_limit
        pages = [(a, min(a + step, until_ms)) for a in range(start, until_ms, step)]
        for symbol in symbols:
            for i, (a, b) in enumerate(pages, 1):
                # end_time = b - 1: the bar opening at b belongs to the next page, whether
                # CoinGlass reads end_time as inclusive or not.
                got = await client.aggregated_history(symbol, interval, a, b - 1,
                                                      limit=page_limit, exchanges=exchanges)
                bars = [x for x in got if a <= x.start_ms < b]
                if bars:
                    await store_writer(bars)
                total += len(bars)
                report(BackfillProgress(symbol.upper(), i, len(pages), len(bars), total))
    return total


def _clamp_to_plan(start_ms: int, interval: str, client: CoinglassClient) -> int:
    """Skip the part of the range the plan keeps no history for: each request costs budget."""
    limits = _plan(client.plan)
    days = limits.depth_days.get(interval) if limits else None
    if days is None:
        return start_ms
    earliest = floor_ms(client.clock.now_ms() - days * DAY_MS, INTERVAL_MS[interval])
    if start_ms < earliest:
        logger.warning("coinglass: the %s plan keeps %d days of %s bars; starting the backfill "
                       "at %d instead of %d", client.plan, days, interval, earliest, start_ms)
    return max(start_ms, earliest)


class CoinglassPoller(Poller):
    """Poll the latest aggregated bars per coin into `store_writer`; upserts refresh open bars."""

    def __init__(self, api_key: str | None, store_writer: BucketWriter, *,
                 symbols: Sequence[str] = ("BTC", "ETH", "SOL"), interval: str = "1h",
                 bars: int = 3, interval_s: float = 180.0, clock: Clock | None = None,
                 sleep: Sleep = asyncio.sleep, backoff: Backoff | None = None,
                 **client_options: Any) -> None:
        super().__init__("coinglass", interval_s, clock, backoff, sleep)
        self.client = CoinglassClient(api_key, clock=self.clock, sleep=sleep, **client_options)
        self.span_ms = check_interval(interval, self.client.plan)
        self.store_writer, self.symbols = store_writer, tuple(symbols)
        self.interval, self.bars = interval, max(1, bars)

    async def poll_once(self) -> int:
        """Fetch the last `bars` bars of every coin (the open one included) and write them."""
        now = self.clock.now_ms()
        start = floor_ms(now, self.span_ms) - (self.bars - 1) * self.span_ms
        got: list[Bucket] = []
        for symbol in self.symbols:
            got.extend(await self.client.aggregated_history(symbol, self.interval, start, now,
                                                            limit=self.bars + 1))
        if got:
            await self.store_writer(got)
        return len(got)

    async def close(self) -> None:
        await self.client.close()
