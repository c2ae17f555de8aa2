"""Chart test data and checks: a day of events and candles, and a PNG opened and looked at."""

from __future__ import annotations

import io
from decimal import Decimal

from PIL import Image

from feeds.model import HOUR_MS, MINUTE_MS, Candle, Side
from feeds.store import Store
from tests.helpers.factories import make_liq

CHART_SIZE = (960, 540)


def seed_day(store: Store, end_ms: int, coin: str = "BTC") -> None:
    """A day before `end_ms`: a liquidation every 20 minutes (alternating sides, a big long
    one in the last hour) and 5-minute candles, so a chart has both panels to draw."""
    events = []
    for i in range(72):
        ts = end_ms - 24 * HOUR_MS + i * 20 * MINUTE_MS + 1000
        side = Side.LONG if i % 2 else Side.SHORT
        usd = Decimal(2_000_000 if i == 70 else 50_000 + 1000 * i)
        price = Decimal(100_000 + 10 * i)
        events.append(make_liq(symbol=f"{coin}USDT", position_side=side, price=price,
                               qty_base=usd / price, ts_exchange_ms=ts, ts_recv_ms=ts + 50))
    store.insert_liquidations(events)
    start = end_ms - 24 * HOUR_MS
    store.insert_candles(Candle("binance", coin, start + k * 5 * MINUTE_MS, 5 * MINUTE_MS,
                                100_000 + k, 100_100 + k, 99_900 + k, 100_050 + k)
                         for k in range(288))


def check_png(data: bytes) -> Image.Image:
    """Open the PNG and check it: the chart's size, and a picture rather than a blank."""
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG" and image.size == CHART_SIZE
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "a blank (or near blank) image"
    white = max(n for n, c in colours if c == (255, 255, 255)) if any(
        c == (255, 255, 255) for _, c in colours) else 0
    assert white < 0.97 * image.size[0] * image.size[1], "mostly white: nothing drawn"
    return image
