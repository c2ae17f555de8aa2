"""What a report is made of: blocks, and the few ways a number is written in them.

`backtests.report` and `backtests.report_sweep` build blocks, `backtests.html` and
`render_markdown` write them; the terminal table uses the same number formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Block:
    kind: str  # h1 | h2 | p | list | table | img
    text: str = ""
    items: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def pct(x: float | None, digits: int = 2, signed: bool = True) -> str:
    if x is None:
        return "—"
    return f"{x * 100:+.{digits}f}%" if signed else f"{x * 100:.{digits}f}%"


def share(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f}%"


def band(b: Sequence[float] | None, fmt: Any = share) -> str:
    return "—" if not b else f"{fmt(b[0])} to {fmt(b[1])}"


def money(x: float) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= size:
            return f"${x / size:.3g}{unit}"
    return f"${x:.0f}"


def pval(p: float | None) -> str:
    return "—" if p is None else f"{p:.3f}" if p >= 0.001 else "<0.001"
