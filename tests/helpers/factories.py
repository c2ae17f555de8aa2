"""Valid domain objects with defaults; a test overrides only what it is about."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from bot.alerts import Alert
from feeds.model import HOUR_MS, Bucket, Liquidation, Side
from signals import WindowStat

# 2026-01-13 21:00 UTC, the hour of the $458M example.
T0 = 1_768_338_000_000

QUIET_STAT = WindowStat(scope="BTC", start_ms=T0, end_ms=T0 + HOUR_MS,
                        long_usd=1e6, short_usd=1e6, baseline_usd=2e6)

ALERT = Alert(
    key="short_squeeze|*|3600000|0|3", kind="short_squeeze", severity=3,
    severity_name="extreme", scope="*", window_ms=HOUR_MS, start_ms=T0, end_ms=T0 + HOUR_MS,
    long_usd=39.04e6, short_usd=419.03e6, share=419.03 / 458.07, ratio=12.0, episode_ms=T0,
)


def make_stat(**overrides: Any) -> WindowStat:
    return dataclasses.replace(QUIET_STAT, **overrides)


def make_alert(**overrides: Any) -> Alert:
    return dataclasses.replace(ALERT, **overrides)


def make_liq(**overrides: Any) -> Liquidation:
    base = Liquidation(
        exchange="binance", symbol="BTCUSDT", position_side=Side.SHORT,
        qty_base=Decimal("1"), price=Decimal("100000"), notional_usd=Decimal("100000"),
        ts_exchange_ms=T0, ts_recv_ms=T0 + 50, sampled=True, raw={"fake": True},
    )
    # The store rejects a USD value far from qty x price (feeds/plausible.py): derive the
    # one a test leaves out from the ones it gives.
    given = {k for k in ("qty_base", "price", "notional_usd") if k in overrides}
    liq = dataclasses.replace(base, **overrides)
    if "notional_usd" not in given and given:
        liq = dataclasses.replace(liq, notional_usd=liq.qty_base * liq.price)
    elif given == {"notional_usd"}:
        liq = dataclasses.replace(liq, qty_base=liq.notional_usd / liq.price)
    return liq


def make_bucket(**overrides: Any) -> Bucket:
    base = Bucket(start_ms=T0, span_ms=HOUR_MS, exchange="*", coin="BTC",
                  long_usd=1e6, short_usd=1e6, source="coinglass")
    return dataclasses.replace(base, **overrides)


class Ops:
    """Records operator notices; serves no destination."""

    name = "ops"
    ready = True
    parallel = 1

    def __init__(self) -> None:
        self.notices: list[str] = []

    async def send(self, alert: Any, destination: str) -> None:
        raise AssertionError("ops receives notices only")

    async def notice(self, text: str) -> None:
        self.notices.append(text)

    async def close(self) -> None:
        return None
