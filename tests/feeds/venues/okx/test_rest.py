"""OKX funding / OI parsers against the shared fixtures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from feeds.model import Funding, OpenInterest, ParseError
from feeds.net.http import decode_json
from feeds.venues import okx
from tests.helpers.fake_http import fixture_text

pytestmark = pytest.mark.playback
D = Decimal


def load(name: str) -> Any:
    """A fixture decoded the way JsonClient decodes bodies (JSON numbers as Decimal)."""
    return decode_json(fixture_text(name))


def test_okx_funding_rate_interval_from_next_minus_current() -> None:
    [f] = okx.parse_funding_rate(load("okx_funding_rate.json"))
    assert f == Funding("okx", "BTC-USDT-SWAP", 1743588686291, D("0.0000182221218054"), 8.0)


def test_okx_funding_rate_4h_and_bad_interval() -> None:
    raw = load("okx_funding_rate.json")
    row = raw["data"][0]
    four = {**raw, "data": [{**row, "nextFundingTime": str(1743609600000 + 4 * 3_600_000)}]}
    assert okx.parse_funding_rate(four)[0].rate_8h == pytest.approx(2 * 0.0000182221218054)
    backwards = {**raw, "data": [{**row, "nextFundingTime": row["fundingTime"]}]}
    with pytest.raises(ParseError, match="interval"):
        okx.parse_funding_rate(backwards)
    with pytest.raises(ParseError, match="code"):
        okx.parse_funding_rate({**raw, "code": "51001"})


def test_okx_open_interest_matches_readme() -> None:
    assert okx.parse_open_interest(load("okx_open_interest.json")) == [
        OpenInterest("okx", "BTC-USDT-SWAP", 1597026383085, D("555.55"), D("50000"))]
