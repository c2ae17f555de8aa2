"""What every history loader shares: the HistoryData container and strict table helpers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.model import Bucket, Candle, Funding, Liquidation, OpenInterest, ParseError

logger = logging.getLogger(__name__)

# Epoch-millisecond sanity range (2001-09-09 .. 2286-11-20): seconds or microseconds fail it.
_MS_MIN, _MS_MAX = 1_000_000_000_000, 10_000_000_000_000


@dataclass(frozen=True, slots=True)
class HistoryData:
    """Everything one or more history files hold, already normalized.

    `notes` are human-readable facts about what a loader dropped, filled or assumed.
    """

    liquidations: list[Liquidation] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)
    funding: list[Funding] = field(default_factory=list)
    candles: list[Candle] = field(default_factory=list)
    open_interest: list[OpenInterest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def merge(self, other: HistoryData) -> HistoryData:
        """Return both histories in one, self first; nothing is deduplicated here."""
        return HistoryData(
            liquidations=self.liquidations + other.liquidations,
            buckets=self.buckets + other.buckets,
            funding=self.funding + other.funding,
            candles=self.candles + other.candles,
            open_interest=self.open_interest + other.open_interest,
            notes=self.notes + other.notes,
        )


def file_error(path: str | Path, problem: str) -> ParseError:
    """Return a ParseError whose message starts with the file."""
    return ParseError(f"{path}: {problem}")


def read_text_table(path: str | Path, *, header: bool) -> pd.DataFrame:
    """Read a CSV as text cells, indexed by 1-based line number, blank lines dropped.

    Text first, numbers later: a bad cell is then reported with its line and raw value
    instead of silently becoming NaN.
    """
    try:
        df = pd.read_csv(
            path,
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
        )
    except pd.errors.EmptyDataError:
        raise file_error(path, "empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise file_error(path, f"not a readable CSV: {str(exc).strip()[:200]}") from None
    except OSError as exc:
        raise file_error(path, f"cannot read: {exc.strerror}") from None
    df.index = df.index + (2 if header else 1)
    df = df[(df != "").any(axis=1)]
    if df.empty:
        raise file_error(path, "no data rows")
    return df


def require_columns(df: pd.DataFrame, names: Sequence[str], path: str | Path) -> None:
    """Fail naming every missing column and what the file has instead."""
    missing = [n for n in names if n not in df.columns]
    if missing:
        found = ", ".join(map(str, df.columns))
        raise file_error(path, f"missing column(s) {', '.join(missing)} (found: {found})")


def numbers(
    df: pd.DataFrame, column: str | int, path: str | Path, *, min_value: float | None = None
) -> np.ndarray:
    """Return a text column as finite floats; the first bad cell fails with its line."""
    values: np.ndarray = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if min_value is not None:
        bad |= values < min_value
    if bad.any():
        i = int(np.argmax(bad))
        what = "not a finite number" if not np.isfinite(values[i]) else f"below {min_value:g}"
        raise file_error(
            path, f"line {df.index[i]}, column {column!r}: {what}: {df[column].iloc[i]!r}"
        )
    return values


def epoch_ms(df: pd.DataFrame, column: str, path: str | Path) -> np.ndarray:
    """Return a text column of epoch milliseconds as int64, range-checked."""
    values = numbers(df, column, path)
    bad = (values != np.round(values)) | (values < _MS_MIN) | (values >= _MS_MAX)
    if bad.any():
        i = int(np.argmax(bad))
        raise file_error(
            path,
            f"line {df.index[i]}, column {column!r}: not epoch milliseconds: "
            f"{df[column].iloc[i]!r}",
        )
    return values.astype(np.int64)


def drop_repeated_rows(
    df: pd.DataFrame, key: str | int, path: str | Path
) -> tuple[pd.DataFrame, int]:
    """Drop exact copies of an earlier row; two different rows for one key are an error."""
    copies = df.duplicated(keep="first")
    kept = df[~copies]
    clash = kept[key].duplicated(keep=False)
    if clash.any():
        lines = ", ".join(str(i) for i in kept.index[clash][:4])
        raise file_error(
            path, f"conflicting rows for {key} {kept[key][clash].iloc[0]!r} (lines {lines})"
        )
    return kept, int(copies.sum())


def infer_span_ms(starts: np.ndarray, path: str | Path) -> int:
    """Return the bar width as the median spacing, so a few gaps do not change it."""
    steps = np.diff(np.unique(starts))
    if len(steps) == 0:
        raise file_error(path, "cannot infer the bar span from a single bar; pass span_ms")
    return int(np.median(steps))


def exact(text: str) -> Decimal:
    """Return a CSV number's own digits as a Decimal (never via float)."""
    return Decimal(text.strip())
