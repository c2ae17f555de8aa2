"""A small recorded-events file for replays: quiet minutes and two liquidation spikes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.factories import T0

MINUTE = 60_000


def write_events(path: Path, hours: int = 12, spikes: dict[int, str] | None = None) -> Path:
    """One small event a minute, plus 30 x $2M of one side in each spike hour.

    `spikes` maps an hour index to the side liquidated there ("short": a squeeze).
    """
    spikes = {4: "short", 9: "long"} if spikes is None else spikes
    lines = []
    for m in range(hours * 60):
        ts = T0 + m * MINUTE
        side = "long" if m % 2 else "short"
        lines.append(_event(ts, side, 20_000.0))
        if m // 60 in spikes and m % 60 < 30:
            lines.append(_event(ts + 1, spikes[m // 60], 2_000_000.0))
    path.write_text("\n".join(lines) + "\n")
    return path


def _event(ts: int, side: str, usd: float) -> str:
    return json.dumps({"exchange": "binance", "symbol": "BTCUSDT", "side": side,
                       "qty": usd / 100_000, "price": 100_000.0, "usd": usd, "ts": ts,
                       "sampled": True})
