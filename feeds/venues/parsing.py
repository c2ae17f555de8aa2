"""Helpers every venue parser shares: strict numbers, required keys, one error type.

The funding helpers at the end serve the REST parsers of several venues.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from feeds.model import HOUR_MS, Funding, Liquidation, ParseError

logger = logging.getLogger(__name__)

# Larger than any real price or size: a bound that catches garbage such as "9e99".
_MAX = Decimal("1e18")
# Binance and Bybit: symbols absent from fundingInfo / without fundingInterval settle every 8 h.
DEFAULT_INTERVAL_H = 8.0
MAX_INTERVAL_H = 24.0 * 7


def loads(text: str | bytes) -> Any:
    """Decode one JSON frame, turning any decode failure into ParseError.

    orjson, not json: decoding is the largest single cost of ingest. It is also stricter
    (no NaN literals, no lone surrogates), which a parser of untrusted frames wants anyway.
    """
    try:
        return orjson.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"not JSON: {exc}") from None


def read_json_file(path: str | Path, what: str) -> Any:
    """A saved venue answer (an instruments or exchangeInfo file); a ParseError names the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ParseError(f"{path}: cannot read {what} file: {exc.strerror}") from None
    except ValueError as exc:
        raise ParseError(f"{path}: not JSON: {exc}") from None


def need(obj: Any, key: str, where: str) -> Any:
    """Return obj[key], or raise ParseError naming the missing key."""
    if type(obj) is dict:  # the common case first: this runs several times per frame
        try:
            return obj[key]
        except KeyError:
            raise ParseError(f"{where}: missing key {key!r}") from None
    raise ParseError(f"{where}: expected an object, got {type(obj).__name__}")


def dec(value: Any, name: str) -> Decimal:
    """Parse a venue number (JSON string or number) into a finite Decimal."""
    if type(value) is not str:  # venues send strings; the checks below are for the rest
        if isinstance(value, bool) or value is None:
            raise ParseError(f"{name}: expected a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ParseError(f"{name}: not finite: {value!r}")
        value = str(value)
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError):
        raise ParseError(f"{name}: not a number: {value[:40]!r}") from None
    if not d.is_finite():
        raise ParseError(f"{name}: not finite: {value[:40]!r}")
    if abs(d) > _MAX:
        raise ParseError(f"{name}: out of range: {value[:40]!r}")
    return d


def positive(value: Any, name: str) -> Decimal:
    """Parse a number that must be > 0 (a price, a filled size)."""
    d = dec(value, name)
    if d <= 0:
        raise ParseError(f"{name}: must be positive, got {d}")
    return d


def ts_ms(value: Any, name: str) -> int:
    """Parse an epoch-millisecond timestamp (int or digit string) in a sane range."""
    if type(value) is int:
        t = value
    elif isinstance(value, bool):
        raise ParseError(f"{name}: expected a timestamp, got {value!r}")
    else:
        t = _int_text(value, name)
    # 2001-09-09 .. 2286-11-20: rejects seconds-for-ms and garbage.
    if not 1_000_000_000_000 <= t < 10_000_000_000_000:
        raise ParseError(f"{name}: timestamp out of range: {t}")
    return t


def _int_text(value: Any, name: str) -> int:
    try:
        return int(str(value))  # digit strings; a float like 1.5e12 is refused, not rounded
    except (ValueError, TypeError):
        raise ParseError(f"{name}: not a timestamp: {str(value)[:40]!r}") from None


def text(value: Any, name: str) -> str:
    """Return a non-empty string field."""
    if not isinstance(value, str) or not value:
        raise ParseError(f"{name}: expected a non-empty string, got {str(value)[:40]!r}")
    return value


# -- one item at a time ------------------------------------------------------------------------

# Items skipped from frames that still carried good ones, per (venue, kind of fault).
ITEM_FAULTS: Counter[tuple[str, str]] = Counter()
_NUMBERS = re.compile(r"'[^']*'|-?\d[\d.eE+-]*")


def fault_kind(exc: ParseError) -> str:
    """What went wrong, without where: "BTC-27DEC24-60000-C: options are not supported"
    and the same for an ETH option are one kind."""
    what = str(exc).split(": ", 1)[-1]
    return _NUMBERS.sub("…", what)[:80]


def note_fault(exchange: str, exc: ParseError) -> None:
    """Count one skipped item; the first of each kind per venue is logged with its detail."""
    key = (exchange, fault_kind(exc))
    if key not in ITEM_FAULTS and len(ITEM_FAULTS) >= 1000:
        key = (exchange, "other")  # hostile input cannot grow the table without bound
    ITEM_FAULTS[key] += 1
    if ITEM_FAULTS[key] == 1:
        logger.warning("%s: skipped a liquidation item (%s); further items with this fault "
                       "are counted, not logged", exchange, exc)


def each_item(
    exchange: str, items: Iterable[Any], parse_one: Callable[[Any], list[Liquidation]]
) -> list[Liquidation]:
    """Parse every item on its own: a bad one is counted and skipped, its neighbours kept.

    When no item parses, the first error is raised: the frame as a whole is bad and the
    feed (or `liqbot decode`) reports it as it reports any bad frame.
    """
    out: list[Liquidation] = []
    bad: list[ParseError] = []
    for item in items:
        try:
            out += parse_one(item)
        except ParseError as exc:
            bad.append(exc)
    if bad and not out:
        raise bad[0]
    for fault in bad:
        note_fault(exchange, fault)
    return out


# -- funding (REST) ------------------------------------------------------------------------


def json_rows(obj: Any, where: str) -> list[dict[str, Any]]:
    """Return `obj` when it is a list of objects; ParseError otherwise."""
    if not isinstance(obj, list):
        raise ParseError(f"{where}: expected a list, got {type(obj).__name__}")
    for row in obj:
        if not isinstance(row, dict):
            raise ParseError(f"{where}: expected objects, got {type(row).__name__}")
    return obj


def interval_hours(value: Any, name: str) -> float:
    """Parse a funding interval in hours, at most a week."""
    h = float(dec(value, name))
    if not 0 < h <= MAX_INTERVAL_H:
        raise ParseError(f"{name}: funding interval out of range: {h} h")
    return h


def non_negative(value: Any, name: str) -> Decimal:
    """Parse a number that must be >= 0 (open interest, a mark price)."""
    d = dec(value, name)
    if d < 0:
        raise ParseError(f"{name}: must not be negative, got {d}")
    return d


def interval_from_times(times_ms: Iterable[int]) -> float | None:
    """Return the funding interval (hours) implied by settlement times, or None if unclear.

    The smallest gap wins, so a missing row in the middle does not double the interval;
    rounding to a quarter hour absorbs Binance's few-ms jitter on fundingTime.
    """
    ordered = sorted(set(times_ms))
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
    if not gaps:
        return None
    hours = round(min(gaps) / HOUR_MS * 4) / 4
    return hours if 0.25 <= hours <= 24 else None


def funding_by_symbol(
    parsed: list[tuple[str, int, Decimal]], known: Mapping[str, float], exchange: str
) -> list[Funding]:
    """Funding rows with an interval per symbol: published, else derived, else 8 h.

    `parsed` holds (symbol, settlement ms, rate) triples.
    """
    times: dict[str, list[int]] = {}
    for symbol, t, _ in parsed:
        times.setdefault(symbol, []).append(t)
    hours = {
        s: known.get(s) or interval_from_times(ts) or DEFAULT_INTERVAL_H
        for s, ts in times.items()
    }
    return [Funding(exchange, s, t, rate, hours[s]) for s, t, rate in parsed]
