"""How Datasette's HTML pages show liqbot's columns: ISO times, dollars, severity names.

A Datasette plugin (the `render_cell` hook), loaded by `liqbot browse` through Datasette's
`--plugins-dir`. Only the HTML changes: the JSON and CSV exports keep the stored values
(integer ms, raw floats, severity numbers), so scripts reading them see what SQL sees.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from datasette import hookimpl

# Columns holding money, in whichever table or canned query they appear.
USD_COLUMNS = frozenset({"usd", "long_usd", "short_usd", "total_usd", "peak_usd", "oi_usd",
                         "min_usd"})
SEVERITY_COLUMNS = frozenset({"severity", "peak_severity"})
SEVERITY_NAMES = {1: "notable", 2: "large", 3: "extreme"}  # signals.params.SEVERITY_NAMES
DURATION_COLUMNS = frozenset({"span_ms", "window_ms", "window"})
# Epoch ms between 2001 and 2286: a count such as `next_ms = 0` or a span is not a time.
_EPOCH_MS = (1_000_000_000_000, 10_000_000_000_000)


def iso_ms(value: int) -> str:
    moment = datetime.fromtimestamp(value / 1000, UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text + (f".{value % 1000:03d}" if value % 1000 else "") + " UTC"


def duration_ms(value: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value} ms"


def dollars(value: float) -> str:
    return f"${value:,.2f}" if abs(value) < 100 else f"${value:,.0f}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def cell_text(column: str, value: Any) -> str | None:
    """The text shown for one cell, or None to leave it as Datasette shows it."""
    number = _number(value)
    if number is None or number != number:  # NULL, text, blobs, NaN
        return None
    if column in USD_COLUMNS:
        return dollars(number)
    if column in SEVERITY_COLUMNS and number in SEVERITY_NAMES:
        return f"{SEVERITY_NAMES[int(number)]} ({int(number)})"
    if column in DURATION_COLUMNS and number > 0 and number == int(number):
        return duration_ms(int(number))
    if column.endswith("_ms") and _EPOCH_MS[0] <= number < _EPOCH_MS[1]:
        return iso_ms(int(number))
    return None


@hookimpl
def render_cell(value: Any, column: str) -> str | None:
    # A plain string: Datasette escapes it like any other cell.
    return cell_text(column, value)
