"""One small REST call for venue metadata: GET a JSON document, with a timeout and clear errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

DEFAULT_TIMEOUT_S = 10.0


class RestError(RuntimeError):
    """A venue REST call failed; the message names the URL and what went wrong."""


async def get_json(
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    session: aiohttp.ClientSession | None = None,
) -> Any:
    """GET `url` and decode its JSON body; every failure is a RestError.

    Pass a `session` to reuse one connection pool across calls (paging).
    """
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await _get(own, url, params, timeout_s)
    return await _get(session, url, params, timeout_s)


async def _get(
    session: aiohttp.ClientSession, url: str, params: Mapping[str, str] | None, timeout_s: float
) -> Any:
    # The query string stays out of messages: these are public endpoints today, but a logged
    # URL is the classic way an API key ends up in a log file.
    where = f"GET {url}"
    try:
        async with session.get(
            url, params=params, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as resp:
            body = await resp.text()
            if resp.status >= 400:
                raise RestError(f"{where}: HTTP {resp.status} {resp.reason}: {_short(body)}")
    except TimeoutError:
        raise RestError(f"{where}: no answer within {timeout_s:g}s") from None
    except aiohttp.ClientError as exc:
        raise RestError(f"{where}: {type(exc).__name__}: {_short(str(exc))}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise RestError(f"{where}: not JSON: {_short(body)}") from None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")
