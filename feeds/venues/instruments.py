"""Instrument tables (contract sizes, symbol lists): fetched over REST, cached, refreshed.

Venues that price in contracts (Binance COIN-M, OKX) or need a symbol list (Bybit) keep one
`InstrumentTable` each. The table is fetched before the first connect and refreshed while the
feed streams; when the venue cannot be reached it falls back to the store's cache (even a
stale one, with a warning) and then to a file or shipped snapshot, and never crashes the feed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from feeds.clock import Clock, WallClock
from feeds.model import DAY_MS, ParseError
from feeds.net.http import HttpError
from feeds.store import Store
from feeds.store.instruments import instrument_rows, replace_instruments

logger = logging.getLogger(__name__)

# symbol -> the venue's own fields we rely on (JSON-serializable: it is stored as text)
Specs = dict[str, dict[str, Any]]
Fetch = Callable[[], Awaitable[Specs]]


@dataclass(frozen=True, slots=True)
class CachedInstruments:
    """One venue's cached table and when its oldest row was written (epoch ms)."""

    specs: Specs
    updated_ms: int

    def age_ms(self, now_ms: int) -> int:
        return max(0, now_ms - self.updated_ms)


def save_instruments(store: Store, exchange: str, specs: Specs, now_ms: int) -> None:
    """Replace the cached table of `exchange` (a venue id, or `venue:category`) in one go."""
    replace_instruments(store, exchange, [(symbol, json.dumps(spec, sort_keys=True))
                                          for symbol, spec in specs.items()], now_ms)


def load_instruments(store: Store, exchange: str) -> CachedInstruments | None:
    """Return the cached table of `exchange`, or None when nothing usable is cached."""
    cur = instrument_rows(store, exchange)
    specs: Specs = {}
    oldest: int | None = None
    for symbol, text, updated_ms in cur:
        try:
            spec = json.loads(text)
        except ValueError:
            logger.warning("%s: cached instrument %s is not JSON; ignored", exchange, symbol)
            continue
        if isinstance(spec, dict):
            specs[symbol] = spec
            oldest = updated_ms if oldest is None else min(oldest, updated_ms)
    if not specs or oldest is None:
        return None
    return CachedInstruments(specs, oldest)


