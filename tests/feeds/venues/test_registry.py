"""The venue registry: every module under its own id, the sampled set, the funding venues."""

from __future__ import annotations

import pytest

from feeds.venues import base, registry
from feeds.venues.base import FeedOptions


def test_every_venue_is_listed_under_its_own_id() -> None:
    assert all(name == v.EXCHANGE for name, v in registry.VENUES.items())
    assert all(name == v.EXCHANGE for name, v in registry.FUNDING.items())
    assert set(registry.DEFAULT_LIVE) <= set(registry.VENUES)


def test_sampled_venues_are_binance_both_markets_and_okx() -> None:
    assert registry.SAMPLED_VENUES == {"binance", "binance-coinm", "okx"}


def test_funding_venues_include_hyperliquid_which_has_no_stream() -> None:
    assert registry.FUNDING_VENUES == ("binance", "bybit", "okx", "deribit", "hyperliquid")
    assert "hyperliquid" not in registry.VENUES


def test_lookups_list_the_choices() -> None:
    assert registry.venue_module("OKX") is registry.VENUES["okx"]
    with pytest.raises(ValueError, match="choose one of binance, binance-coinm"):
        registry.venue_module("kraken")
    with pytest.raises(ValueError, match="no funding poller for 'kraken'"):
        registry.funding_venue("kraken")


@pytest.mark.parametrize("name", sorted(registry.VENUES))
def test_a_venue_without_rest_refuses_a_rest_url(name: str) -> None:
    venue = registry.VENUES[name]

    async def sink(_: object) -> None:
        pass

    if venue.DEFAULT_REST_URL is None:
        with pytest.raises(ValueError, match=f"{name} takes no REST URL"):
            venue.make_feeds(sink, FeedOptions(rest_url="http://127.0.0.1:1", api_key="k" * 8))
    else:
        assert venue.make_feeds(sink, FeedOptions(rest_url="http://127.0.0.1:1"))


def test_refuse_rest_url_lets_none_through() -> None:
    base.refuse_rest_url("x", None)
