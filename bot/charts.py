"""PNG charts for chats: a day of price and per-side liquidations around a window, shaded.

Three steps, each where it belongs: `load_chart` reads the store (on the writer thread, the
only one that may touch SQLite), `render_png` draws with matplotlib's Agg canvas (pure, on a
thread of its own so the event loop that carries the websockets never waits on it), and
`ChartMaker` ties them together with a cache per window, so one alert fanned out to many
chats is drawn once, and a retry from the outbox redraws the same picture from the store.

matplotlib is imported inside `render_png` only: importing this module costs nothing, and no
command that never draws pays for it (`liqbot --help` must stay quick).
"""

from __future__ import annotations

import asyncio
import io
import logging
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from feeds.model import DAY_MS, HOUR_MS, MARKET, MINUTE_MS, ceil_ms, ms_to_dt
from feeds.store import Store, window_name
from feeds.store.charts import LiqBar, PricePoint

logger = logging.getLogger(__name__)

PNG_NAME = "chart.png"  # the attachment's file name (Discord embeds refer to it)
_BARS = 96  # bars across the chart: 15-minute bars over a day
# Colours of the liquidated side, as the kinds it defines are drawn (signals.kinds).
_SHORTS, _LONGS = "tab:green", "tab:red"
_PRICE_OF_MARKET = "BTC"  # market-wide charts draw the bellwether's price
WARM_AFTER_S = 20.0  # when a run imports matplotlib ahead of its first chart (ChartMaker)


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """What a chart shows: a scope's window (end exclusive), inside the day before its end."""

    scope: str  # a coin, or MARKET
    window_ms: int
    end_ms: int

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.window_ms

    @property
    def span_ms(self) -> int:
        """A day, or two when the window is a day itself: some context must stay unshaded."""
        return max(DAY_MS, 2 * self.window_ms)

    @property
    def key(self) -> str:
        return f"{self.scope}|{self.window_ms}|{self.end_ms}"

    @classmethod
    def parse(cls, key: str) -> ChartSpec:
        scope, window, end = key.split("|")
        return cls(scope, int(window), int(end))

    @classmethod
    def of(cls, alert: Any) -> ChartSpec:
        """The chart of an alert (bot.alerts.Alert): its scope's window, as the alert saw it."""
        return cls(alert.scope, alert.window_ms, alert.end_ms)

    @classmethod
    def now(cls, scope: str, window_ms: int, now_ms: int) -> ChartSpec:
        """The window ending at the next whole minute: `/chart` twice in a minute is one draw."""
        return cls(scope, window_ms, ceil_ms(now_ms, MINUTE_MS))


@dataclass(frozen=True, slots=True)
class ChartData:
    spec: ChartSpec
    bars: Sequence[LiqBar]
    bar_ms: int
    prices: Sequence[PricePoint]
    price_coin: str

    @property
    def empty(self) -> bool:
        return not self.bars and not self.prices


