"""A fake Discord on 127.0.0.1: the REST routes discord.py needs, a gateway, and webhooks.

    async with FakeDiscord() as fake:
        fake.point_discord_py(monkeypatch)       # Route.BASE and the gateway URL -> the fake
        url = fake.add_webhook()                 # http://127.0.0.1:PORT/api/webhooks/ID/TOKEN
        fake.fail_next(("webhook", hook_id), 404, code=10015, message="Unknown Webhook")
        await fake.push(slash("liqs", symbol="BTC"))   # an INTERACTION_CREATE on the gateway

REST: login (`/users/@me`, `/oauth2/applications/@me`), command sync (PUT
`/applications/{id}/commands`), interaction callbacks and follow-ups, channel messages, and
webhook execution (`?wait=true` returns the message). Limits are enforced: sliding windows
per webhook, per channel and overall answer 429 with `retry_after`, `Via` and `X-RateLimit-*`
headers; message payloads over Discord's size limits get 400 (50035). Every 401/403/404/429
answered is counted in `invalid`; every request is logged with its arrival time in `calls`.
JSON answers carry `Content-Type: application/json` exactly (discord.py rejects a charset).
The gateway (HELLO, READY, INTERACTION_CREATE) is tests/helpers/fake_discord_gateway.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import Counter, defaultdict, deque
from typing import Any

import discord
import yarl
from aiohttp import BodyPartReader, web
from discord.gateway import DiscordWebSocket

from tests.helpers.discord_payloads import attachment_problems, payload_problems
from tests.helpers.fake_discord_data import (
    APP_ID,
    BOT_USER,
    CHANNEL_ID,
    GUILD_ID,
    MANAGE_GUILD,
    TOKEN,
    VIEW_AND_SEND,
    Call,
    Canned,
    FakeLimits,
    Key,
    Response,
    djson,
    shown_text,
)
from tests.helpers.fake_discord_gateway import FakeGateway

# The fake's vocabulary lives in fake_discord_data.py; tests import it from here too.
__all__ = ["APP_ID", "BOT_USER", "CHANNEL_ID", "GUILD_ID", "MANAGE_GUILD", "TOKEN",
           "VIEW_AND_SEND", "Call", "Canned", "FakeDiscord", "FakeLimits", "Key", "Response",
           "djson", "shown_text"]


class FakeDiscord:
    """The fake server; tests read `messages`, `responses`, `followups`, `calls`, `invalid`."""

    def __init__(self, *, token: str = TOKEN, limits: FakeLimits | None = None) -> None:
        self.token = token
        self.limits = limits or FakeLimits()
        self.webhooks: dict[str, str] = {}  # id -> token
        self.gone: set[str] = set()  # webhook ids deleted in Discord: 404 / 10015
        self.messages: dict[Key, list[dict[str, Any]]] = defaultdict(list)
        self.responses: list[Response] = []
        self.followups: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []
        self.syncs = 0
        self.calls: list[Call] = []
        self.invalid: Counter[int] = Counter()
        self.rejected: list[dict[str, Any]] = []  # payloads refused for size
        self.canned: dict[Key, deque[Canned]] = defaultdict(deque)
        self.stall_s: dict[Key, float] = {}  # answer this destination only after a delay
        self._gateway = FakeGateway(token=token, user=BOT_USER, app_id=APP_ID)
        self.identified = self._gateway.identified
        self.arrived = asyncio.Event()
        self._windows: dict[Key, deque[float]] = defaultdict(deque)
        self._ids = itertools.count(900_000_000_000_000_001)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        r = app.router
        r.add_get("/api/v10/users/@me", self.me)
        r.add_get("/api/v10/oauth2/applications/@me", self.application)
        r.add_put("/api/v10/applications/{app}/commands", self.sync)
        r.add_post("/api/v10/interactions/{iid}/{itoken}/callback", self.callback)
        r.add_post("/api/v10/channels/{cid}/messages", self.channel_message)
        r.add_post("/api/v10/webhooks/{wid}/{wtoken}", self.webhook)
        r.add_post("/api/webhooks/{wid}/{wtoken}", self.webhook)
        r.add_get("/gateway", self._gateway.handle)
        self._runner = web.AppRunner(app, access_log=None)  # the access log would print tokens
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        self._gateway.url = self.gateway_url
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def point_discord_py(self, monkeypatch: Any) -> None:
        """Every discord.py REST call and the gateway connect go to this fake."""
        monkeypatch.setattr(discord.http.Route, "BASE", self.api_base)
        monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(self.gateway_url))

    def add_webhook(self, hook_id: str | None = None, token: str | None = None) -> str:
        hook_id = hook_id or str(next(self._ids))
        token = token or f"hook-token-{hook_id}-" + "x" * 48
        self.webhooks[hook_id] = token
        return f"http://127.0.0.1:{self.port}/api/webhooks/{hook_id}/{token}"

    def fail_next(self, key: Key, status: int, *, times: int = 1, code: int = 0,
                  message: str = "error", headers: dict[str, str] | None = None,
                  **body: Any) -> None:
        """Answer the next `times` requests to `key` with this error instead."""
        for _ in range(times):
            self.canned[key].append(Canned(status, {"message": message, "code": code, **body},
                                           dict(headers or {})))

    def rate_limit_next(self, key: Key, retry_after: float, *, times: int = 1,
                        is_global: bool = False, via: bool = True) -> None:
        headers = {"Retry-After": str(math.ceil(retry_after)), "X-RateLimit-Limit": "5",
                   "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                   "X-RateLimit-Scope": "global" if is_global else "user"}
        if via:
            headers["Via"] = "1.1 google"
        self.fail_next(key, 429, times=times, message="You are being rate limited.",
                       headers=headers, retry_after=retry_after, **{"global": is_global})

    def sent_to(self, key: Key) -> list[dict[str, Any]]:
        return self.messages.get(key, [])

    def all_payloads(self) -> list[dict[str, Any]]:
        """Every message payload captured: channels, webhooks, callbacks, follow-ups."""
        out = [p for msgs in self.messages.values() for p in msgs]
        out += [r.data for r in self.responses if r.type in (4, 7)]
        return out + self.followups

    async def wait_for(self, predicate: Any, within_s: float = 5.0) -> None:
        async with asyncio.timeout(within_s):
            while not predicate():
                self.arrived.clear()
                await self.arrived.wait()

    # -- limits ----------------------------------------------------------------------------

    def _limited(self, key: Key, limit: tuple[int, float]) -> tuple[float, dict[str, str]]:
        """(seconds to wait or 0, X-RateLimit headers) for one more request in `key`'s window."""
        count, span = limit
        if not count:
            return 0.0, {}
        now = time.monotonic()
        window = self._windows[key]
        while window and now - window[0] >= span:
            window.popleft()
        if len(window) >= count:
            wait = window[0] + span - now
            return wait, self._headers(count, 0, wait, key)
        window.append(now)
        reset = window[0] + span - now
        return 0.0, self._headers(count, count - len(window), reset, key)

    @staticmethod
    def _headers(count: int, remaining: int, reset_after: float, key: Key) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(count), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset-After": f"{max(reset_after, 0.001):.3f}",
                "X-RateLimit-Reset": f"{time.time() + max(reset_after, 0.001):.3f}",
                "X-RateLimit-Bucket": f"{key[0]}-{key[1]}"}

    def _too_many(self, wait: float, headers: dict[str, str], is_global: bool) -> web.Response:
        return djson({"message": "You are being rate limited.", "retry_after": round(wait, 3),
                      "global": is_global}, 429, Via="1.1 google",
                     **{"Retry-After": str(math.ceil(wait)),
                        "X-RateLimit-Scope": "global" if is_global else "user", **headers})

    async def _gate(self, call: Call, limit: tuple[int, float]) -> web.Response | None:
        """Canned answers first, then the overall and per-key windows; None: go ahead."""
        key = call.key
        if key is not None and self.canned.get(key):
            canned = self.canned[key].popleft()
            return djson(canned.body, canned.status, **canned.headers)
        wait, headers = self._limited(("overall", "*"), self.limits.overall)
        if wait:
            return self._too_many(wait, headers, True)
        if key is not None:
            wait, headers = self._limited(key, limit)
            if wait:
                return self._too_many(wait, headers, False)
            call.headers = headers
        return None

    async def _stall(self, key: Key) -> None:
        """The message is saved; the answer is late (a client timeout means maybe delivered)."""
        if stall := self.stall_s.get(key):
            await asyncio.sleep(stall)

    async def _log(self, request: web.Request, key: Key | None) -> Call:
        files: dict[str, bytes] = {}
        if request.content_type.startswith("multipart/"):
            # A message with files: the JSON in `payload_json`, each file a part of its own.
            body: Any = None
            async for part in await request.multipart():
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                elif part.filename:
                    files[part.filename] = bytes(await part.read())
        else:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
        call = Call(time.monotonic(), request.method, request.path, key, body,
                    dict(request.query), files=files)
        self.calls.append(call)
        return call

    @staticmethod
    def _kept(call: Call, body: Any) -> Any:
        """What a test reads of an accepted message: its JSON, and its files under `_files`."""
        return {**body, "_files": call.files} if call.files else body

    def _finish(self, call: Call, response: web.Response) -> web.Response:
        call.status = response.status
        if response.status in (401, 403, 404, 429):
            self.invalid[response.status] += 1
        self.arrived.set()
        return response

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    # -- REST routes -----------------------------------------------------------------------

    async def me(self, request: web.Request) -> web.Response:
        call = await self._log(request, None)
        if not self._authorized(request):
            return self._finish(call, djson({"message": "401: Unauthorized", "code": 0}, 401))
        return self._finish(call, djson(BOT_USER))

    async def application(self, request: web.Request) -> web.Response:
        call = await self._log(request, None)
        if not self._authorized(request):
            return self._finish(call, djson({"message": "401: Unauthorized", "code": 0}, 401))
        return self._finish(call, djson({
            "id": APP_ID, "name": "liqbot", "description": "", "icon": None, "bot_public": True,
            "bot_require_code_grant": False, "owner": BOT_USER, "verify_key": "0" * 64,
            "flags": 0, "team": None, "summary": "", "rpc_origins": []}))

    async def sync(self, request: web.Request) -> web.Response:
        call = await self._log(request, ("commands", request.match_info["app"]))
        if not self._authorized(request):
            return self._finish(call, djson({"message": "401: Unauthorized", "code": 0}, 401))
        self.syncs += 1
        self.commands = [{**c, "id": str(next(self._ids)), "application_id": APP_ID,
                          "version": "1"} for c in call.body]
        return self._finish(call, djson(self.commands))

    async def callback(self, request: web.Request) -> web.Response:
        call = await self._log(request, ("interaction", request.match_info["iid"]))
        body = call.body or {}
        if (refused := self._check_payload(body.get("data") or {}, allow_empty=True,
                                           files=call.files)):
            return self._finish(call, refused)
        iid = request.match_info["iid"]
        self.responses.append(Response(iid, int(body.get("type", 0)),
                                       self._kept(call, body.get("data") or {})))
        return self._finish(call, djson({"interaction": {
            "id": iid, "type": 2, "response_message_id": str(next(self._ids)),
            "response_message_loading": body.get("type") == 5,
            "response_message_ephemeral": bool((body.get("data") or {}).get("flags", 0) & 64)}}))

    async def channel_message(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        call = await self._log(request, ("channel", cid))
        if not self._authorized(request):
            return self._finish(call, djson({"message": "401: Unauthorized", "code": 0}, 401))
        if (early := await self._gate(call, self.limits.channel)) is not None:
            return self._finish(call, early)
        if (refused := self._check_payload(call.body, files=call.files)) is not None:
            return self._finish(call, refused)
        self.messages[("channel", cid)].append(self._kept(call, call.body))
        await self._stall(("channel", cid))
        return self._finish(call, djson(self._message(call.body, cid),
                                        **call.headers))

    async def webhook(self, request: web.Request) -> web.Response:
        wid, wtoken = request.match_info["wid"], request.match_info["wtoken"]
        if wid == APP_ID:  # an interaction follow-up, authorised by the interaction token
            call = await self._log(request, ("followup", wtoken))
            if (refused := self._check_payload(call.body, files=call.files)) is not None:
                return self._finish(call, refused)
            self.followups.append(self._kept(call, call.body))
            return self._finish(call, djson(self._message(call.body, CHANNEL_ID, wid)))
        call = await self._log(request, ("webhook", wid))
        if wid in self.gone or wid not in self.webhooks:
            return self._finish(call, djson({"message": "Unknown Webhook", "code": 10015}, 404))
        if self.webhooks[wid] != wtoken:
            return self._finish(call, djson({"message": "Invalid Webhook Token", "code": 50027},
                                            401))
        if (early := await self._gate(call, self.limits.webhook)) is not None:
            return self._finish(call, early)
        if (refused := self._check_payload(call.body, files=call.files)) is not None:
            return self._finish(call, refused)
        self.messages[("webhook", wid)].append(self._kept(call, call.body))
        await self._stall(("webhook", wid))
        if request.query.get("wait") not in ("1", "true"):
            return self._finish(call, web.Response(status=204))
        return self._finish(call, djson(self._message(call.body, CHANNEL_ID, wid),
                                        **call.headers))

    def _message(self, body: dict[str, Any], channel_id: str,
                 webhook_id: str | None = None) -> dict[str, Any]:
        msg = {"id": str(next(self._ids)), "channel_id": channel_id, "type": 0,
               "content": body.get("content", ""), "embeds": body.get("embeds", []),
               "author": BOT_USER, "timestamp": "2026-01-13T22:00:00+00:00",
               "edited_timestamp": None, "tts": False, "mention_everyone": False,
               "mentions": [], "mention_roles": [], "attachments": [], "pinned": False,
               "flags": body.get("flags", 0), "components": body.get("components", [])}
        if webhook_id:
            msg["webhook_id"] = webhook_id
        return msg

    def _check_payload(self, body: Any, *, allow_empty: bool = False,
                       files: dict[str, bytes] | None = None) -> web.Response | None:
        problems = payload_problems(body, allow_empty=allow_empty or bool(files))
        problems += attachment_problems(body, files or {})
        if not problems:
            return None
        self.rejected.append(body)
        return djson({"message": "Invalid Form Body", "code": 50035,
                      "errors": {"_errors": [{"code": "BASE_TYPE_INVALID", "message": p}
                                             for p in problems]}}, 400)

    # -- interactions over the gateway -----------------------------------------------------

    async def push(self, interaction: dict[str, Any]) -> None:
        """Deliver one INTERACTION_CREATE to the connected bot."""
        await self._gateway.push(interaction)

    async def answer_to(self, interaction: dict[str, Any], within_s: float = 5.0) -> Response:
        """Push an interaction and wait for its callback."""
        await self.push(interaction)
        iid = interaction["id"]
        await self.wait_for(lambda: any(r.interaction_id == iid for r in self.responses),
                            within_s)
        return next(r for r in self.responses if r.interaction_id == iid)
