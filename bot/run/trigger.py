"""Event-driven evaluation: evaluate the moment a stored batch could have raised an alert.

The live run evaluates on a schedule (`scheduler.eval_interval_s`, 15 s by default), so an
alert used to wait up to one interval after the liquidation that caused it. `Trigger` keeps,
in memory, the per-minute sums of our own events for every coin and for the market over the
longest evaluated window, read back from the store's minute buckets after each batch (so
duplicates, implausible prints and unpriced events count exactly as the store counts them).
From them it recomputes, for the scopes a batch touched, each window's totals and the
severity each classifier would give them (`signals.registry`, with the store's own trailing
baseline when the relative tiers matter). A (kind, scope) whose severity went up since the
last batch that touched it asks for an evaluation now; everything else waits for the tick.

It only decides WHEN `Pipeline.evaluate` runs, never what it decides: the evaluation reads
the store as always. The check is conservative: price and funding confirmations, the
`max_coins` cut and the cooldown are left to the evaluation, so it may evaluate and find
nothing, never the reverse for a crossing a batch caused. Windows that cross without a batch
(old events of the other side sliding out) are the scheduled evaluation's, as before.

Every method runs on the writer thread (it reads the store), like `Pipeline`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from feeds.model import HOUR_MS, MARKET, MINUTE_MS, Bucket, Liquidation, Side, ceil_ms, floor_ms
from feeds.store import Store, parse_window
from signals.params import SignalParams
from signals.registry import REGISTRY
from signals.stats import baseline_of, evaluated_windows, fire_floor
from signals.windows import WindowStat

Sums = list[float]  # [long_usd, short_usd]
logger = logging.getLogger(__name__)


class Trigger:
    """In-memory window sums per scope; says when a batch asks for an evaluation now."""

    def __init__(self, store: Store, params: SignalParams, windows_ms: Sequence[int]) -> None:
        self._store, self._p = store, params
        self._windows = sorted(windows_ms)
        self._span = self._windows[-1] if self._windows else 0
        # scope (a coin, or MARKET) -> minute start -> [long_usd, short_usd]
        self._minutes: dict[str, dict[int, Sums]] = {}
        # (kind, scope) -> the severity the last batch that touched the scope left it at
        self._level: dict[tuple[str, str], int] = {}
        # scope -> (window end, [long_usd, short_usd] per window): the windows' totals
        self._sums: dict[str, tuple[int, list[Sums]]] = {}
        self._kinds = [kind.value for kind in REGISTRY]
        self._least = [fire_floor(w, params) for w in self._windows]  # could_fire's bar
        # (scope, window start) -> (lookback total, held_ms, whole_ms), for the current end
        self._base: dict[tuple[str, int], tuple[float, int, int]] = {}
        self._base_end = 0
        self._pruned_end = 0
        self.fired = 0  # evaluations asked for
        self.failed = 0  # checks that raised (each asked for an evaluation)

    def seed(self, now_ms: int) -> None:
        """Load the minute sums the evaluated windows may still need (at start)."""
        if not self._windows:
            return
        end = ceil_ms(now_ms, MINUTE_MS)
        self._minutes.clear()
        self._sums.clear()
        for minute, coin, long_usd, short_usd in self._store.minute_sums(end - self._span,
                                                                         2**62):
            self._add(coin, minute, long_usd, short_usd)
        self._pruned_end = end
        # What the store already held counts as seen: the scheduled evaluation reports it,
        # the first batch after a restart does not evaluate for it again.
        for scope in self._minutes:
            for kind, level in self._levels(scope, end).items():
                if level:
                    self._level[(kind, scope)] = level

    def check(self, items: Sequence[Any], now_ms: int, new: int | None = None) -> bool:
        """`stored`, for the live run's write path: the batch is already in the store, so a
        failing check must not read as a failed write (held, retried, 503). It asks for an
        evaluation instead, which decides for itself, and is logged once."""
        try:
            return self.stored(items, now_ms, new)
        except Exception:
            if not self.failed:
                logger.exception("event-driven check failed; evaluating after each batch")
            self.failed += 1
            return True

    def stored(self, items: Sequence[Any], now_ms: int, new: int | None = None) -> bool:
        """After a batch went into the store: should the windows be evaluated now?

        `new`: how many of its liquidations the store kept (`Pipeline.ingest`). When that is
        all of them, their sizes are the minute sums' changes; otherwise (a duplicate, a
        print the plausibility gate refused) the touched minutes are read back instead.
        """
        if not self._windows:
            return False
        end = ceil_ms(now_ms, MINUTE_MS)
        liqs = [i for i in items if isinstance(i, Liquidation)]
        # Imported aggregate rows come from a poller every few minutes; a window that has no
        # events of ours is summed from them, which the minute sums do not hold.
        aggregates = any(isinstance(i, Bucket) for i in items)
        if not liqs or new == 0:
            return aggregates
        self._prune(end)
        coins = {e.coin for e in liqs}
        if new == len(liqs):
            for e in liqs:
                usd = float(e.notional_usd)
                long = e.position_side is Side.LONG
                self._add(e.coin, floor_ms(e.ts_ms, MINUTE_MS), usd if long else 0.0,
                          0.0 if long else usd)
        else:
            touched = {(e.coin, floor_ms(e.ts_ms, MINUTE_MS)) for e in liqs}
            minutes = [m for _, m in touched]
            fresh = {(c, m): (lg, sh) for m, c, lg, sh in
                     self._store.minute_sums(min(minutes), max(minutes) + MINUTE_MS, coins)}
            for coin, minute in touched:
                long_usd, short_usd = fresh.get((coin, minute), (0.0, 0.0))
                old = self._minutes.get(coin, {}).get(minute, [0.0, 0.0])
                self._add(coin, minute, long_usd - old[0], short_usd - old[1])
        fire = False
        for scope in (*sorted(coins), MARKET):
            for kind, level in self._levels(scope, end).items():
                key = (kind, scope)
                if level > self._level.get(key, 0):
                    fire = True
                if level:
                    self._level[key] = level
                else:
                    self._level.pop(key, None)
        self.fired += fire
        return aggregates or fire

    # -- sums --------------------------------------------------------------------------------

    def _add(self, coin: str, minute: int, long_usd: float, short_usd: float) -> None:
        for scope in (coin, MARKET):
            slot = self._minutes.setdefault(scope, {}).setdefault(minute, [0.0, 0.0])
            slot[0] += long_usd
            slot[1] += short_usd
            cached = self._sums.get(scope)
            if cached is not None:  # keep the current windows' totals without summing again
                end, sums = cached
                for window, total in zip(self._windows, sums, strict=True):
                    if end - window <= minute < end:
                        total[0] += long_usd
                        total[1] += short_usd

    def _prune(self, end: int) -> None:
        """Forget minutes older than the longest window, once a minute."""
        if end <= self._pruned_end:
            return
        self._pruned_end = end
        oldest = end - self._span
        for scope in list(self._minutes):
            minutes = self._minutes[scope]
            for m in [m for m in minutes if m < oldest]:
                del minutes[m]
            if not minutes:
                del self._minutes[scope]
                self._sums.pop(scope, None)
                for kind in self._kinds:
                    self._level.pop((kind, scope), None)

    def _totals(self, scope: str, end: int) -> list[Sums]:
        """[long_usd, short_usd] of each window ending at `end`: summed once a minute, then
        kept up to date by `_add`."""
        cached = self._sums.get(scope)
        if cached is not None and cached[0] == end:
            return cached[1]
        minutes = self._minutes.get(scope, {})
        sums = []
        for window in self._windows:
            long_usd = short_usd = 0.0
            for m in range(end - window, end, MINUTE_MS):
                slot = minutes.get(m)
                if slot is not None:
                    long_usd += slot[0]
                    short_usd += slot[1]
            sums.append([long_usd, short_usd])
        self._sums[scope] = (end, sums)
        return sums

    # -- severity ----------------------------------------------------------------------------

    def _levels(self, scope: str, end: int) -> dict[str, int]:
        """The highest severity per kind over the windows ending at `end`, with no context."""
        p = self._p
        levels = dict.fromkeys(self._kinds, 0)
        for window, (long_usd, short_usd), least in zip(self._windows, self._totals(scope, end),
                                                         self._least, strict=True):
            total = long_usd + short_usd
            # The evaluation's own pre-filter (`could_fire`) and the share rule: most
            # batches stop here.
            if total < least or max(long_usd, short_usd) < p.min_share * total:
                continue
            start = end - window
            baseline, coverage = None, None
            if total >= p.floor_usd(window):  # only then can the relative tiers count
                baseline, coverage = self._baseline(scope, start, end, window)
            stat = WindowStat(scope=scope, start_ms=start, end_ms=end, long_usd=long_usd,
                              short_usd=short_usd, baseline_usd=baseline, coverage=coverage)
            for kind, classify in REGISTRY.items():
                signal = classify(stat, p)
                if signal is not None and signal.severity > levels[kind.value]:
                    levels[kind.value] = signal.severity
        return levels

    def _baseline(self, scope: str, start: int, end: int, window: int
                  ) -> tuple[float | None, float]:
        """The trailing baseline `signals.stats` gives this window, read as it reads it."""
        if end != self._base_end:  # the windows moved on: last minute's lookbacks are stale
            self._base.clear()
            self._base_end = end
        lookback = self._p.baseline_hours * HOUR_MS
        cached = self._base.get((scope, start))
        if cached is None:
            coin = None if scope == MARKET else scope
            total = self._store.totals(start, lookback, coin=coin).total_usd
            held, whole = self._store.coverage(start, lookback, coin=coin)
            cached = self._base[(scope, start)] = (total, held, whole)
        total, held, whole = cached
        return baseline_of(total, window, lookback, held, whole)


def windows_of(params: SignalParams, bar_ms: int = MINUTE_MS) -> list[int]:
    """The windows an evaluation looks at: `Pipeline.evaluate` and the trigger alike."""
    return evaluated_windows(map(parse_window, params.windows), bar_ms)
