"""Recorded JSON lines: normalized events (`liqbot decode` output) and raw exchange frames."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feeds.history.base import HistoryData, file_error
from feeds.model import Liquidation, ParseError, Side, canonical_coin
from feeds.venues import binance
from feeds.venues.parsing import dec, loads, need, positive, text, ts_ms

logger = logging.getLogger(__name__)

_SIDES = {"long": Side.LONG, "short": Side.SHORT}
EVENT_KEYS = ("exchange", "symbol", "side", "qty", "price", "usd", "ts")


def parse_event(obj: Any) -> Liquidation:
    """Normalize one `liqbot decode` line (Liquidation.as_short_dict).

    {"exchange": "binance", "symbol": "BTCUSDT", "side": "long",   # the liquidated POSITION
     "qty": 0.014, "price": 9910.0, "usd": 138.74,                  # base units, USD notional
     "ts": 1568014460893, "sampled": true,                          # exchange ms; sampled optional
     "coin": "BTC", "id": "9178"}     # optional: the venue's base and its own fill/order id
    A line without `coin` is filed under the coin its symbol names; without `id` it is
    keyed as before ids existed, so older decode output replays onto the same rows.
    """
    side = need(obj, "side", "event")
    if side not in _SIDES:
        raise ParseError(f"side: expected 'long' or 'short', got {str(side)[:20]!r}")
    sampled = obj.get("sampled", False)
    if not isinstance(sampled, bool):
        raise ParseError(f"sampled: expected true or false, got {sampled!r}")
    usd = dec(need(obj, "usd", "event"), "usd")
    if usd < 0:
        raise ParseError(f"usd: must not be negative, got {usd}")
    if obj.get("unpriced") is True and usd != 0:
        raise ParseError(f"usd: an unpriced event has no USD value, got {usd}")
    at = ts_ms(need(obj, "ts", "event"), "ts")
    coin, vid, quote = obj.get("coin"), obj.get("id"), obj.get("quote")
    for key, value in (("coin", coin), ("quote", quote)):
        if value is not None and (not isinstance(value, str) or not value.isalnum()):
            raise ParseError(f"{key}: expected letters and digits, got {str(value)[:20]!r}")
    if obj.get("unpriced") is True and quote is None:
        raise ParseError("quote: an unpriced event names the coin its price is in")
    if vid is not None and (isinstance(vid, bool) or not isinstance(vid, (str, int))):
        raise ParseError(f"id: expected a string, got {str(vid)[:20]!r}")
    return Liquidation(
        exchange=text(need(obj, "exchange", "event"), "exchange"),
        symbol=text(need(obj, "symbol", "event"), "symbol"),
        position_side=_SIDES[side],
        qty_base=positive(need(obj, "qty", "event"), "qty"),
        price=positive(need(obj, "price", "event"), "price"),
        notional_usd=usd,
        ts_exchange_ms=at,
        ts_recv_ms=at,  # the decode shape carries no receive time
        sampled=sampled,
        raw=None,  # the line is the record: nothing of it is not in the fields (issue 16)
        base=canonical_coin(coin) if coin is not None else None,
        venue_id=str(vid) if vid is not None else None,
        quote=canonical_coin(quote) if quote is not None else None,
    )


def is_event(obj: Any) -> bool:
    """Tell a normalized event line from anything else by its keys."""
    return isinstance(obj, dict) and all(k in obj for k in EVENT_KEYS)


# ---- raw frames: one entry per venue ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameFormat:
    """How to recognise one venue's raw frame and turn it into events."""

    matches: Callable[[Any], bool]
    parse: Callable[[Any], list[Liquidation]]


def _binance_items(frame: Any) -> list[Any]:
    if isinstance(frame, dict) and "stream" in frame and "data" in frame:
        frame = frame["data"]  # combined-stream wrapper
    return frame if isinstance(frame, list) else [frame]


def _is_binance(frame: Any) -> bool:
    items = _binance_items(frame)
    # "e" names the event type on every Binance push; {"result", "id"} is its subscribe ack.
    return bool(items) and all(
        isinstance(i, dict) and ("e" in i or ("result" in i and "id" in i)) for i in items
    )


def _parse_binance(frame: Any) -> list[Liquidation]:
    """A recorded frame has no receive time: use the venue's event time `E` instead."""
    recv = 0
    for item in _binance_items(frame):
        if isinstance(item, dict) and isinstance(item.get("E"), int):
            recv = item["E"]
            break
    return binance.parse_message(frame, recv_ms=recv)


# Add a venue by adding its entry; detection and loading read only this table.
FRAME_FORMATS: dict[str, FrameFormat] = {
    "binance": FrameFormat(_is_binance, _parse_binance),
}


def frame_exchange(frame: Any) -> str | None:
    """Return the venue whose frames look like this one, or None."""
    for name, fmt in FRAME_FORMATS.items():
        if fmt.matches(frame):
            return name
    return None


# ---- files ------------------------------------------------------------------------------------


def _lines(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, decoded JSON) for each non-blank line; errors say file:line."""
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise file_error(path, f"cannot read: {exc.strerror}") from None
    seen = False
    with handle:
        try:
            for n, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                seen = True
                try:
                    yield n, loads(line)
                except ParseError as exc:
                    raise ParseError(f"{path}:{n}: {exc}") from None
        except UnicodeDecodeError:
            raise file_error(path, "not UTF-8 text") from None
    if not seen:
        raise file_error(path, "empty file")


def first_json_line(path: str | Path) -> Any:
    """Return the first non-blank line decoded, for format detection."""
    for _, obj in _lines(path):
        return obj
    raise file_error(path, "empty file")  # pragma: no cover - _lines raises first


def load_events_jsonl(path: str | Path) -> HistoryData:
    """Load normalized events, one JSON object per line; blank lines are skipped."""
    events = []
    for n, obj in _lines(path):
        try:
            events.append(parse_event(obj))
        except ParseError as exc:
            raise ParseError(f"{path}:{n}: {exc}") from None
    return HistoryData(liquidations=events)


def load_frames_jsonl(path: str | Path, *, exchange: str | None = None) -> HistoryData:
    """Load raw venue frames, one per line, through that venue's own parser.

    The venue is `exchange`, or recognised from the first line that looks like a frame.
    """
    if exchange is not None and exchange not in FRAME_FORMATS:
        raise file_error(
            path, f"no frame parser for {exchange!r} (known: {', '.join(FRAME_FORMATS)})"
        )
    events: list[Liquidation] = []
    frames = 0
    for n, frame in _lines(path):
        exchange = exchange or frame_exchange(frame)
        if exchange is None:
            raise ParseError(
                f"{path}:{n}: not a frame of any known venue ({', '.join(FRAME_FORMATS)})"
            )
        try:
            events += FRAME_FORMATS[exchange].parse(frame)
        except ParseError as exc:
            raise ParseError(f"{path}:{n}: {exchange}: {exc}") from None
        frames += 1
    note = f"{Path(path).name}: {frames} {exchange} frames, {len(events)} liquidations"
    return HistoryData(liquidations=events, notes=[note])