def load_chart(store: Store, spec: ChartSpec) -> ChartData:
    """The store's data for `spec` (call on the thread that owns the store)."""
    start, end = spec.end_ms - spec.span_ms, spec.end_ms
    coin = None if spec.scope == MARKET else spec.scope
    bars, bar_ms = store.liq_bars(coin, start, end, max(MINUTE_MS, spec.span_ms // _BARS))
    price_coin = coin or _PRICE_OF_MARKET
    return ChartData(spec, bars, bar_ms, store.price_line(price_coin, start, end), price_coin)


def _short_money(value: float, _: Any = None) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"${abs(value) / size:g}{unit}"
    return f"${abs(value):g}"


def _price(value: float, _: Any = None) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.4g}"


def render_png(data: ChartData, *, dpi: int = 100) -> bytes:
    """The chart as PNG bytes, 960 × 540 at the default dpi (a Telegram photo's 16:9)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    spec = data.spec
    end = spec.end_ms

    def hours(ms: int) -> float:  # x axis: hours relative to the window's end
        return (ms - end) / HOUR_MS

    fig = Figure(figsize=(9.6, 5.4), dpi=dpi)
    FigureCanvasAgg(fig)
    # Fixed margins: tight_layout would measure every label on each draw (half the time).
    fig.subplots_adjust(left=0.09, right=0.97, top=0.9, bottom=0.1, hspace=0.08)
    ax_price, ax_liq = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    scope = "All coins" if spec.scope == MARKET else spec.scope
    fig.suptitle(f"{scope} liquidations · {window_name(spec.window_ms)} window to "
                 f"{ms_to_dt(end):%Y-%m-%d %H:%M} UTC shaded", fontsize=12)
    for ax in (ax_price, ax_liq):
        ax.axvspan(hours(spec.start_ms), 0, color="gold", alpha=0.25, lw=0)
        ax.grid(True, color="0.9", lw=0.6)
        ax.set_axisbelow(True)
    if data.prices:
        ax_price.plot([hours(p.end_ms) for p in data.prices], [p.close for p in data.prices],
                      color="tab:blue", lw=1.4)
        ax_price.yaxis.set_major_formatter(FuncFormatter(_price))
    else:
        ax_price.text(0.5, 0.5, "no price data", ha="center", va="center",
                      transform=ax_price.transAxes, color="0.5")
    ax_price.set_ylabel(f"{data.price_coin} price")
    width = data.bar_ms / HOUR_MS * 0.85
    x = [hours(b.start_ms) + data.bar_ms / HOUR_MS / 2 for b in data.bars]
    # Shorts up, longs down: the side that dominates a bar shows at a glance.
    ax_liq.bar(x, [b.short_usd for b in data.bars], width=width, color=_SHORTS,
               label="shorts liquidated")
    ax_liq.bar(x, [-b.long_usd for b in data.bars], width=width, color=_LONGS,
               label="longs liquidated")
    ax_liq.axhline(0, color="0.3", lw=0.6)
    ax_liq.yaxis.set_major_formatter(FuncFormatter(_short_money))
    ax_liq.legend(loc="upper left", fontsize=8, framealpha=0.85, edgecolor="none")
    step = 4 if spec.span_ms <= DAY_MS else 8
    first = -(spec.span_ms // HOUR_MS)
    ticks = list(range(int(first), 1, step))
    ax_liq.set_xticks(ticks, [f"{ms_to_dt(end + t * HOUR_MS):%H:%M}" for t in ticks])
    ax_liq.set_xlim(first, 0.5)
    ax_liq.set_xlabel("UTC")
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


def warm() -> None:
    """Import matplotlib's drawing modules now (a second or so), not on the first alert."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    FigureCanvasAgg(fig)
    fig.savefig(io.BytesIO(), format="png")


Run = Callable[..., Awaitable[Any]]


class ChartMaker:
    """PNG charts for a running bot: store reads on the writer, drawing on a thread of its own,
    one draw per window however many chats ask (cached; concurrent asks share the draw)."""

    def __init__(self, run: Run, store: Store, cache_size: int = 32) -> None:
        self.run = run
        self.store = store
        self.cache_size = cache_size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liqbot-chart")
        self._cache: OrderedDict[str, bytes | None] = OrderedDict()
        self._drawing: dict[str, asyncio.Future[bytes | None]] = {}
        self.draws = 0  # for tests and metrics: how many charts were actually drawn
        self._warm: asyncio.Future[None] | None = None
        self._warm_handle: asyncio.TimerHandle | None = None

    def warm_up(self, after_s: float = WARM_AFTER_S) -> None:
        """Import matplotlib on the chart thread `after_s` from now, unless a chart came first.

        Not at once: the import holds the GIL for about a second, and a run's first seconds
        are when its sockets connect and its first answers go out. An extreme alert in that
        time draws all the same, the import included."""
        if self._warm is not None or self._warm_handle is not None:  # each service asks
            return
        loop = asyncio.get_running_loop()

        def start() -> None:
            if self._warm is None:
                try:
                    self._warm = loop.run_in_executor(self._pool, warm)
                except RuntimeError:  # closed meanwhile: nothing will draw
                    pass

        self._warm_handle = loop.call_later(after_s, start)

    async def png(self, spec: ChartSpec) -> bytes | None:
        """The chart of `spec` as PNG bytes; None when the store holds nothing to draw, or
        drawing failed (logged): a chart never keeps an alert from going out."""
        key = spec.key
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if key in self._drawing:
            return await asyncio.shield(self._drawing[key])
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._drawing[key] = future
        try:
            png = await self._draw(spec)
            future.set_result(png)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._drawing[key]
        self._cache[key] = png
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return png

    async def _draw(self, spec: ChartSpec) -> bytes | None:
        data = await self.run(load_chart, self.store, spec)
        if data.empty:
            return None
        try:
            png: bytes = await asyncio.get_running_loop().run_in_executor(
                self._pool, render_png, data)
        except Exception:
            logger.exception("chart: drawing %s failed; sending text only", spec.key)
            return None
        self.draws += 1
        if self._warm_handle is not None:  # drawn: matplotlib is in, nothing left to warm
            self._warm_handle.cancel()
        return png

    def close(self) -> None:
        if self._warm_handle is not None:
            self._warm_handle.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)


async def alert_chart(maker: ChartMaker | None, alert: Any) -> bytes | None:
    """The chart an alert goes out with: extreme alerts and digests, when a maker is set and the
    store holds something to draw."""
    if maker is None or not alert.charted:
        return None
    return await maker.png(ChartSpec.of(alert))


_MAKERS: weakref.WeakKeyDictionary[Any, ChartMaker] = weakref.WeakKeyDictionary()


def chart_maker(writer: Any) -> ChartMaker:
    """The one ChartMaker of a run's writer: Telegram and Discord share its cache."""
    maker = _MAKERS.get(writer)
    if maker is None:
        maker = _MAKERS[writer] = ChartMaker(writer.run, writer.store)
    return maker
