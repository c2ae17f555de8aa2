"""The one JSON-over-HTTP client of every venue REST call: retries, clear errors, no secrets.

Pollers, the CoinGlass client and the instrument fetches all go through `JsonClient`, so
timeouts, 5xx retries and the error vocabulary (`HttpError` and its subclasses) are the same
everywhere:

    async with JsonClient("https://fapi.binance.com", name="binance") as http:
        rows = await http.get("/fapi/v1/fundingRate", {"symbol": "BTCUSDT"})

Header values (API keys), and query values whose name says key, secret, token or signature,
never reach a log line or an exception message: they are masked from every text this module
produces, including echoed response bodies.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp

from feeds.clock import Clock
from feeds.net.backoff import Backoff

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]
Params = Mapping[str, str | int | float]
_MASK = "***"
DEFAULT_TIMEOUT_S = 10.0
# Query parameters that carry credentials on some venue: their values are masked like headers.
_SECRET_PARAM = re.compile(r"key|secret|token|sign|passphrase", re.IGNORECASE)


class HttpError(Exception):
    """A request that did not produce usable JSON; the message names venue, request and cause."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(HttpError):
    """401 or 403: the key is missing, wrong, or not allowed to call this endpoint."""


class RateLimited(HttpError):
    """429: the venue wants us to slow down; `retry_after_s` is its Retry-After, if sent."""

    def __init__(self, message: str, *, retry_after_s: float | None, status: int = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s


class ServerError(HttpError):
    """5xx on every attempt."""


class RequestRejected(HttpError):
    """Any other 4xx: our request is wrong, so retrying the same one cannot help."""


class TransportError(HttpError):
    """Timeout or connection failure on every attempt."""


class BadResponse(HttpError):
    """2xx whose body is not JSON."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    data: Any
    headers: Mapping[str, str]


def describe(exc: BaseException) -> str:
    """`TransportError: binance GET /x timed out`, kept to one short line."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())[:300]


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value.strip())
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = datetime.now(UTC).timestamp() if now_s is None else now_s
    return max(0.0, when.timestamp() - now)


def decode_json(text: str) -> Any:
    """Decode a body with JSON numbers as Decimal: 14673519.81739075 stays exact."""
    return json.loads(text, parse_float=Decimal)


class RateLimiter:
    """Space requests evenly: at most `per_minute`, never two closer than 60/per_minute s."""

    def __init__(self, per_minute: int, clock: Clock, sleep: Sleep = asyncio.sleep) -> None:
        if per_minute <= 0:
            raise ValueError(f"per_minute must be > 0, got {per_minute}")
        self.per_minute, self.clock, self.sleep = per_minute, clock, sleep
        self._next = float("-inf")

    async def acquire(self) -> float:
        """Wait for the next free slot; return the seconds waited."""
        now = self.clock.monotonic()
        slot = max(now, self._next)
        self._next = slot + 60.0 / self.per_minute  # claimed before sleeping: callers queue up
        if slot > now:
            await self.sleep(slot - now)
        return slot - now


