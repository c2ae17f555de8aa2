"""PTB's transport on aiohttp, which liqbot already runs for its websockets.

PTB's default transport (httpx over httpcore) costs about 3-4 ms of CPU per sendMessage
here, and more as requests run in parallel; this one about 1 ms, which is what lets a
fan-out keep pace with a high message rate (bench/telegram_fanout.py). It is plain
HTTP/1.1 with keep-alive, honours HTTP(S)_PROXY / NO_PROXY like httpx, and reports
failures the way HTTPXRequest does: TimedOut or NetworkError, the aiohttp error as cause.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

logger = logging.getLogger(__name__)

# Failures after the request was written: the Bot API may have acted on it.
AFTER_WRITE: tuple[type[BaseException], ...] = (
    aiohttp.SocketTimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
    aiohttp.ClientOSError, TimeoutError,
)
# Failures before anything left: nothing can have been delivered.
NOT_SENT: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.InvalidURL,
)


def written(cause: BaseException | None) -> bool:
    """Might the request behind this failure have reached the server?"""
    return cause is not None and not isinstance(cause, NOT_SENT) and isinstance(cause, AFTER_WRITE)


class AiohttpRequest(BaseRequest):
    """A BaseRequest with one aiohttp session; `pool` connections at most."""

    def __init__(self, pool: int = 16, timeout_s: float = 10.0) -> None:
        self.pool, self.timeout_s = pool, timeout_s
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self.timeout_s

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool), trust_env=True)

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        read = _seconds(read_timeout, self.timeout_s)
        connect = _seconds(connect_timeout, self.timeout_s) + _seconds(pool_timeout, 0.0)
        # aiohttp has no write timeout: a total bound keeps a stalled upload from hanging.
        total = connect + read + _seconds(write_timeout, self.timeout_s)
        timeout = aiohttp.ClientTimeout(total=total, connect=connect, sock_read=read)
        try:
            async with self._session.request(method, url, data=_body(request_data),
                                             timeout=timeout) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TimedOut(f"Timed out ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {_safe(exc)}") from exc


def _seconds(value: Any, default: float) -> float:
    if isinstance(value, DefaultValue) or value is None:
        return default
    return float(value)


def _body(request_data: RequestData | None) -> Any:
    if request_data is None:
        return None
    if not request_data.contains_files:
        return request_data.json_parameters  # form-encoded, like HTTPXRequest
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form


def _safe(exc: aiohttp.ClientError) -> str:
    # Connector errors name host and port only; anything carrying a URL would carry the token.
    if isinstance(exc, aiohttp.ClientConnectorError):
        return str(exc)
    return "" if "bot" in str(exc) else str(exc)
