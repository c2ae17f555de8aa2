"""A fake Telegram Bot API on 127.0.0.1 that enforces Telegram's flood limits (PLATFORMS.md §1.3).

    async with FakeBotApi(TOKEN) as fake:            # fake.base_url: http://127.0.0.1:PORT/bot
        fake.push_command("/subscribe squeeze", chat_id=42)
        await fake.wait_sent(1)
        fake.next_reply[7] = [fail(403, "Forbidden: bot was blocked by the user")]

Real offset semantics (asking with offset N confirms and forgets every update below N),
long polls capped at 0.5 s, sliding windows that answer 429 with `retry_after` above
1 message/s per chat, 20/min per group (negative ids, @usernames) and 30/s overall (all
configurable), canned per-chat errors, strict HTML checks (bad markup -> 400 "can't parse
entities"), a request log with arrival times, a token check, and no access log.

`python -m tests.helpers.fake_telegram --overall R` serves it in a process of its own (it
prints the port; `GET /_stats` reports what it accepted), so a benchmark's client and
server do not share one CPU.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.helpers.fake_telegram_updates import BOT, UpdatesMixin, _admin, _chat
from tests.helpers.telegram_html import parse_html, utf16_len

SEND_METHODS = frozenset({"sendMessage", "editMessageText", "sendPhoto"})
FIXED = {"deleteWebhook": True, "setMyCommands": True, "deleteMyCommands": True,
         "answerCallbackQuery": True, "close": True}
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024  # sendPhoto: 0-1024 characters after entity parsing
PHOTO_MAX_BYTES = 10 * 1024 * 1024  # sendPhoto: at most 10 MB, width + height <= 10000


@dataclass(frozen=True)
class Canned:
    """One error answer: HTTP status, description and Bot API `parameters`."""

    status: int
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


def fail(status: int, description: str, **parameters: Any) -> Canned:
    return Canned(status, description, parameters)


@dataclass(frozen=True)
class FakeLimits:
    """Sliding windows; 0 switches a limit off."""

    overall_per_s: float = 30
    chat_per_s: float = 1
    group_per_min: float = 20


@dataclass
class Call:
    """One request as it arrived."""

    t: float  # time.monotonic() at arrival
    method: str
    params: dict[str, Any]
    status: int = 200
    chat: str | None = None
    retry_after: int | None = None


class FakeBotApi(UpdatesMixin):
    """An aiohttp Bot API server; tests read `sent`, `calls`, `rate_limited`, `early`."""

    def __init__(self, token: str, *, limits: FakeLimits | None = None) -> None:
        self.token = token
        self.limits = limits or FakeLimits()
        self.pending: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.confirmed = 0  # highest offset a getUpdates asked with
        self.calls: list[Call] = []
        self.sent: list[dict[str, Any]] = []  # accepted sendMessage params (+ "plain", "t")
        self.edits: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []  # setMyCommands payloads
        self.next_reply: dict[str, list[Canned]] = defaultdict(list)  # chat -> one-shot answers
        self.always: dict[str, Canned] = {}  # chat -> answer every time
        self.delays: dict[str, list[float]] = defaultdict(list)  # chat -> sleep before answering
        self.admins: dict[str, list[int]] = {}  # chat -> admin user ids
        self.rate_limited: list[Call] = []  # every 429 answered
        self.early: list[Call] = []  # requests that came back before their retry_after ended
        self.bad_token = 0
        self.down = False  # True: every method answers 502
        self._blocked_until: dict[str, float] = {}
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._overall: deque[float] = deque()
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._arrived = asyncio.Event()
        self._sent_event = asyncio.Event()
        self._changed = asyncio.Event()  # a request, a confirmed offset or a kept message
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- server ----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeBotApi:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self.handle)
        app.router.add_get("/_stats", self.stats)  # for a fake running in another process
        self._runner = web.AppRunner(app, access_log=None)  # the access log would print the token
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *_: Any) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def handle(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        if request.match_info["token"] != self.token:
            self.bad_token += 1
            return _answer(fail(401, "Unauthorized"))
        if request.content_type == "application/json":
            form: dict[str, Any] = await request.json()
        else:
            form = dict(await request.post())
        params = {k: v if k in ("text", "caption") else _field(v) for k, v in form.items()}
        if isinstance(params.get("photo"), web.FileField):  # a multipart upload: keep its bytes
            params["photo"] = params["photo"].file.read()
        method = request.match_info["method"]
        chat = str(params["chat_id"]) if "chat_id" in params else None
        call = Call(now, method, params, chat=chat)
        self.calls.append(call)
        self._changed.set()
        if self.down:
            call.status = 502
            return _answer(fail(502, "Bad Gateway"))
        canned = self._canned(call) if method in SEND_METHODS else None
        if canned is not None:
            return await self._reply_after_delay(call, _answer(canned))
        return await self._reply_after_delay(call, await self._dispatch(call))

    async def _dispatch(self, call: Call) -> web.Response:
        p, method = call.params, call.method
        if method == "getUpdates":
            return _ok(await self.poll(int(p.get("offset") or 0), float(p.get("timeout") or 0),
                                       int(p.get("limit") or 100)))
        if method == "getMe":
            return _ok(BOT)
        if method in SEND_METHODS:
            return self._accept(call)
        if method == "getChatAdministrators":
            ids = self.admins.get(call.chat or "", [])
            return _ok([_admin(uid) for uid in ids])
        if method == "setMyCommands":
            self.commands.append(p)
        if method in FIXED:
            return _ok(FIXED[method])
        call.status = 404
        return _answer(fail(404, "Not Found: method not found"))

    async def _reply_after_delay(self, call: Call, response: web.Response) -> web.Response:
        if call.chat is not None and self.delays.get(call.chat):
            # A slow server: the message counts as delivered, the answer comes too late.
            await asyncio.sleep(self.delays[call.chat].pop(0))
        return response

    async def stats(self, _: web.Request) -> web.Response:
        """What a test reads from `sent`, `rate_limited` and `early`, as JSON."""
        return web.json_response({
            "sent": [[str(m["chat_id"]), m["t"]] for m in self.sent],
            "rate_limited": len(self.rate_limited), "early": len(self.early),
            "calls": len(self.calls)})

    # -- limits and canned errors ----------------------------------------------------------

    def _canned(self, call: Call) -> Canned | None:
        chat, now = call.chat or "", call.t
        until = self._blocked_until.get(chat, 0.0)
        if now < until:
            self.early.append(call)
            return self._limit(call, until - now)
        queue = self.next_reply.get(chat)
        canned = queue.pop(0) if queue else self.always.get(chat)
        if canned is not None:
            call.status = canned.status
            if "retry_after" in canned.parameters:
                self._note_429(call, canned.parameters["retry_after"])
            return canned
        return self._check_windows(call)

    def _check_windows(self, call: Call) -> Canned | None:
        chat, now, lim = call.chat or "", call.t, self.limits
        group = chat.startswith(("-", "@"))
        rules = [(self._overall, lim.overall_per_s, 1.0),
                 (self._windows["c" + chat], lim.chat_per_s, 1.0)]
        if group:
            rules.append((self._windows["g" + chat], lim.group_per_min, 60.0))
        for window, limit, span in rules:
            while window and window[0] <= now - span:
                window.popleft()
            if limit and len(window) >= limit:
                return self._limit(call, window[0] + span - now)
        for window, _, _ in rules:
            window.append(now)
        return None

    def _limit(self, call: Call, wait_s: float) -> Canned:
        retry_after = max(1, math.ceil(wait_s))
        self._note_429(call, retry_after)
        return fail(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)

    def _note_429(self, call: Call, retry_after: int) -> None:
        call.status, call.retry_after = 429, retry_after
        self.rate_limited.append(call)
        chat = call.chat or ""
        self._blocked_until[chat] = max(self._blocked_until.get(chat, 0.0), call.t + retry_after)

    # -- messages --------------------------------------------------------------------------

    def _accept(self, call: Call) -> web.Response:
        p = call.params
        if call.method == "sendPhoto":
            problem = _photo_problem(p.get("photo"))
            if problem:
                call.status = 400
                return _answer(fail(400, f"Bad Request: {problem}"))
        text = str(p.get("caption" if call.method == "sendPhoto" else "text") or "")
        if p.get("parse_mode") == "HTML":
            try:
                plain = parse_html(text)
            except ValueError as exc:
                call.status = 400
                return _answer(fail(400, f"Bad Request: can't parse entities: {exc}"))
        else:
            plain = text
        photo = call.method == "sendPhoto"
        if not plain.strip() and not photo:  # a photo needs no caption
            call.status = 400
            return _answer(fail(400, "Bad Request: message text is empty"))
        if utf16_len(plain) > (CAPTION_LIMIT if photo else TEXT_LIMIT):
            call.status = 400
            return _answer(fail(400, "Bad Request: message caption is too long" if photo
                                else "Bad Request: message is too long"))
        record = {**p, "plain": plain, "t": call.t}
        (self.edits if call.method == "editMessageText" else self.sent).append(record)
        self._sent_event.set()
        self._changed.set()
        chat_id = p["chat_id"]
        message = {"message_id": p.get("message_id") or next(self._message_ids),
                   "date": int(time.time()), "from": BOT, "chat": _chat(chat_id)}
        if photo:  # a photo message: the sizes Telegram made of it, and the caption
            width, height = png_size(p["photo"]) or (0, 0)
            message["photo"] = [{"file_id": f"ph{message['message_id']}",
                                 "file_unique_id": f"u{message['message_id']}",
                                 "width": width, "height": height}]
            if plain:
                message["caption"] = plain
        else:
            message["text"] = plain
        return _ok(message)

    async def wait_sent(self, n: int, within_s: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least `n` messages were accepted; return them."""
        async with asyncio.timeout(within_s):
            while len(self.sent) < n:
                self._sent_event.clear()
                await self._sent_event.wait()
        return self.sent

    async def wait_until(self, condition: Callable[[], bool], within_s: float = 10.0) -> None:
        """Wait until `condition()` holds, checked again whenever the fake's state changes."""
        async with asyncio.timeout(within_s):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    def sent_to(self, chat: int | str) -> list[str]:
        return [m["plain"] for m in self.sent if str(m["chat_id"]) == str(chat)]

    # -- updates ---------------------------------------------------------------------------

    async def poll(self, offset: int, wait_s: float, limit: int = 100) -> list[dict[str, Any]]:
        if offset:
            self.confirmed = max(self.confirmed, offset)
            self._changed.set()
        self.pending = [u for u in self.pending if u["update_id"] >= offset]  # offset confirms
        if not self.pending and wait_s > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(wait_s, 0.5))
            except TimeoutError:
                pass
        return self.pending[:limit]


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk; None when `data` is not a PNG."""
    if len(data) < 24 or not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _photo_problem(photo: Any) -> str | None:
    """What Telegram would refuse in an uploaded photo (this fake takes PNG only)."""
    if not isinstance(photo, bytes):
        return "there is no photo in the request"
    if len(photo) > PHOTO_MAX_BYTES:
        return "file is too big"
    size = png_size(photo)
    if size is None or not all(size) or sum(size) > 10000 or max(size) / min(size) > 20:
        return "IMAGE_PROCESS_FAILED"
    return None


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _answer(c: Canned) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": c.status, "description": c.description}
    if c.parameters:
        body["parameters"] = c.parameters
    return web.json_response(body, status=c.status)


def _field(v: Any) -> Any:
    """Form fields: non-strings arrive JSON-encoded; "123" stays text only for `text`."""
    try:
        return json.loads(v)
    except (TypeError, ValueError):
        return v


TOKEN = "4242424242:AAFakeTokenForTests_x9Qw7ErTy"  # the shape of a real token, never valid


def telegram_settings(fake: FakeBotApi, db: str, chat_ids: tuple[str, ...] = (),
                      **overrides: Any) -> Any:
    """Settings for a run against `fake`: token, base URL, static chats."""
    from bot.config import load_settings

    values = {"db": db, "telegram_token": fake.token, "telegram_api_url": fake.base_url,
              "telegram_chat_ids": ",".join(chat_ids) or None, **overrides}
    return load_settings(None, environ={}, overrides=values)


async def _serve(args: Any) -> None:
    limits = FakeLimits(args.overall, args.chat, args.group)
    async with FakeBotApi(args.token, limits=limits) as fake:
        print(fake.port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF


if __name__ == "__main__":  # a fake in its own process: benchmarks keep its CPU apart
    import argparse

    ap = argparse.ArgumentParser(description="Serve the fake Bot API; prints the port.")
    ap.add_argument("--token", default=TOKEN)
    ap.add_argument("--overall", type=float, default=30)
    ap.add_argument("--chat", type=float, default=1)
    ap.add_argument("--group", type=float, default=20)
    asyncio.run(_serve(ap.parse_args()))
