"""`liqbot_feed_item_faults_total`: items skipped from good frames, per venue, from start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.ops.metrics import Metrics
from feeds.venues.decode import decoder_for
from feeds.venues.parsing import ITEM_FAULTS
from tests.bot.ops.exposition import parse_metrics
from tests.bot.ops.support import StubFeed

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads"


@pytest.fixture(autouse=True)
def no_faults_yet() -> Iterator[None]:
    saved = ITEM_FAULTS.copy()
    ITEM_FAULTS.clear()
    yield
    ITEM_FAULTS.clear()
    ITEM_FAULTS.update(saved)


def test_every_bound_venue_has_the_series_from_start_and_it_counts() -> None:
    metrics = Metrics()
    metrics.bind_feeds([StubFeed("binance", True), StubFeed("deribit", True)])
    before = parse_metrics(metrics.render())["liqbot_feed_item_faults_total"]
    assert before == {(("venue", "binance"),): 0, (("venue", "deribit"),): 0}
    # A recorded-shape batch: an option liquidation beside a perpetual one.
    frame = (PAYLOADS / "deribit" / "issue12_option_and_perpetual.json").read_text()
    assert len(decoder_for("deribit")(frame)) == 1
    after = parse_metrics(metrics.render())["liqbot_feed_item_faults_total"]
    assert after == {(("venue", "binance"),): 0, (("venue", "deribit"),): 1}
