"""Synthetic history written as real-format files, and the console alerts read back."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from feeds.history.replay import ReplayData
from feeds.model import HOUR_MS, MINUTE_MS

SEVERITIES = {"notable": 1, "large": 2, "extreme": 3}
_UNITS = {"m": MINUTE_MS, "h": HOUR_MS}
_REGIME_HEADER = (
    "timestamp,datetime_utc,price_open,price_high,price_low,price_close,liquidation_long_usd,"
    "liquidation_short_usd,liquidation_total_usd,funding_open,funding_high,funding_low,"
    "funding_close,oi_open,oi_high,oi_low,oi_close"
)


def write_regime(path: Path, data: ReplayData, coin: str = "BTC") -> Path:
    """A CoinGlass regime export of one coin: its bars, candles and funding (in PERCENT)."""
    candles = {c.start_ms: c for c in data.candles if c.coin == coin}
    funding = sorted((f.ts_ms, float(f.rate) * 100) for f in data.funding if f.coin == coin)
    lines = [_REGIME_HEADER]
    for b in sorted((b for b in data.buckets if b.coin == coin), key=lambda b: b.start_ms):
        c = candles[b.start_ms]
        rate = next((r for t, r in reversed(funding) if t <= b.start_ms + b.span_ms), 0.0)
        lines.append(f"{b.start_ms},x,{c.open!r},{c.high!r},{c.low!r},{c.close!r},"
                     f"{b.long_usd!r},{b.short_usd!r},{b.total_usd!r},0,0,0,{rate:.8f},0,0,0,1e9")
    path.write_text("\n".join(lines) + "\n")
    return path


def _local(ts_ms: int, offset_h: float) -> str:
    return datetime.fromtimestamp(ts_ms / 1000 + offset_h * 3600, tz=UTC).strftime(
        "%Y-%m-%d %H:%M:%S")


def write_coinalyze(folder: Path, data: ReplayData, offset_h: float = 6.0) -> Path:
    """A Coinalyze export group per coin: liquidations in BASE units, OHLCV, local time."""
    folder.mkdir(parents=True, exist_ok=True)
    for coin in sorted({b.coin for b in data.buckets}):
        candles = {c.start_ms: c for c in data.candles if c.coin == coin}
        ohlcv, liq = [], []
        for t, c in sorted(candles.items()):
            ohlcv.append(f"{_local(t, offset_h)},{c.open!r},{c.high!r},{c.low!r},{c.close!r},"
                         "1,1,1,1")
        for b in sorted((b for b in data.buckets if b.coin == coin), key=lambda b: b.start_ms):
            c = candles[b.start_ms]
            typical = (c.high + c.low + c.close) / 3
            liq.append(f"{_local(b.start_ms, offset_h)},{b.long_usd / typical!r},"
                       f"{b.short_usd / typical!r}")
        (folder / f"{coin}USDT_PERP.A_ohlcv-history.csv").write_text("\n".join(ohlcv) + "\n")
        (folder / f"{coin}USDT_PERP.A_liquidation-history.csv").write_text("\n".join(liq) + "\n")
    return folder


def _ms(day: str, hhmm: str) -> int:
    return int(datetime.fromisoformat(f"{day}T{hhmm}:00+00:00").timestamp() * 1000)


def console_alerts(stdout: str) -> list[tuple[str, str, int, int, int]]:
    """(kind, scope, window ms, start ms, severity) of each alert `liqbot run` printed."""
    out = []
    for chunk in stdout.split("\n\n"):
        lines = chunk.strip().splitlines()
        if len(lines) < 4 or "liquidated in" not in lines[1]:
            continue
        title = re.match(r"\S+ (SHORT SQUEEZE|LONG CASCADE) — (.+) · (\w+)( \(escalated\))?$",
                         lines[0])
        window = re.search(r"liquidated in (\d+)([mh]),", lines[1])
        when = re.match(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2})–", lines[3])
        assert title and window and when, f"unexpected alert layout: {lines[:4]}"
        scope = "*" if title[2] == "market-wide" else title[2]
        out.append((title[1].lower().replace(" ", "_"), scope,
                    int(window[1]) * _UNITS[window[2]], _ms(when[1], when[2]),
                    SEVERITIES[title[3]]))
    return out


def result_alerts(results: dict) -> list[tuple[str, str, int, int, int]]:
    """The same tuple for each signal of a results.json."""
    out = []
    for s in results["signals"]:
        m = re.fullmatch(r"(\d+)([mh])", s["window"])
        assert m, s["window"]
        start = datetime.fromisoformat(s["window_start"].replace("Z", "+00:00"))
        out.append((s["kind"], s["symbol"], int(m[1]) * _UNITS[m[2]],
                    int(start.timestamp() * 1000), s["severity"]))
    return out
