"""The event-driven trigger against a real store: it asks for an evaluation whenever one
would decide a new alert, and stays quiet when nothing a batch did could.
"""

from __future__ import annotations

import random
from decimal import Decimal

from bot.run.pipeline import Pipeline
from bot.run.trigger import Trigger, windows_of
from feeds.model import HOUR_MS, MINUTE_MS, Side
from feeds.store import Store
from signals import SignalParams
from tests.helpers.factories import T0, make_bucket, make_liq

NOW = T0 + 30 * MINUTE_MS + 12_345  # mid-minute: windows end at the next whole minute
P = SignalParams()


def liq(coin: str, usd: float, short: bool = True, ts: int = NOW - 1_000, n: int = 0):
    return make_liq(symbol=f"{coin}USDT", base=coin, position_side=Side.SHORT if short
                    else Side.LONG, price=Decimal("100"), qty_base=Decimal(f"{usd / 100:.2f}"),
                    ts_exchange_ms=ts - n, ts_recv_ms=ts - n + 5)


def rig(tmp_path, name: str = "t.db") -> tuple[Store, Pipeline, Trigger]:
    store = Store(tmp_path / name)
    pipeline = Pipeline(store, P, ["console"])
    trigger = Trigger(store, P, windows_of(P))
    trigger.seed(NOW)
    return store, pipeline, trigger


def put(pipeline: Pipeline, trigger: Trigger, items, now: int = NOW) -> bool:
    """Store a batch as the live run does, the trigger told how many events were new."""
    return trigger.stored(items, now, pipeline.ingest(items))


def test_small_batches_stay_quiet_and_a_crossing_fires_once(tmp_path):
    store, pipeline, trigger = rig(tmp_path)
    try:
        # $1M of shorts: under the 5m notable tier ($2.89M) and its relative floor ($0.58M
        # applies only with a baseline, which a fresh store has not).
        assert not put(pipeline, trigger, [liq("ABC", 1e6, n=i) for i in range(1)])
        assert not put(pipeline, trigger, [liq("ABC", 1e6, n=1)])
        assert put(pipeline, trigger, [liq("ABC", 1e6, n=2)])  # $3M: notable in 5m
        assert pipeline.evaluate(NOW)  # and the evaluation agrees
        assert not put(pipeline, trigger, [liq("ABC", 1e5, n=3)])  # still notable: no news
        assert put(pipeline, trigger, [liq("ABC", 5e6, n=4)])  # $8.1M: large in 5m
        assert [(a.scope, a.severity) for a in pipeline.evaluate(NOW)] == [("ABC", 2)]
        # A duplicate of a stored frame changes no sum: the store ignores it, so does this.
        assert not put(pipeline, trigger, [liq("ABC", 5e6, n=4)])
        assert trigger.fired == 2
    finally:
        store.close()


def test_the_other_side_diluting_the_share_does_not_fire(tmp_path):
    store, pipeline, trigger = rig(tmp_path)
    try:
        assert put(pipeline, trigger, [liq("ABC", 4e6)])
        assert not put(pipeline, trigger, [liq("ABC", 4e6, short=False, n=1)])  # 50 % shorts
        assert not put(pipeline, trigger, [liq("ABC", 1e5, n=2)])
    finally:
        store.close()


def test_relative_tiers_read_the_stores_baseline(tmp_path):
    """A coin with a quiet week: $1M in 5m is 5x its baseline (above the $0.58M floor)."""
    store, pipeline, trigger = rig(tmp_path)
    try:
        # $100k an hour for a week: a 5m baseline of $8.3k, so $0.6M is a 72x ratio.
        week = [liq("QUIET", 1e5, short=h % 2 == 0, ts=NOW - 10 * MINUTE_MS - h * HOUR_MS)
                for h in range(1, 170)]
        pipeline.ingest(week)
        trigger = Trigger(store, P, windows_of(P))
        trigger.seed(NOW)
        assert not put(pipeline, trigger, [liq("QUIET", 4e5)])  # under the floor
        assert put(pipeline, trigger, [liq("QUIET", 3e5, n=1)])  # $0.7M: extreme by ratio
        alerts = pipeline.evaluate(NOW)
        assert [(a.scope, a.severity) for a in alerts] == [("QUIET", 3)]
    finally:
        store.close()


def test_a_restart_does_not_fire_for_what_the_store_already_held(tmp_path):
    store, pipeline, trigger = rig(tmp_path)
    try:
        assert put(pipeline, trigger, [liq("ABC", 3e6)])
        restarted = Trigger(store, P, windows_of(P))
        restarted.seed(NOW)
        assert not put(pipeline, restarted, [liq("ABC", 1e5, n=1)])
        assert put(pipeline, restarted, [liq("ABC", 6e6, n=2)])  # a real escalation still does
    finally:
        store.close()


def test_imported_aggregates_always_evaluate(tmp_path):
    store, pipeline, trigger = rig(tmp_path)
    try:
        assert put(pipeline, trigger, [make_bucket(start_ms=NOW - HOUR_MS)])
    finally:
        store.close()


def test_every_alert_a_batch_causes_was_asked_for(tmp_path):
    """Random batches at one moment: whenever an evaluation after a batch decides an alert
    that is news — the first of its (kind, scope), or above every severity it had — the
    trigger asked for one (it may ask more often, never less).

    Not news: in the minute of an alert the policy may decide the same severity again for a
    longer window of the same scope (it looks back strictly before the window end); the
    scheduled evaluation finds those as before.
    """
    rng = random.Random(16)
    store, pipeline, trigger = rig(tmp_path)
    coins = ["AAA", "BBB", "CCC", "DDD"]
    asked = news = 0
    top: dict[tuple[str, str], int] = {}
    try:
        for i in range(300):
            batch = [liq(rng.choice(coins), rng.lognormvariate(12.5, 1.3),
                         short=rng.random() < 0.7, ts=NOW - rng.randrange(0, 4 * HOUR_MS), n=i)
                     for _ in range(rng.randint(1, 4))]
            fired = put(pipeline, trigger, batch)
            fresh = [a for a in pipeline.evaluate(NOW)
                     if a.severity > top.get((a.kind, a.scope), 0)]
            assert fired or not fresh, (i, fresh)
            for a in fresh:
                top[(a.kind, a.scope)] = a.severity
            asked += fired
            news += bool(fresh)
        assert news >= 5  # the walk did cross tiers, on several coins and windows
        assert asked <= 2 * news  # and quiet batches mostly stayed quiet
    finally:
        store.close()


def test_a_check_that_fails_asks_for_an_evaluation_instead_of_failing_the_write(tmp_path,
                                                                                  caplog):
    store, _, trigger = rig(tmp_path)
    store.close()  # every read now raises
    assert trigger.check([liq("ABC", 1e3)], NOW, None)
    assert trigger.check([liq("ABC", 1e3, n=1)], NOW, None)
    assert trigger.failed == 2
    assert caplog.text.count("event-driven check failed") == 1  # said once, not per batch
