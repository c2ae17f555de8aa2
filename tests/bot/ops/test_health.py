"""Down and silent feeds become one notice each; recovery is announced once."""

from bot.ops.health import HealthConfig, HealthMonitor, save_status, status_report
from bot.render import duration, render_status
from bot.run.lock import acquire_lock, release_lock
from feeds.net.ws import FeedStats
from feeds.store import Store

MIN = 60_000


def stats(connected_since=None, last_event=None, exchange="binance", **kw):
    return FeedStats(exchange=exchange, connected_since_ms=connected_since,
                     last_event_ms=last_event, **kw)


def test_quiet_market_is_not_a_dead_feed_until_the_threshold():
    mon = HealthMonitor(HealthConfig(silent_after_ms=30 * MIN), started_ms=0)
    assert mon.check([stats(connected_since=0, last_event=0)], 29 * MIN) == []
    (notice,) = mon.check([stats(connected_since=0, last_event=0)], 30 * MIN)
    assert notice.startswith("⚠️ binance: no liquidation data for 30m")
    assert mon.check([stats(connected_since=0, last_event=0)], 90 * MIN) == []  # said once
    (back,) = mon.check([stats(connected_since=0, last_event=91 * MIN)], 91 * MIN)
    assert back == "✅ binance: back after 1h 1m silent"


def test_down_after_grace_then_recovered():
    mon = HealthMonitor(HealthConfig(down_after_ms=MIN), started_ms=0)
    assert mon.check([stats(last_error="ConnectionRefusedError")], 0) == []
    (down,) = mon.check([stats(last_error="ConnectionRefusedError")], MIN)
    assert "binance: feed down (ConnectionRefusedError)" in down
    assert mon.check([stats(last_error="x")], 5 * MIN) == []
    (up,) = mon.check([stats(connected_since=6 * MIN, last_event=6 * MIN)], 6 * MIN)
    assert up.startswith("✅ binance: back after 5m")


def test_a_venue_with_one_live_socket_of_two_is_up():
    mon = HealthMonitor(HealthConfig(down_after_ms=0), started_ms=0)
    s = [stats(exchange="bybit", connected_since=0, last_event=0), stats(exchange="bybit")]
    assert mon.check(s, MIN) == [] and mon.states() == {"bybit": "up"}


def test_status_report_round_trips_through_the_database(tmp_path):
    store = Store(tmp_path / "s.db")
    store.record_gap("binance", 10 * MIN, None, "connection lost")
    save_status(store, [stats(connected_since=0, last_event=40 * MIN, events=12),
                        stats(exchange="bybit", connected_since=0, last_event=41 * MIN)],
                {"binance": "up", "bybit": "up"}, 42 * MIN)
    lock = acquire_lock(store.path)  # a running bot holds it
    try:
        report = status_report(store, 42 * MIN)
    finally:
        release_lock(lock)
    rows = {v["exchange"]: v for v in report["venues"]}
    assert report["running"] and rows["binance"]["totals"] == "lower bound"
    assert rows["binance"]["gap_open"] and rows["bybit"]["totals"] == "complete"
    text = render_status(report, 42 * MIN)
    assert "binance: up · connected 42m · last event 2m ago" in text
    # Stopped (or killed: the kernel drops the lock): the same snapshot says so.
    report = status_report(store, 50 * MIN)
    text = render_status(report, 50 * MIN)
    assert not report["running"] and text.startswith("liqbot is not running")
    assert "binance: stopped · disconnected · last event 10m ago" in text
    assert "bybit: stopped" in text and "totals lower bound" in text
    store.close()


def test_a_venue_not_yet_connected_is_connecting_not_up(tmp_path):
    store = Store(tmp_path / "c.db")
    save_status(store, [stats(last_error="gaierror"), stats(exchange="okx", connected_since=0)],
                {"binance": "up", "okx": "up"}, MIN)
    lock = acquire_lock(store.path)
    try:
        report = status_report(store, MIN)
    finally:
        release_lock(lock)
    store.close()
    rows = {v["exchange"]: v for v in report["venues"]}
    assert rows["binance"]["state"] == "connecting" and rows["okx"]["state"] == "up"
    assert rows["binance"]["totals"] == "lower bound"
    assert "binance: connecting · disconnected" in render_status(report, MIN)


def test_duration():
    assert [duration(x) for x in (5_000, 42 * MIN, 65 * MIN, 50 * 60 * MIN)] == [
        "5s", "42m", "1h 5m", "2d 2h"]
