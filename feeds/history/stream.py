"""Replay files read a chunk at a time: one timeline in bounded memory, in ReplayData's order.

`open_replay` takes what `load_replay` takes and gives a `ReplayStream` whose `timeline()`
yields the same (available_ms, item) pairs, in the same order, as `load_replay(...).timeline()`
— without holding the files' events in memory. The formats that carry events one per row are
read as they are consumed:

- normalized-events JSONL line by line. A first pass reads only each line's `ts` to learn
  whether the file is in time order (the usual case: `liqbot decode` writes it so); when it
  is not, the order is taken from that pass (16 bytes per line, no objects) and lines are
  read back by their offsets, so the timeline is still exact;
- OKX events from parquet a record batch at a time (row groups), the same way: sorted files
  stream, an unsorted one is sorted by its timestamps in Arrow's columnar memory first;
- raw exchange frames JSONL line by line, through a reorder window of `REORDER_ITEMS`
  events; a frame that lies further back than that fails with its line, since the order
  a live bot would have seen can then no longer be given.

Bar files (CSV exports, candles, funding, OI, daily sums) hold one row per bar, orders of
magnitude fewer than events: they load whole, as before, and are merged in.

One difference from `load_replay`: an event that two files both give is not dropped here
with a note, because that needs every key in memory; the store's unique key keeps the first
copy instead (`INSERT OR IGNORE`), so what is stored and alerted on is the same.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import mmap
import re
from array import array
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from feeds.history import coinalyze, lazy_bars
from feeds.history.base import HistoryData, file_error
from feeds.history.jsonl import FRAME_FORMATS, _lines, frame_exchange, parse_event
from feeds.history.replay import (
    _KEYS,
    _RANK,
    FORMATS,
    Item,
    LoadOptions,
    _expand,
    _span_notes,
    available_ms,
)
from feeds.model import Liquidation, ParseError

logger = logging.getLogger(__name__)

# Formats whose rows are single events: read as consumed. The rest are bar files.
STREAMED = ("events-jsonl", "frames-jsonl", "parquet-liquidations")
# Parquet bar files kept as columns (feeds/history/lazy_bars.py) when no other file of the
# replay can give the same kind: the earlier-file-wins rule needs every key of it otherwise.
LAZY_BARS = {"parquet-candles": lazy_bars.candles, "parquet-funding": lazy_bars.funding,
             "parquet-open-interest": lazy_bars.open_interest}
_GIVES = {  # which formats can give which bar kinds
    "candles": {"parquet-candles", "coinglass-regime-csv", "price-funding-oi-csv",
                "coinalyze-csv"},
    "funding": {"parquet-funding", "coinglass-regime-csv", "price-funding-oi-csv"},
    "open_interest": {"parquet-open-interest", "coinglass-regime-csv", "price-funding-oi-csv",
                      "coinalyze-csv"},
}
_KIND = {"parquet-candles": "candles", "parquet-funding": "funding",
         "parquet-open-interest": "open_interest"}
REORDER_ITEMS = 100_000
_PARQUET_BATCH = 50_000
_TS = re.compile(rb'"ts"\s*:\s*(\d+)')

# (available_ms, rank, file number, position, item): the global order of ReplayData.timeline,
# where position counts inside one file and kind.
_Keyed = lazy_bars.Keyed  # (time, file, kind rank, line, item)


@dataclass
class ReplayStream:
    """Replay files as one timeline, read as it is consumed (see the module docstring)."""

    files: tuple[tuple[str, str], ...]
    notes: list[str]
    bar_span_ms: int | None
    _bars: list[tuple[int, HistoryData]] = field(repr=False)
    _streams: list[tuple[int, Path, str]] = field(repr=False)
    _options: LoadOptions = field(repr=False)
    _lazy: list[tuple[int, Iterator[_Keyed]]] = field(default_factory=list, repr=False)

    def timeline(self) -> Iterator[tuple[int, Item]]:
        """Yield (available_ms, item) in the order a live bot would have learned them.

        Read once: the event files are consumed as it goes.
        """
        sources: list[Iterator[_Keyed]] = [_bar_items(n, h) for n, h in self._bars]
        sources += [it for _, it in self._lazy]
        sources += [_STREAMERS[fmt](n, path, self._options) for n, path, fmt in self._streams]
        merged = sources[0] if len(sources) == 1 else heapq.merge(*sources)
        for at, _, _, _, item in merged:
            yield at, item


def open_replay(
    paths: Sequence[str | Path],
    *,
    symbol: str | None = None,
    tz_offset_hours: float = coinalyze.DEFAULT_TZ_OFFSET_HOURS,
    instruments: str | Path | None = None,
) -> ReplayStream:
    """Recognise the files and load the bar files; the event files are read by `timeline()`.

    Arguments as `load_replay`. Format errors of the event files' rows surface while the
    timeline is read, naming the file and line, as the loaders' do.
    """
    if not paths:
        raise ParseError("no replay files given")
    files, notes = _expand(paths)
    opts = LoadOptions(symbol, tz_offset_hours, instruments)
    bars: list[tuple[int, Path, HistoryData]] = []
    streams: list[tuple[int, Path, str]] = []
    lazy: list[tuple[int, Iterator[_Keyed], list[str]]] = []
    loaded: set[Hashable] = set()
    for n, (path, fmt) in enumerate(files):
        key = (coinalyze.group_key(path) if fmt == "coinalyze-csv" else None) or path.resolve()
        if key in loaded:
            continue
        loaded.add(key)
        if fmt in STREAMED:
            _check_streamable(path, fmt, opts)
            streams.append((n, path, fmt))
        elif fmt in LAZY_BARS and _sole_source(fmt, [f for p, f in files if p != path]):
            lazy.append((n, *LAZY_BARS[fmt](n, path)))
        else:
            bars.append((n, path, FORMATS[fmt](path, opts)))
    kept, merge_notes = _unique_bars(bars)
    whole = HistoryData(notes=[n for _, h in kept for n in h.notes])
    for _, h in kept:
        whole = whole.merge(HistoryData(buckets=h.buckets))
    notes = [*notes, *merge_notes, *whole.notes, *(n for _, _, ln in lazy for n in ln),
             *_span_notes(whole)]
    for note in notes:
        logger.info("replay: %s", note)
    span = min((b.span_ms for b in whole.buckets), default=None)
    return ReplayStream(tuple((str(p), f) for p, f in files), notes, span,
                        kept, streams, opts, [(n, it) for n, it, _ in lazy])


def _sole_source(fmt: str, others: list[str]) -> bool:
    return not _GIVES[_KIND[fmt]] & set(others)


def _unique_bars(parts: list[tuple[int, Path, HistoryData]]
                 ) -> tuple[list[tuple[int, HistoryData]], list[str]]:
    """What `_merge_unique` does, for the bar files: an earlier file's rows win."""
    seen: dict[str, set[Hashable]] = {kind: set() for kind in _KEYS}
    out: list[tuple[int, HistoryData]] = []
    notes: list[str] = []
    for n, path, data in parts:
        fresh: dict[str, list[Any]] = {}
        for kind, key in _KEYS.items():
            items = getattr(data, kind)
            keys = [key(x) for x in items]
            fresh[kind] = [x for x, k in zip(items, keys, strict=True) if k not in seen[kind]]
            if len(fresh[kind]) < len(items):
                notes.append(f"{path.name}: dropped {len(items) - len(fresh[kind])} {kind} "
                             "already given by an earlier file (kept the earlier values)")
            seen[kind].update(keys)
        out.append((n, HistoryData(**fresh, notes=data.notes)))
    return out, notes


