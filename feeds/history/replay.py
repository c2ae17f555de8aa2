"""Recorded files -> one merged history, ordered by the time each item became known.

The format of a file is recognised from its content (parquet schema, CSV header, first JSON
line), never from its extension alone, so a renamed file still loads and a wrong one fails
with a message that says what was expected.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from feeds.history import (
    HistoryData,
    load_candles_parquet,
    load_coinglass_csv,
    load_coinglass_regime,
    load_events_jsonl,
    load_frames_jsonl,
    load_funding_parquet,
    load_hyperliquid_daily,
    load_liquidations_parquet,
    load_open_interest_parquet,
    load_price_funding_oi,
)
from feeds.history import coinalyze as coinalyze
from feeds.history.base import file_error
from feeds.history.jsonl import first_json_line, frame_exchange, is_event
from feeds.model import Bucket, Candle, Funding, Liquidation, OpenInterest, ParseError

logger = logging.getLogger(__name__)

Item = Liquidation | Bucket | Funding | OpenInterest | Candle


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """What some formats need from the caller (see load_replay)."""

    symbol: str | None = None
    tz_offset_hours: float = coinalyze.DEFAULT_TZ_OFFSET_HOURS
    instruments: str | Path | None = None


_Loader = Callable[[Path, LoadOptions], HistoryData]

FORMATS: dict[str, _Loader] = {
    "coinglass-csv": lambda p, o: load_coinglass_csv(p, symbol=o.symbol),
    "coinglass-regime-csv": lambda p, o: load_coinglass_regime(p, symbol=o.symbol),
    "price-funding-oi-csv": lambda p, o: load_price_funding_oi(p, symbol=o.symbol),
    "coinalyze-csv": lambda p, o: coinalyze.load_coinalyze(p, tz_offset_hours=o.tz_offset_hours),
    "parquet-liquidations": lambda p, o: load_liquidations_parquet(p, instruments=o.instruments),
    "parquet-candles": lambda p, o: load_candles_parquet(p),
    "parquet-funding": lambda p, o: load_funding_parquet(p),
    "parquet-open-interest": lambda p, o: load_open_interest_parquet(p),
    "parquet-hyperliquid-daily": lambda p, o: load_hyperliquid_daily(p),
    "events-jsonl": lambda p, o: load_events_jsonl(p),
    "frames-jsonl": lambda p, o: load_frames_jsonl(p),
}


def _columns(names: str) -> frozenset[str]:
    return frozenset(names.split())


# First match wins, so the richer header is tested before the one it contains.
_CSV_HEADERS: list[tuple[str, frozenset[str]]] = [
    ("coinglass-csv", _columns("timestamp longUsd shortUsd")),
    (
        "coinglass-regime-csv",
        _columns(
            "timestamp liquidation_long_usd liquidation_short_usd "
            "price_close funding_close oi_close"
        ),
    ),
    (
        "price-funding-oi-csv",
        _columns("timestamp price_open price_high price_low price_close funding_close oi_close"),
    ),
]
_PARQUET_SCHEMAS: list[tuple[str, frozenset[str]]] = [
    ("parquet-liquidations", _columns("timestamp venue coin side size_usd price")),
    ("parquet-hyperliquid-daily", _columns("timestamp coin total_usd long_usd short_usd")),
    ("parquet-candles", _columns("timestamp venue coin o h l c")),
    ("parquet-funding", _columns("timestamp venue coin funding_rate")),
    ("parquet-open-interest", _columns("timestamp venue coin oi_usd")),
]
_COINALYZE_ROW = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},-?[\d.eE+-]+")
_EXPECTED = (
    "expected a CoinGlass CSV (timestamp,longUsd,shortUsd / regime columns), a Coinalyze CSV "
    "(no header, 'YYYY-MM-DD HH:MM:SS,...'), multivenue parquet, normalized-events JSONL or "
    "raw exchange frames JSONL"
)


# ---- format recognition -----------------------------------------------------------------------


def detect_format(path: str | Path) -> str:
    """Return the format name (a FORMATS key) of one file, judged by its content."""
    p = Path(path)
    if p.is_dir():
        raise file_error(p, "is a folder; pass it to load_replay, or name a file")
    try:
        with open(p, "rb") as f:
            head = f.read(8192)
    except OSError as exc:
        raise file_error(p, f"cannot read: {exc.strerror}") from None
    if not head.strip():
        raise file_error(p, "empty file")
    if head.startswith(b"PAR1"):
        return _parquet_kind(p)
    try:
        first = head.decode("utf-8-sig").lstrip().splitlines()[0].strip()
    except UnicodeDecodeError:
        raise file_error(p, f"binary content, not a recognised format; {_EXPECTED}") from None
    if first.startswith(("{", "[")):
        return _jsonl_kind(p)
    return _csv_kind(p, first)


def _parquet_kind(path: Path) -> str:
    try:
        names = set(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises several types for a damaged footer
        raise file_error(path, f"damaged parquet file: {str(exc)[:200]}") from None
    for name, needed in _PARQUET_SCHEMAS:
        if needed <= names:
            return name
    wanted = "; ".join(f"{n}: {', '.join(sorted(c))}" for n, c in _PARQUET_SCHEMAS)
    raise file_error(
        path, f"parquet columns {', '.join(sorted(names))} match no known kind (expected {wanted})"
    )


def _jsonl_kind(path: Path) -> str:
    obj = first_json_line(path)
    if is_event(obj):
        return "events-jsonl"
    if frame_exchange(obj) is not None:
        return "frames-jsonl"
    raise file_error(
        path,
        "first line is neither a normalized event (keys exchange, symbol, "
        "side, qty, price, usd, ts) nor a known exchange frame",
    )


def _csv_kind(path: Path, first: str) -> str:
    cells = {c.strip().strip('"') for c in first.split(",")}
    for name, needed in _CSV_HEADERS:
        if needed <= cells:
            return name
    if _COINALYZE_ROW.match(first):
        if coinalyze.group_key(path) is None:
            raise file_error(
                path,
                "looks like a Coinalyze export, but its name does not say the "
                "symbol and kind (SYMBOL_PERP.A_<kind>-history.csv)",
            )
        return "coinalyze-csv"
    raise file_error(path, f"unrecognised content (first line {first[:80]!r}); {_EXPECTED}")


# ---- loading ----------------------------------------------------------------------------------


def load_replay(
    paths: Sequence[str | Path],
    *,
    symbol: str | None = None,
    tz_offset_hours: float = coinalyze.DEFAULT_TZ_OFFSET_HOURS,
    instruments: str | Path | None = None,
) -> ReplayData:
    """Load files and folders into one ReplayData.

    `symbol` names the coin of CoinGlass exports (market-wide without it); `tz_offset_hours`
    is the Coinalyze local-time offset; `instruments` an OKX instruments file. A Coinalyze
    group named twice loads once; an item already given by an earlier file is dropped.
    """
    if not paths:
        raise ParseError("no replay files given")
    files, notes = _expand(paths)
    opts = LoadOptions(symbol, tz_offset_hours, instruments)
    parts: list[tuple[Path, HistoryData]] = []
    loaded: set[Hashable] = set()
    for path, fmt in files:
        key = (coinalyze.group_key(path) if fmt == "coinalyze-csv" else None) or path.resolve()
        if key not in loaded:
            loaded.add(key)
            parts.append((path, FORMATS[fmt](path, opts)))
    merged = _merge_unique(parts)
    merged = HistoryData(notes=notes).merge(merged).merge(HistoryData(notes=_span_notes(merged)))
    for note in merged.notes:
        logger.info("replay: %s", note)
    return ReplayData(merged, tuple((str(p), f) for p, f in files))


def _expand(paths: Sequence[str | Path]) -> tuple[list[tuple[Path, str]], list[str]]:
    """Return (file, format) pairs; inside a folder, unrecognised files are skipped with a note."""
    files: list[tuple[Path, str]] = []
    notes: list[str] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            files.append((path, detect_format(path)))
            continue
        found = 0
        children = sorted(c for c in path.iterdir() if c.is_file() and c.name[0] != ".")
        for child in children:
            try:
                files.append((child, detect_format(child)))
                found += 1
            except ParseError:
                notes.append(f"{child}: skipped, not a recognised format")
        if not found:
            raise file_error(path, f"folder holds no recognised file; {_EXPECTED}")
    return files, notes


_KEYS: dict[str, Callable[[Any], Hashable]] = {
    "liquidations": lambda e: e.event_key(),
    "buckets": lambda b: (b.start_ms, b.span_ms, b.exchange, b.coin),
    "funding": lambda f: (f.exchange, f.symbol, f.ts_ms),
    "candles": lambda c: (c.exchange, c.coin, c.start_ms, c.span_ms),
    "open_interest": lambda o: (o.exchange, o.symbol, o.ts_ms),
}


def _merge_unique(parts: list[tuple[Path, HistoryData]]) -> HistoryData:
    """Merge in order; what an earlier file already gave is not counted twice."""
    seen: dict[str, set[Hashable]] = {kind: set() for kind in _KEYS}
    lists: dict[str, list[Any]] = {kind: [] for kind in _KEYS}
    notes: list[str] = []
    for path, data in parts:
        notes += data.notes
        for kind, key in _KEYS.items():
            items = getattr(data, kind)
            keys = [key(x) for x in items]
            fresh = [x for x, k in zip(items, keys, strict=True) if k not in seen[kind]]
            if len(fresh) < len(items):
                notes.append(
                    f"{path.name}: dropped {len(items) - len(fresh)} {kind} already "
                    "given by an earlier file (kept the earlier values)"
                )
            seen[kind].update(keys)
            lists[kind] += fresh
    return HistoryData(**lists, notes=notes)


def _span_notes(data: HistoryData) -> list[str]:
    spans: dict[tuple[str, str], set[int]] = {}
    for b in data.buckets:
        spans.setdefault((b.exchange, b.coin), set()).add(b.span_ms)
    return [
        f"buckets for exchange {ex} coin {coin} come in several spans "
        f"({', '.join(f'{s // 60_000}m' for s in sorted(found))}): sum one span at a time"
        for (ex, coin), found in sorted(spans.items())
        if len(found) > 1
    ]


# ---- the replay itself ------------------------------------------------------------------------

# On equal times, context (price, funding, OI) comes before the totals a signal reads, and a
# closing bar before the events that open the next one.
_RANK = {Candle: 0, Funding: 1, OpenInterest: 2, Bucket: 3, Liquidation: 4}


def available_ms(item: Item) -> int:
    """Return when an item becomes known: a bar at its close, anything else at its time."""
    if isinstance(item, (Bucket, Candle)):
        return item.start_ms + item.span_ms
    return item.ts_ms


@dataclass(frozen=True, slots=True)
class ReplayData:
    """A merged history plus the files it came from, readable as one timeline."""

    history: HistoryData
    files: tuple[tuple[str, str], ...] = ()

    @property
    def liquidations(self) -> list[Liquidation]:
        return self.history.liquidations

    @property
    def buckets(self) -> list[Bucket]:
        return self.history.buckets

    @property
    def funding(self) -> list[Funding]:
        return self.history.funding

    @property
    def candles(self) -> list[Candle]:
        return self.history.candles

    @property
    def open_interest(self) -> list[OpenInterest]:
        return self.history.open_interest

    @property
    def notes(self) -> list[str]:
        return self.history.notes

    def _items(self) -> Iterator[Item]:
        h = self.history
        yield from h.candles
        yield from h.funding
        yield from h.open_interest
        yield from h.buckets
        yield from h.liquidations

    def timeline(self) -> Iterator[tuple[int, Item]]:
        """Yield (available_ms, item) in the order a live bot would have learned them."""
        keyed = sorted(
            ((available_ms(x), _RANK[type(x)], i, x) for i, x in enumerate(self._items())),
            key=lambda t: (t[0], t[1], t[2]),
        )
        for at, _, _, item in keyed:
            yield at, item

    def span(self) -> tuple[int, int] | None:
        """Return (first, last) available ms, or None when there is nothing to replay."""
        times = [available_ms(x) for x in self._items()]
        return (min(times), max(times)) if times else None

    @property
    def bar_span_ms(self) -> int | None:
        """The smallest bucket span, or None for event-only data."""
        return min((b.span_ms for b in self.history.buckets), default=None)
