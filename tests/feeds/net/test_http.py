"""The one HTTP client: credentials in a query or a header never reach a message or a log."""

from __future__ import annotations

import logging

import pytest

from feeds.net.http import BadResponse, JsonClient, RateLimited, TransportError
from tests.helpers.fake_rest import FakeRest

KEYED = r"/down\?apiKey=\*\*\*&symbol=BTC: HTTP 429"
SIGNED = r"/ok\?signature=\*\*\*: HTTP 200 but the body is not JSON"


async def _no_sleep(_: float) -> None:
    pass


async def test_errors_name_the_request_and_hide_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="feeds")
    async with FakeRest({"/ok": "not json {"}) as rest:
        rest.fail("/down", 429, "too many for apiKey=s3cret-key")
        async with JsonClient(rest.url, name="v", retries=0, headers={"X-KEY": "h3ader"}) as c:
            with pytest.raises(RateLimited, match=KEYED) as e:
                await c.get("/down", {"apiKey": "s3cret-key", "symbol": "BTC"})
            assert "s3cret" not in str(e.value)
            with pytest.raises(BadResponse, match=SIGNED):
                await c.get("/ok", {"signature": "s3cret-sig"})
        rest.delay_s = 0.2
        async with JsonClient(rest.url, name="v", retries=0, timeout_s=0.05) as c:
            with pytest.raises(TransportError, match="timed out after 0.05s"):
                await c.get("/ok")
    async with JsonClient(rest.url, name="v", retries=0, sleep=_no_sleep) as c:
        with pytest.raises(TransportError, match="v GET /gone.* failed: ClientConnectorError"):
            await c.get("/gone", {"token": "s3cret-tok"})
    assert "s3cret" not in caplog.text and "h3ader" not in caplog.text