def _bar_items(n: int, h: HistoryData) -> Iterator[_Keyed]:
    keyed: list[_Keyed] = []
    kinds: tuple[Sequence[Item], ...] = (h.candles, h.funding, h.open_interest, h.buckets,
                                         h.liquidations)
    for items in kinds:
        keyed += [(available_ms(x), _RANK[type(x)], n, i, x) for i, x in enumerate(items)]
    keyed.sort(key=lambda t: (t[0], t[1], t[3]))
    return iter(keyed)


# ---- normalized events JSONL ------------------------------------------------------------------


def _line_ts(line: bytes) -> int | None:
    """A line's `ts` for ordering only (the real parse checks it); None when unreadable."""
    m = _TS.search(line)
    if m is not None:
        return int(m.group(1))
    try:
        ts = orjson.loads(line).get("ts")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    try:
        return int(ts)
    except (TypeError, ValueError):
        return None


def _in_order(path: Path) -> bool:
    """Whether the lines' times never go back (constant memory: one pass, one number)."""
    last = -1
    with open(path, "rb") as f:
        for line in f:
            ts = _line_ts(line)
            if ts is not None:
                if ts < last:
                    return False
                last = ts
    return True


def _events_jsonl(n: int, path: Path, _: LoadOptions) -> Iterator[_Keyed]:
    rank = _RANK[Liquidation]
    lines = _lines(path) if _in_order(path) else _sorted_lines(path)
    for i, (line_no, obj) in enumerate(lines):
        try:
            event = parse_event(obj)
        except ParseError as exc:
            raise ParseError(f"{path}:{line_no}: {exc}") from None
        yield event.ts_ms, rank, n, i, event


def _sorted_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """Lines in time order (stable) for a file that is not: times and offsets, then seeks."""
    times, offsets, numbers = array("q"), array("q"), array("q")
    last = 0
    with open(path, "rb") as f:
        pos = 0
        for line_no, line in enumerate(f, start=1):
            if line.strip():
                ts = _line_ts(line)
                last = ts if ts is not None else last  # a bad line fails where it stands
                times.append(last)
                offsets.append(pos)
                numbers.append(line_no)
            pos += len(line)
    order = np.argsort(np.frombuffer(times, dtype=np.int64), kind="stable")
    del times
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        for i in order.tolist():
            start = offsets[i]
            end = m.find(b"\n", start)
            text = m[start:end if end >= 0 else len(m)]
            try:
                yield numbers[i], orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise ParseError(f"{path}:{numbers[i]}: not JSON: {exc}") from None


