"""Helpers every venue parser shares: strict numbers, required keys, one error type."""

from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from feeds.model import ParseError


def loads(text: str | bytes) -> Any:
    """Decode one JSON frame, turning any decode failure into ParseError."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"not JSON: {exc}") from None


def need(obj: Any, key: str, where: str) -> Any:
    """Return obj[key], or raise ParseError naming the missing key."""
    if not isinstance(obj, dict):
        raise ParseError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise ParseError(f"{where}: missing key {key!r}")
    return obj[key]


def dec(value: Any, name: str) -> Decimal:
    """Parse a venue number (JSON string or number) into a finite Decimal."""
    if isinstance(value, bool) or value is None:
        raise ParseError(f"{name}: expected a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParseError(f"{name}: not finite: {value!r}")
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ParseError(f"{name}: not a number: {str(value)[:40]!r}") from None
    if not d.is_finite():
        raise ParseError(f"{name}: not finite: {value!r}")
    if abs(d) > Decimal("1e18"):
        raise ParseError(f"{name}: out of range: {value!r}")
    return d


def positive(value: Any, name: str) -> Decimal:
    """Parse a number that must be > 0 (a price, a filled size)."""
    d = dec(value, name)
    if d <= 0:
        raise ParseError(f"{name}: must be positive, got {d}")
    return d


def ts_ms(value: Any, name: str) -> int:
    """Parse an epoch-millisecond timestamp (int or digit string) in a sane range."""
    if isinstance(value, bool):
        raise ParseError(f"{name}: expected a timestamp, got {value!r}")
    try:
        t = int(value) if isinstance(value, int) else int(str(value))
    except (ValueError, TypeError):
        raise ParseError(f"{name}: not a timestamp: {str(value)[:40]!r}") from None
    # 2001-09-09 .. 2286-11-20: rejects seconds-for-ms and garbage.
    if not 1_000_000_000_000 <= t < 10_000_000_000_000:
        raise ParseError(f"{name}: timestamp out of range: {t}")
    return t


def text(value: Any, name: str) -> str:
    """Return a non-empty string field."""
    if not isinstance(value, str) or not value:
        raise ParseError(f"{name}: expected a non-empty string, got {str(value)[:40]!r}")
    return value
