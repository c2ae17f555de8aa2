"""A fake venue REST server on 127.0.0.1 for instruments endpoints, with switchable failures.

    routes = {"/dapi/v1/exchangeInfo": coinm_exchange_info({"BTCUSD_PERP": 100})}
    async with FakeRest(routes) as rest:
        feeds = make_feeds(sink, FeedOptions(rest_url=rest.url, ...))
        rest.fail("/dapi/v1/exchangeInfo", 503)     # later calls answer HTTP 503

A route is a JSON body, or a callable taking the query dict and returning one (so a test can
change answers between calls). Every request is recorded as (path, query).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

Route = Any | Callable[[dict[str, str]], Any]


class FakeRest:
    """An aiohttp app answering GET routes with canned JSON."""

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.failures: dict[str, tuple[int, str]] = {}
        self.delay_s = 0.0  # answer this late (timeouts)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> FakeRest:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0,
                                     access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(self, *_: Any) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, path: str, status: int = 503, body: str = "service unavailable") -> None:
        """Answer `path` with an HTTP error from now on."""
        self.failures[path] = (status, body)

    def heal(self, path: str) -> None:
        self.failures.pop(path, None)

    def calls(self, path: str) -> list[dict[str, str]]:
        return [query for p, query in self.requests if p == path]

    async def _handle(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.requests.append((request.path, query))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.path in self.failures:
            status, body = self.failures[request.path]
            return web.Response(status=status, text=body)
        if request.path not in self.routes:
            return web.Response(status=404, text=f"no route {request.path}")
        route = self.routes[request.path]
        body = route(query) if callable(route) else route
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(text=text, content_type="application/json")


# -- venue payloads ----------------------------------------------------------------------------


def coinm_exchange_info(sizes: Mapping[str, Any]) -> dict[str, Any]:
    """A `/dapi/v1/exchangeInfo` body: symbol -> contractSize (pair = the part before `_`)."""
    return {"timezone": "UTC", "symbols": [
        {"symbol": s, "pair": s.split("_")[0], "contractType": "PERPETUAL",
         "contractSize": size, "contractStatus": "TRADING"}
        for s, size in sizes.items()
    ]}


def okx_instruments(by_type: Mapping[str, Mapping[str, tuple[str, str]]]) -> Route:
    """`/api/v5/public/instruments` by instType: {type: {instId: (ctVal, ctValCcy)}}."""

    def route(query: dict[str, str]) -> Any:
        rows = [
            {"instType": query.get("instType"), "instId": inst, "ctVal": ct_val,
             "ctValCcy": ccy, "ctType": "inverse" if ccy == "USD" else "linear", "state": "live"}
            for inst, (ct_val, ccy) in by_type.get(query.get("instType", ""), {}).items()
        ]
        return {"code": "0", "msg": "", "data": rows}

    return route


class BybitInstruments:
    """`/v5/market/instruments-info`, paged by `cursor`; `symbols` may change between calls."""

    def __init__(self, symbols: Mapping[str, Sequence[str]], page_size: int = 3) -> None:
        self.symbols = {k: list(v) for k, v in symbols.items()}  # category -> symbols
        self.page_size = page_size

    def __call__(self, query: dict[str, str]) -> Any:
        category = query.get("category", "")
        names = self.symbols.get(category, [])
        start = int(query.get("cursor") or 0)
        page = names[start:start + self.page_size]
        more = start + self.page_size < len(names)
        contract = "InversePerpetual" if category == "inverse" else "LinearPerpetual"
        return {"retCode": 0, "retMsg": "OK", "result": {
            "category": category,
            "nextPageCursor": str(start + self.page_size) if more else "",
            "list": [{"symbol": s, "contractType": contract, "status": "Trading"} for s in page],
        }}
