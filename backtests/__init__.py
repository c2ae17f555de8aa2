"""Backtests: replay history through the live signal path and study what price did next.

    bars = load_bars(["regime_1h.csv"], symbol="BTC")    # any file `run --replay` reads
    study = run_study(bars, StudyConfig())                 # alerts, outcomes, statistics
    results = generate_results(study, bars)                # the results.json data

Names load lazily, so the bot can import `backtests.track` without numpy-heavy modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "BacktestError": "backtests.bars", "Bars": "backtests.bars", "build_bars": "backtests.bars",
    "load_bars": "backtests.bars",
    "AlertRecord": "backtests.engine", "run_vectorized": "backtests.engine",
    "run_reference": "backtests.reference",
    "StudyConfig": "backtests.study", "Study": "backtests.study", "run_study": "backtests.study",
    "generate_results": "backtests.results", "write_results": "backtests.results",
    "read_results": "backtests.results",
    "parse_grid": "backtests.sweep", "run_sweep": "backtests.sweep",
    "walk_forward": "backtests.sweep",
    "save_latest": "backtests.track", "track_record": "backtests.track",
    "render_backtest_summary": "backtests.track",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'backtests' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
