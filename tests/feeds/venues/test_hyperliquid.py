"""Hyperliquid funding / OI parser against the shared fixture."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from feeds.model import Funding, OpenInterest, ParseError
from feeds.net.http import decode_json
from feeds.venues import hyperliquid
from tests.helpers.fake_http import fixture_text

pytestmark = pytest.mark.playback
D = Decimal


def load(name: str) -> Any:
    """A fixture decoded the way JsonClient decodes bodies (JSON numbers as Decimal)."""
    return decode_json(fixture_text(name))


def test_hyperliquid_matches_readme() -> None:
    funding, oi = hyperliquid.parse_meta_and_ctxs(
        load("hyperliquid_meta_and_asset_ctxs.json"), 1700000000000)
    assert funding == [Funding("hyperliquid", "SOL", 1700000000000, D("0.0000198"), 1.0)]
    assert funding[0].rate_8h == pytest.approx(0.0001584)
    assert oi == [OpenInterest("hyperliquid", "SOL", 1700000000000, D("10764.48"),
                               D("1162994.4192"))]


def test_hyperliquid_filters_coins_and_refuses_misaligned_lists() -> None:
    raw = load("hyperliquid_meta_and_asset_ctxs.json")
    assert hyperliquid.parse_meta_and_ctxs(raw, 1700000000000, ["BTC"]) == ([], [])
    with pytest.raises(ParseError, match="1 coins but 2 contexts"):
        hyperliquid.parse_meta_and_ctxs([raw[0], raw[1] * 2], 1700000000000)