# ---- raw frames JSONL -------------------------------------------------------------------------


def _frames_jsonl(n: int, path: Path, _: LoadOptions) -> Iterator[_Keyed]:
    exchange: str | None = None
    frames = events = 0

    def parsed() -> Iterator[tuple[int, Liquidation, int]]:
        nonlocal exchange, frames, events
        for line_no, frame in _lines(path):
            exchange = exchange or frame_exchange(frame)
            if exchange is None:
                raise ParseError(f"{path}:{line_no}: not a frame of any known venue "
                                 f"({', '.join(FRAME_FORMATS)})")
            try:
                found = FRAME_FORMATS[exchange].parse(frame)
            except ParseError as exc:
                raise ParseError(f"{path}:{line_no}: {exchange}: {exc}") from None
            frames += 1
            events += len(found)
            for e in found:
                yield e.ts_ms, e, line_no

    rank = _RANK[Liquidation]
    for i, (at, event) in enumerate(reorder(parsed(), REORDER_ITEMS, path)):
        yield at, rank, n, i, event
    logger.info("replay: %s: %d %s frames, %d liquidations", path.name, frames, exchange, events)


def reorder(items: Iterable[tuple[int, Any, int]], window: int, path: Path
            ) -> Iterator[tuple[int, Any]]:
    """(at, item, line) in file order -> (at, item) in time order, stable, holding at most
    `window` items; an item earlier than one already given fails naming its line."""
    heap: list[tuple[int, int, Any]] = []
    done = -1
    for seq, (at, item, line_no) in enumerate(items):
        if at < done:
            raise ParseError(
                f"{path}:{line_no}: more than {window} events out of time order; sort the "
                "file by time first")
        heapq.heappush(heap, (at, seq, item))
        if len(heap) > window:
            done, _, first = heapq.heappop(heap)
            yield done, first
    while heap:
        at, _, item = heapq.heappop(heap)
        yield at, item


# ---- parquet events ---------------------------------------------------------------------------


def _parquet_events(n: int, path: Path, opts: LoadOptions) -> Iterator[_Keyed]:
    """OKX rows a batch at a time through the loader's own conversion; other venues noted."""
    import pyarrow.compute as pc  # noqa: PLC0415 (only replays of parquet need Arrow)
    import pyarrow.parquet as pq  # noqa: PLC0415

    from feeds.history.parquet import _VENUE_EVENTS  # noqa: PLC0415

    rank = _RANK[Liquidation]
    ts = pq.read_table(path, columns=["timestamp"])["timestamp"]
    ordered = len(ts) < 2 or bool(pc.all(pc.greater_equal(ts[1:], ts[:-1])).as_py())
    if ordered:
        batches: Iterable[Any] = (b.to_pandas() for b in
                                  pq.ParquetFile(path).iter_batches(batch_size=_PARQUET_BATCH))
    else:
        table = pq.read_table(path)
        table = table.take(pc.sort_indices(table, sort_keys=[("timestamp", "ascending")]))
        batches = (table.slice(i, _PARQUET_BATCH).to_pandas()
                   for i in range(0, table.num_rows, _PARQUET_BATCH))
    counter = itertools.count()
    noted: dict[str, int] = {}
    for df in batches:
        for venue, rows in df.groupby("venue", sort=True):
            part = _VENUE_EVENTS[str(venue)](rows, path, opts.instruments)
            noted[str(venue)] = noted.get(str(venue), 0) + len(rows)
            for event in part.liquidations:
                yield event.ts_ms, rank, n, next(counter), event
    logger.info("replay: %s: rows per venue %s", path.name,
                ", ".join(f"{v} {k}" for v, k in sorted(noted.items())))


def _check_streamable(path: Path, fmt: str, opts: LoadOptions) -> None:
    """Fail before the replay starts on what the whole-file loader would refuse up front."""
    if fmt != "parquet-liquidations":
        return
    import pyarrow.parquet as pq  # noqa: PLC0415

    from feeds.history.parquet import _VENUE_EVENTS, read_parquet  # noqa: PLC0415

    names = set(pq.read_schema(path).names)
    needed = ["timestamp", "venue", "coin", "side", "size_usd", "price"]
    if not set(needed) <= names:
        read_parquet(path, needed)  # raises with the loader's message
    if pq.ParquetFile(path).metadata.num_rows == 0:
        raise file_error(path, "no rows")
    venues = set(pq.read_table(path, columns=["venue"])["venue"].unique().to_pylist())
    unknown = sorted(map(str, venues - set(_VENUE_EVENTS)))
    if unknown:
        raise file_error(path, f"unknown venue(s) {', '.join(map(repr, unknown))} "
                               f"(known: {', '.join(_VENUE_EVENTS)})")


_STREAMERS = {
    "events-jsonl": _events_jsonl,
    "frames-jsonl": _frames_jsonl,
    "parquet-liquidations": _parquet_events,
}