class JsonClient:
    """GET/POST JSON against one base URL, retrying 5xx, timeouts and dropped connections."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = 2,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if retries < 0 or timeout_s <= 0:
            raise ValueError(f"{name}: need retries >= 0 and timeout_s > 0")
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff = backoff or Backoff(base_s=0.5, cap_s=8.0, rng=random.Random())
        self._headers = {"Accept": "application/json", **dict(headers or {})}
        # Every header value is treated as a secret: cheap, and nobody has to remember to list it.
        self._secrets = [v for v in (headers or {}).values() if len(v) >= 4]
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> JsonClient:
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def closed(self) -> bool:
        return self._session is None

    async def get(self, path: str, params: Params | None = None) -> Any:
        return (await self.request("GET", path, params=params)).data

    async def post(self, path: str, body: Any) -> Any:
        return (await self.request("POST", path, json_body=body)).data

    async def request(
        self, method: str, path: str, *, params: Params | None = None, json_body: Any = None
    ) -> Response:
        """Send one request; retry transient failures; raise an HttpError subclass otherwise."""
        hidden = _secret_values(params)
        what = self.mask(self._what(method, path, params), hidden)
        self.backoff.reset()
        for attempt in range(self.retries + 1):
            try:
                return await self._once(method, path, params, json_body, what, hidden)
            except (ServerError, TransportError) as exc:
                if attempt == self.retries:
                    raise
                delay = self.backoff.next_delay()
                # DEBUG: the caller reports the request's outcome once (a poller's failure line).
                logger.debug("%s (retry %d/%d in %.1fs)", exc, attempt + 1, self.retries, delay)
                await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self, method: str, path: str, params: Params | None, json_body: Any, what: str,
        hidden: tuple[str, ...],
    ) -> Response:
        session = self._session_now()
        started = time.monotonic()
        try:
            async with session.request(
                method, self.base_url + path, params=_stringify(params), json=json_body,
                headers=self._headers,
            ) as resp:
                body = await resp.text(errors="replace")
                headers = {k.lower(): v for k, v in resp.headers.items()}
                status = resp.status
        except TimeoutError:
            raise TransportError(f"{what} timed out after {self.timeout_s:g}s") from None
        except aiohttp.ClientError as exc:
            raise TransportError(self.mask(f"{what} failed: {describe(exc)}", hidden)) from None
        logger.debug("%s -> %d in %.0f ms", what, status, (time.monotonic() - started) * 1000)
        return Response(status, self._decode(status, body, headers, what, hidden), headers)

    def _decode(self, status: int, body: str, headers: Mapping[str, str], what: str,
                hidden: tuple[str, ...]) -> Any:
        if status >= 400:
            raise self._error(status, self.mask(body, hidden), headers, what)
        try:
            return decode_json(body)
        except (ValueError, RecursionError):
            raise BadResponse(
                f"{what}: HTTP {status} but the body is not JSON: "
                f"{_excerpt(self.mask(body, hidden))}",
                status=status,
            ) from None

    def _error(self, status: int, body: str, headers: Mapping[str, str], what: str) -> HttpError:
        excerpt = _excerpt(body)  # `body` is masked: a cut first could leave half a key
        if status in (401, 403):
            return AuthError(f"{what}: HTTP {status} (credentials refused): {excerpt}",
                             status=status)
        if status == 429:
            wait = parse_retry_after(headers.get("retry-after"))
            hint = f"Retry-After {wait:g}s" if wait is not None else "no Retry-After"
            return RateLimited(f"{what}: HTTP 429 rate limited ({hint})", retry_after_s=wait)
        if status >= 500:
            return ServerError(f"{what}: HTTP {status}: {excerpt}", status=status)
        return RequestRejected(f"{what}: HTTP {status}: {excerpt}", status=status)

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created on first use: a ClientSession must be born inside the running loop.
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s), trust_env=False
            )
        return self._session

    def _what(self, method: str, path: str, params: Params | None) -> str:
        query = f"?{urlencode(_stringify(params) or {})}" if params else ""
        return f"{self.name} {method} {path}{query}"

    def mask(self, text: str, extra: tuple[str, ...] = ()) -> str:
        """Replace every header value (secret), and every value in `extra`, with ***."""
        for secret in (*self._secrets, *extra):
            text = text.replace(secret, _MASK)
        return text


def _secret_values(params: Params | None) -> tuple[str, ...]:
    if not params:
        return ()
    values = (str(v) for k, v in params.items() if _SECRET_PARAM.search(k))
    # URL-encoded too: that is how the value appears in a query string.
    return tuple(x for v in values if len(v) >= 4 for x in {v, urlencode({"": v})[1:]})


def _stringify(params: Params | None) -> dict[str, str] | None:
    """aiohttp refuses bools and floats in a query; venues want plain strings anyway."""
    if params is None:
        return None
    return {k: str(v) for k, v in params.items()}


def _excerpt(body: str, limit: int = 160) -> str:
    flat = " ".join(body.split())
    return repr(flat[:limit]) + ("..." if len(flat) > limit else "")