class InstrumentTable:
    """A venue's instrument table: REST first, then the store cache, then `fallback`."""

    def __init__(
        self,
        key: str,
        fetch: Fetch,
        *,
        store_path: str | None = None,
        fallback: Callable[[], Specs] | None = None,
        refresh_s: float = DAY_MS / 1000,
        retry_s: float = 300.0,
        min_gap_s: float = 300.0,
        clock: Clock | None = None,
    ) -> None:
        if not (refresh_s > 0 and retry_s > 0 and min_gap_s >= 0):
            raise ValueError(f"{key}: refresh_s and retry_s must be > 0, min_gap_s >= 0")
        self.key, self.fetch = key, fetch
        self.store_path, self.fallback = store_path, fallback
        self.refresh_s, self.retry_s, self.min_gap_s = refresh_s, retry_s, min_gap_s
        self.clock: Clock = clock or WallClock()
        self.specs: Specs = {}
        self.source = "none"  # rest | cache | fallback | none
        self.fetches = 0  # successful REST fetches, for status and tests
        self._listeners: list[Callable[[Specs], None]] = []
        self._wake: asyncio.Event | None = None
        self._last_try = float("-inf")

    def on_update(self, listener: Callable[[Specs], None]) -> None:
        """Call `listener(specs)` every time the table is (re)loaded."""
        self._listeners.append(listener)

    async def load(self) -> None:
        """Fill the table at startup; never raises for an unreachable venue or cache."""
        try:
            specs = await self._fetch()
        except Exception as exc:
            specs, source = await self._offline_specs()
            # One line for both facts (an offline start said each on its own line).
            logger.warning("%s: instruments fetch failed (%s); using %d from the %s",
                           self.key, exc, len(specs), source, exc_info=_unexpected(exc))
            self._set(specs, source, quiet=True)
            return
        await self._save(specs)
        self._set(specs, "rest")

    async def refresh_forever(self) -> None:
        """Refetch every `refresh_s` (every `retry_s` after a failure) until cancelled."""
        delay = self.refresh_s if self.source == "rest" else self.retry_s
        while True:
            await self._sleep(delay)
            try:
                specs = await self._fetch()
            except Exception as exc:
                logger.warning("%s: instruments refresh failed (%s); keeping %d known, retry "
                               "in %.0fs", self.key, exc, len(self.specs), self.retry_s,
                               exc_info=_unexpected(exc))
                delay = self.retry_s
                continue
            await self._save(specs)
            self._set(specs, "rest")
            delay = self.refresh_s

    def request_refresh(self, reason: str) -> None:
        """Refetch soon (an unknown instrument was seen), at most once per `min_gap_s`."""
        if self._wake is None or self._wake.is_set():
            return  # not refreshing yet, or already asked
        if time.monotonic() - self._last_try < self.min_gap_s:
            return
        logger.info("%s: refreshing instruments early: %s", self.key, reason)
        self._wake.set()

    # -- internals ---------------------------------------------------------------------------

    async def _fetch(self) -> Specs:
        self._last_try = time.monotonic()
        specs = await self.fetch()
        if not specs:
            raise ParseError("the venue listed no instruments")
        self.fetches += 1
        return specs

    async def _sleep(self, delay_s: float) -> None:
        self._wake = asyncio.Event()
        try:
            async with asyncio.timeout(delay_s):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _set(self, specs: Specs, source: str, *, quiet: bool = False) -> None:
        self.specs, self.source = specs, source
        logger.log(logging.DEBUG if quiet else logging.INFO, "%s: %d instruments from %s",
                   self.key, len(specs), source)
        for listener in self._listeners:
            listener(specs)

    async def _offline_specs(self) -> tuple[Specs, str]:
        cached = await self._load_cached()
        if cached is not None:
            age_h = cached.age_ms(self.clock.now_ms()) / 3_600_000
            if age_h * 3600 > self.refresh_s:
                logger.warning("%s: using a stale instruments cache (%.1f h old)", self.key, age_h)
            return cached.specs, "cache"
        if self.fallback is not None:
            try:
                return self.fallback(), "fallback"
            except Exception as exc:
                logger.error("%s: instruments fallback unusable: %s", self.key, exc,
                             exc_info=_unexpected(exc))
        logger.warning("%s: no instruments known until the venue answers", self.key)
        return {}, "none"

    async def _save(self, specs: Specs) -> None:
        if self.store_path is None:
            return
        try:
            await asyncio.to_thread(_with_store, self.store_path, save_instruments, self.key,
                                    specs, self.clock.now_ms())
        except Exception as exc:  # the cache is an optimisation: never fail the feed for it
            logger.warning("%s: cannot cache instruments in %s: %s", self.key, self.store_path, exc)

    async def _load_cached(self) -> CachedInstruments | None:
        if self.store_path is None:
            return None
        try:
            cached: CachedInstruments | None = await asyncio.to_thread(
                _with_store, self.store_path, load_instruments, self.key)
        except Exception as exc:
            logger.warning("%s: cannot read the instruments cache in %s: %s",
                           self.key, self.store_path, exc)
            return None
        return cached


def _unexpected(exc: Exception) -> bool:
    """A venue or network failure needs one line; anything else is a bug: keep the traceback."""
    return not isinstance(exc, (HttpError, ParseError))


def _with_store(path: str, fn: Callable[..., Any], *args: Any) -> Any:
    # A private connection per call, on a worker thread: the event loop never waits on SQLite
    # and the bot's writer thread keeps its own connection (Store is not thread-safe).
    store = Store(path)
    try:
        return fn(store, *args)
    finally:
        store.close()
