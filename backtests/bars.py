"""Replay data as aligned arrays: liquidation bars per (exchange, coin), context and prices.

Everything the live store would answer about a window is here in array form, built once
per data set. Reads that the live path makes (totals, baselines, candles, funding) only
look at the past, so holding the whole history in memory leaks nothing forward.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from feeds.history.replay import Item, ReplayData, available_ms, load_replay
from feeds.model import MARKET, MINUTE_MS, Bucket, Candle, Funding, Liquidation

logger = logging.getLogger(__name__)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


class BacktestError(ValueError):
    """The data cannot be backtested as given; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Rows:
    """One (exchange, coin)'s liquidation bars in time order, as the store holds them."""

    starts: Ints
    long_usd: Floats
    short_usd: Floats


@dataclass(frozen=True, slots=True)
class CandleSpan:
    """One coin's candles of one span from every venue, in the store's (start, exchange) order."""

    span_ms: int
    starts: Ints
    opens: Floats
    closes: Floats


@dataclass(frozen=True, slots=True)
class FundingSeries:
    """One (exchange, symbol)'s funding, per 8h, in time order."""

    ts: Ints
    rate_8h: Floats


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """OHLC on a regular grid (NaN where a bar is missing): what returns are measured on."""

    source: str  # e.g. "binance-spot BTC 1h candles"
    coin: str
    origin_ms: int
    span_ms: int
    open: Floats
    high: Floats
    low: Floats
    close: Floats

    def index_at_or_after(self, ts_ms: Ints) -> Ints:
        """Index of the first bar opening at or after each time (the next bar's open)."""
        return -(-(ts_ms - self.origin_ms) // self.span_ms)


@dataclass(frozen=True, slots=True)
class Bars:
    """A data set ready for the backtest engine (see module docstring)."""

    cell_ms: int  # span of one liquidation bar
    bar_ms: int  # what the live runner calls bar_ms (windows shorter than it are skipped)
    origin_ms: int  # open of the first bar
    groups: tuple[tuple[str, str], ...]  # (exchange, coin), in the store's GROUP BY order
    rows: tuple[Rows, ...]
    long_usd: Floats  # [group, cell]
    short_usd: Floats
    present: npt.NDArray[np.bool_]  # a bar row exists (zero or not)
    ticks: Ints  # evaluation times: every minute boundary new data reached
    coins: tuple[str, ...]
    candles: dict[str, tuple[CandleSpan, ...]]
    funding: dict[str, tuple[FundingSeries, ...]]
    prices: dict[str, PriceSeries]  # scope -> prices for returns ("*" too, when possible)
    notes: tuple[str, ...] = ()
    files: tuple[str, ...] = field(default=())

    @property
    def n_cells(self) -> int:
        return int(self.long_usd.shape[1])

    @property
    def end_ms(self) -> int:
        return self.origin_ms + self.n_cells * self.cell_ms

    @property
    def scopes(self) -> tuple[str, ...]:
        return (MARKET, *self.coins)

    def coin_groups(self, scope: str) -> list[int]:
        """Indexes of the groups a scope sums: all for the market, else that coin's."""
        return [i for i, (_, c) in enumerate(self.groups) if scope == MARKET or c == scope]


def load_bars(
    paths: Sequence[str | Path], *, symbol: str | None = None, tz_offset_hours: float = 6.0,
    instruments: str | Path | None = None,
) -> Bars:
    """Load files with the replay loaders and build Bars from them."""
    data = load_replay(paths, symbol=symbol, tz_offset_hours=tz_offset_hours,
                       instruments=instruments)
    return build_bars(data)


def build_bars(data: ReplayData) -> Bars:
    """Arrange a ReplayData's liquidations, candles and funding for the engine."""
    cell_ms, raw = _liquidation_rows(data)
    groups = tuple(sorted(raw))
    origin = min(int(r[0][0]) for r in raw.values())
    end = max(int(r[0][-1]) for r in raw.values()) + cell_ms
    _check_grid(raw, origin, cell_ms)
    n = (end - origin) // cell_ms
    rows = tuple(Rows(*raw[g]) for g in groups)
    long_usd, short_usd, present = (np.zeros((len(groups), n)) for _ in range(3))
    for i, r in enumerate(rows):
        k = (r.starts - origin) // cell_ms
        long_usd[i, k], short_usd[i, k], present[i, k] = r.long_usd, r.short_usd, 1
    coins = tuple(sorted({c for _, c in groups if c != MARKET}))
    prices, price_notes = _prices(data.candles, coins, data.bar_span_ms or MINUTE_MS)
    return Bars(
        cell_ms=cell_ms, bar_ms=data.bar_span_ms or MINUTE_MS, origin_ms=origin, groups=groups,
        rows=rows, long_usd=long_usd, short_usd=short_usd, present=present.astype(bool),
        ticks=_ticks(data), coins=coins, candles=_candle_spans(data.candles),
        funding=_funding(data.funding), prices=prices,
        notes=tuple(data.notes) + tuple(price_notes), files=tuple(f for f, _ in data.files),
    )


RawRows = dict[tuple[str, str], tuple[Ints, Floats, Floats]]


def _liquidation_rows(data: ReplayData) -> tuple[int, RawRows]:
    if data.buckets and data.liquidations:
        raise BacktestError("the data mixes liquidation events and bars: backtest one kind "
                            "at a time")
    if data.buckets:
        spans = sorted({b.span_ms for b in data.buckets})
        if len(spans) > 1:
            names = ", ".join(f"{s // MINUTE_MS}m" for s in spans)
            raise BacktestError(f"liquidation bars come in several spans ({names}): the live "
                                "store would sum them twice; backtest one span at a time")
        return spans[0], _bucket_rows(data.buckets)
    if data.liquidations:
        return MINUTE_MS, _event_rows(data.liquidations)
    raise BacktestError("no liquidation data in these files (only prices, funding or OI)")


def _bucket_rows(buckets: Iterable[Bucket]) -> RawRows:
    acc: dict[tuple[str, str], dict[int, list[float]]] = {}
    for b in buckets:
        slot = acc.setdefault((b.exchange, b.coin), {}).setdefault(b.start_ms, [0.0, 0.0])
        slot[0] += b.long_usd
        slot[1] += b.short_usd
    return {g: _as_rows(bars) for g, bars in acc.items()}


def _event_rows(events: Iterable[Liquidation]) -> RawRows:
    """Minute bars from events, as the store's triggers build them (duplicates ignored)."""
    seen: set[int] = set()
    acc: dict[tuple[str, str], dict[int, list[float]]] = {}
    for e in sorted(events, key=lambda e: e.ts_ms):
        uid = e.event_key()
        if uid in seen:
            continue
        seen.add(uid)
        minute = e.ts_ms - e.ts_ms % MINUTE_MS
        slot = acc.setdefault((e.exchange, e.coin), {}).setdefault(minute, [0.0, 0.0])
        slot[0 if e.position_side.value == "long" else 1] += float(e.notional_usd)
    return {g: _as_rows(bars) for g, bars in acc.items()}


def _as_rows(bars: dict[int, list[float]]) -> tuple[Ints, Floats, Floats]:
    starts = sorted(bars)
    return (np.array(starts, dtype=np.int64), np.array([bars[s][0] for s in starts]),
            np.array([bars[s][1] for s in starts]))


def _check_grid(raw: RawRows, origin: int, cell_ms: int) -> None:
    for (exchange, coin), (starts, _, _) in raw.items():
        off = (starts - origin) % cell_ms
        if off.any():
            raise BacktestError(f"bars of {exchange}/{coin} are not on one {cell_ms // 60_000}m "
                                "grid with the others")


def _ticks(data: ReplayData) -> Ints:
    """Every minute boundary some item became known at: when the live runner evaluates."""
    h = data.history
    items: list[Item] = [*h.buckets, *h.candles, *h.funding, *h.open_interest, *h.liquidations]
    times = np.array([available_ms(x) for x in items], dtype=np.int64)
    return np.unique(-(-times // MINUTE_MS) * MINUTE_MS)


def _candle_spans(candles: Sequence[Candle]) -> dict[str, tuple[CandleSpan, ...]]:
    by: dict[tuple[str, int], dict[tuple[int, str], Candle]] = {}
    for c in candles:  # a later copy of one bar replaces the earlier, as INSERT OR REPLACE does
        by.setdefault((c.coin.upper(), c.span_ms), {})[(c.start_ms, c.exchange)] = c
    out: dict[str, list[CandleSpan]] = {}
    for (coin, span), bars in sorted(by.items()):
        keys = sorted(bars)
        out.setdefault(coin, []).append(CandleSpan(
            span, np.array([k[0] for k in keys], dtype=np.int64),
            np.array([bars[k].open for k in keys]), np.array([bars[k].close for k in keys])))
    return {coin: tuple(spans) for coin, spans in out.items()}


def _funding(items: Sequence[Funding]) -> dict[str, tuple[FundingSeries, ...]]:
    by: dict[tuple[str, str, str], dict[int, float]] = {}
    for f in items:
        by.setdefault((f.coin, f.exchange, f.symbol), {})[f.ts_ms] = f.rate_8h
    out: dict[str, list[FundingSeries]] = {}
    for (coin, _, _), series in sorted(by.items()):
        ts = sorted(series)
        out.setdefault(coin, []).append(FundingSeries(
            np.array(ts, dtype=np.int64), np.array([series[t] for t in ts])))
    return {coin: tuple(s) for coin, s in out.items()}


def _prices(
    candles: Sequence[Candle], coins: Sequence[str], bar_ms: int
) -> tuple[dict[str, PriceSeries], list[str]]:
    """One price series per coin: the bar's span if any, a perpetual's before a spot market's
    (trades and liquidations happen on the perp; `-spot` venues are named so by the loaders),
    then most bars, then venue name.

    Market-wide signals are measured on BTC when it has prices, else on the first coin.
    """
    pools: dict[tuple[str, str, int], list[Candle]] = {}
    for c in candles:
        pools.setdefault((c.coin.upper(), c.exchange, c.span_ms), []).append(c)
    out: dict[str, PriceSeries] = {}
    for coin in sorted({k[0] for k in pools}):
        options = [(k[2] != bar_ms, k[2], k[1].endswith("-spot"), -len(v), k[1])
                   for k, v in pools.items() if k[0] == coin]
        _, span, _, _, exchange = min(options)
        out[coin] = _price_series(pools[(coin, exchange, span)], exchange, coin)
    notes = [f"returns for {c} from {p.source}" for c, p in sorted(out.items()) if c in coins]
    priced = [c for c in ("BTC", *coins) if c in out]
    market = priced[0] if priced else None
    if market is not None:
        out[MARKET] = out[market]
        notes.append(f"returns for market-wide signals from {out[market].source}")
    missing = [c for c in coins if c not in out]
    if missing:
        notes.append(f"no prices for {', '.join(missing)}: their signals have no returns")
    return out, notes


def _price_series(candles: list[Candle], exchange: str, coin: str) -> PriceSeries:
    span = candles[0].span_ms
    starts = np.array([c.start_ms for c in candles], dtype=np.int64)
    origin = int(starts.min())
    n = int((starts.max() - origin) // span) + 1
    cols = [np.full(n, np.nan) for _ in range(4)]
    k = (starts - origin) // span
    on_grid = (starts - origin) % span == 0
    for col, name in zip(cols, ("open", "high", "low", "close"), strict=True):
        col[k[on_grid]] = np.array([getattr(c, name) for c in candles])[on_grid]
    return PriceSeries(f"{exchange} {coin} {_span_name(span)} candles", coin, origin, span, *cols)


def _span_name(ms: int) -> str:
    return f"{ms // 3_600_000}h" if ms % 3_600_000 == 0 else f"{ms // MINUTE_MS}m"
