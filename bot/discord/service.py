"""Discord: discord.py inside liqbot's own loop, as two chat services behind the runner.

- `DiscordWebhookService` serves `discord-webhook:<webhook id>`: the configured webhook URLs,
  no token, no gateway. The id names the destination in the store and the logs; the URL (the
  secret) stays in memory.
- `DiscordService` serves `discord:<channel id>`: the bot. A replay only logs in over REST and
  posts; a live run also connects to the gateway and answers the slash commands of
  bot/discord/commands.py, which are synced only when their definition changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.app_commands import Choice

from bot.charts import PNG_NAME, ChartMaker, ChartSpec, chart_maker
from bot.chat.base import ChatService
from bot.chat.lifecycle import ConnectedService, keep_trying
from bot.chat.quiet import QuietChats
from bot.commands import COMMANDS, Ctx, Reply, dispatch
from bot.commands import press as press_button
from bot.config import ConfigError, Settings
from bot.discord.answers import CHANNEL_PLATFORM, WEBHOOK_PLATFORM
from bot.discord.channel import ChannelNotifier
from bot.discord.commands import (
    MANAGER_ONLY,
    BadOption,
    SettingsButton,
    build_tree,
    command_digest,
    is_manager,
    settings_view,
)
from bot.discord.delivery import DiscordLimits
from bot.discord.render import help_text, reply_chunks, reply_embed
from bot.discord.webhook import UNCONFIGURED, WebhookNotifier, parse_webhook_url
from bot.ops import redact
from bot.state.subscriptions import Subscriptions
from bot.state.writer import Writer
from feeds.clock import Clock, WallClock
from feeds.model import DAY_MS, MARKET
from feeds.store import Store

logger = logging.getLogger(__name__)

DIGEST_KEY = "discord:commands_sha256:{app_id}"
ACK_WITHIN_S = 2.0  # Discord drops an interaction not answered within 3 s: defer before that
NO_MENTIONS = discord.AllowedMentions.none()
Interaction = discord.Interaction[Any]
# Answers shown as embeds; the rest (help, settings, errors) stay plain text with buttons.
EMBEDDED = frozenset({"liqs", "top", "status", "backtest", "chart", "funding"})


def discord_services(settings: Settings) -> list[ChatService]:
    """The Discord services `settings` asks for: webhooks, the bot, both or neither."""
    services: list[ChatService] = []
    if settings.discord_webhook_urls:
        services.append(DiscordWebhookService(settings))
    if settings.discord_token:
        services.append(DiscordService(settings))
    elif settings.discord_channel_ids:
        logger.warning("discord: channel ids are configured but no LIQBOT_DISCORD_TOKEN; "
                       "only webhooks can be served")
    return services


class DiscordWebhookService:
    """Alerts to `LIQBOT_DISCORD_WEBHOOK_URLS`: each webhook a static destination."""

    name = WEBHOOK_PLATFORM

    def __init__(self, settings: Settings, *, limits: DiscordLimits | None = None,
                 clock: Clock | None = None) -> None:
        try:
            hooks = [parse_webhook_url(u, i) for i, u in enumerate(settings.discord_webhook_urls)]
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        # Installed for every handler; the service itself never logs a URL.
        redact.install([h.url for h in hooks] + [h.token for h in hooks])
        self.webhooks = {h.id: h for h in hooks}
        if len(self.webhooks) < len(hooks):
            logger.warning("discord: a webhook is listed twice; it gets each alert once")
        self.clock = clock or WallClock()
        self._quiet = QuietChats(WEBHOOK_PLATFORM)
        self.notifier = WebhookNotifier(self.webhooks, limits, self._quiet,
                                        username=settings.discord_webhook_username,
                                        avatar_url=settings.discord_webhook_avatar_url)

    async def start(self, writer: Writer, *, live: bool) -> None:
        self._quiet.writer = writer
        self.notifier.charts = chart_maker(writer)
        self.notifier.charts.warm_up()
        await writer.run(register_webhooks, writer.store, list(self.webhooks),
                         self.clock.now_ms())

    async def wait_ready(self, timeout_s: float) -> bool:
        return True

    async def stop(self) -> None:
        await self.notifier.close()


def register_webhooks(store: Store, ids: Sequence[str], now_ms: int) -> None:
    """Static subscriptions for configured webhooks; unlisted ones stop, relisted ones resume.

    A webhook disabled by Discord (404, 401, 403) stays off: a new webhook has a new id.
    """
    subs = Subscriptions(store)
    with store.transaction():
        subs.ensure_static(WEBHOOK_PLATFORM, ids, now_ms)
        for sub in subs.active(WEBHOOK_PLATFORM):
            if sub.static and sub.chat_id not in ids:
                subs.deactivate(WEBHOOK_PLATFORM, sub.chat_id, now_ms, UNCONFIGURED)
        for hook_id in ids:
            current = subs.get(WEBHOOK_PLATFORM, hook_id)
            if current is None or current.active:
                continue
            note = _note(store, hook_id)
            if note == UNCONFIGURED:
                subs.put(dataclasses.replace(current, active=True), now_ms)
            else:
                logger.warning("%s:%s was disabled earlier (%s); it stays off until its URL "
                               "is replaced", WEBHOOK_PLATFORM, hook_id, note)


def _note(store: Store, chat_id: str) -> str:
    return Subscriptions(store).note(WEBHOOK_PLATFORM, chat_id)


class LiqClient(discord.Client):
    """discord.py's client with our tree; `service` answers what the tree receives."""

    def __init__(self, service: DiscordService) -> None:
        # max_ratelimit_timeout: longer waits raise RateLimited and go back to the outbox.
        super().__init__(intents=discord.Intents(guilds=True), allowed_mentions=NO_MENTIONS,
                         max_ratelimit_timeout=30.0)
        self.service = service
        self.tree = build_tree(self, service, service.on_tree_error)

    async def setup_hook(self) -> None:
        # Runs inside login(), before the gateway: the place for one-time work (not on_ready).
        self.add_dynamic_items(SettingsButton)
        if self.service.live:
            await self.service.sync_commands()


class DiscordService(ConnectedService):
    """The bot: channel alerts through the outbox, slash commands in live mode."""

    name = CHANNEL_PLATFORM

    def __init__(self, settings: Settings, *, limits: DiscordLimits | None = None,
                 clock: Clock | None = None, startup_wait_s: float = 5.0,
                 retry_cap_s: float = 60.0) -> None:
        self.settings = settings
        self.clock = clock or WallClock()
        self.retry_cap_s = retry_cap_s
        self.redact = redact.install([settings.discord_token])
        self.client = LiqClient(self)
        super().__init__(CHANNEL_PLATFORM, lambda: self.notifier.ready,
                         startup_wait_s=startup_wait_s)
        self.notifier = ChannelNotifier(self.client, limits, self.quiet)
        self.live = False
        self.charts: ChartMaker | None = None
        self.synced: bool | None = None  # None: not tried; False: unchanged; True: uploaded
        self._coins: tuple[float, list[str]] = (0.0, [])

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, writer: Writer, *, live: bool) -> None:
        """Register static channels, then log in (and in live mode connect) in the background."""
        self.live = live
        self.charts = self.notifier.charts = chart_maker(writer)
        self.charts.warm_up()
        await writer.run(Subscriptions(writer.store).ensure_static, CHANNEL_PLATFORM,
                         self.settings.discord_channel_ids, self.clock.now_ms())
        await self.launch(writer, self._run(), live=live)

    async def stop(self) -> None:
        self.notifier.ready = False
        await self.client.close()  # a clean gateway close (1000), then the HTTP session
        await self.lifecycle.cancel()

    async def _run(self) -> None:
        if not await self._login():
            self.lifecycle.settle()
            return
        self.notifier.ready = True
        self.lifecycle.settle()
        if self.live:
            try:  # reconnects and RESUMEs by itself; returns or raises only when it gives up
                await self.client.connect(reconnect=True)
            except Exception as exc:
                logger.error("discord: gateway connection ended: %s", self.redact(repr(exc)))

    async def _login(self) -> bool:
        """REST login, retried until in; False when the token is refused."""
        async def attempt() -> None:
            await self.client.login(self.settings.discord_token or "")

        try:
            await keep_trying(attempt, platform=CHANNEL_PLATFORM, what="cannot log in",
                              cap_s=self.retry_cap_s, fatal=(discord.LoginFailure,),
                              transient=(discord.HTTPException, aiohttp.ClientError, OSError,
                                         TimeoutError),
                              describe=lambda e: self.redact(repr(e)),
                              between=self.client.http.close)
        except discord.LoginFailure:
            logger.error("discord: Discord rejected the bot token; the bot is off for this "
                         "run (webhooks are unaffected)")
            return False
        logger.info("discord: logged in as %s (application %s)", self.client.user,
                    self.client.application_id)
        return True

    async def sync_commands(self) -> bool:
        """Upload the slash commands if their definition changed since the last upload."""
        key = DIGEST_KEY.format(app_id=self.client.application_id)
        digest = command_digest(self.client.tree)
        if await self.writer.run(self.store.get_meta, key) == digest:
            logger.info("discord: slash commands unchanged; not syncing")
            self.synced = False
            return False
        try:
            await self.client.tree.sync()
        except discord.HTTPException as exc:  # commands stay as they were; next start retries
            logger.error("discord: syncing slash commands failed: %s", self.redact(str(exc)))
            return False
        await self.writer.run(self.store.set_meta, key, digest)
        logger.info("discord: slash commands synced (definition %s)", digest[:12])
        self.synced = True
        return True

    # -- commands --------------------------------------------------------------------------

    def ctx(self, interaction: Interaction) -> Ctx:
        return Ctx(CHANNEL_PLATFORM, str(interaction.channel_id), self.clock.now_ms(),
                   is_group=interaction.guild_id is not None, is_admin=is_manager(interaction))

    async def command(self, interaction: Interaction, name: str,
                      args: Sequence[str | None]) -> None:
        """Run one command through `dispatch` on the writer thread and answer with its reply."""
        ctx = self.ctx(interaction)
        if name == "help":  # the slash commands and their options, not Telegram's syntax
            await self.answer(interaction, Reply(help_text(self.client.tree)))
            return
        words = [w for a in args if a for w in str(a).split()]
        work = self.writer.run(dispatch, self.store, ctx, name, words)
        reply = await self._in_time(interaction, work)
        if name in EMBEDDED and not reply.error:
            await self.answer_embed(interaction, reply)
        else:
            await self.answer(interaction, reply)

    async def answer_embed(self, interaction: Interaction, reply: Reply) -> None:
        """An answer as an embed (a chart under it for `/chart`); as text when it is too long
        for one embed."""
        png = None
        if reply.chart and self.charts is not None:
            if not interaction.response.is_done():  # drawing may outlast Discord's 3 s
                await interaction.response.defer(thinking=True)
            png = await self.charts.png(ChartSpec.parse(reply.chart))
        embed = reply_embed(reply.text, PNG_NAME if png else None)
        if embed is None:
            await self.answer(interaction, reply)
            return
        options: dict[str, Any] = {"embed": discord.Embed.from_dict(embed),
                                   "allowed_mentions": NO_MENTIONS}
        if png is not None:
            options["file"] = discord.File(io.BytesIO(png), PNG_NAME)
        view = settings_view(reply)
        if view is not None:
            options["view"] = view
        try:
            if interaction.response.is_done():
                await interaction.followup.send(**options)
            else:
                await interaction.response.send_message(**options)
        except discord.HTTPException as exc:
            logger.warning("discord: reply in %s failed: %s", interaction.channel_id,
                           self.redact(str(exc)))

    async def press(self, interaction: Interaction, data: str) -> None:
        """A button: settings need Manage Server, checked here and again by `press`; a
        Refresh or a view is anyone's."""
        ctx = self.ctx(interaction)
        if ctx.is_group and not ctx.is_admin and not data.startswith(("run:", "new:")):
            await self.answer(interaction, Reply(MANAGER_ONLY, error=True))
            return
        work = self.writer.run(press_button, self.store, ctx, data)
        reply = await self._in_time(interaction, work)
        if reply.error or not reply.edit or interaction.response.is_done():
            await self.answer(interaction, reply)
            return
        # A Refresh of an answer shown as an embed (/liqs, /top) edits the embed, not text.
        command = data.split(":")[1] if data.count(":") else ""
        embed = reply_embed(reply.text) if command in EMBEDDED else None
        if embed is not None:
            await interaction.response.edit_message(
                content=None, embed=discord.Embed.from_dict(embed), view=settings_view(reply),
                allowed_mentions=NO_MENTIONS)
            return
        await interaction.response.edit_message(content=reply_chunks(reply.text)[0],
                                                view=settings_view(reply),
                                                allowed_mentions=NO_MENTIONS)

    async def _in_time(self, interaction: Interaction, work: Awaitable[Reply]) -> Reply:
        task = asyncio.ensure_future(work)
        try:
            return await asyncio.wait_for(asyncio.shield(task), ACK_WITHIN_S)
        except TimeoutError:  # the store is busy: acknowledge now, answer when it is done
            try:
                await interaction.response.defer(thinking=True)
            except discord.HTTPException as exc:  # the answer below may still make it
                logger.warning("discord: deferring failed: %s", self.redact(str(exc)))
            return await task

    async def answer(self, interaction: Interaction, reply: Reply) -> None:
        """Send a reply in chunks of at most 2000; errors are visible to the caller only."""
        chunks = reply_chunks(reply.text)
        view = settings_view(reply)
        try:
            for i, chunk in enumerate(chunks):
                options: dict[str, Any] = {"ephemeral": reply.error,
                                           "allowed_mentions": NO_MENTIONS}
                if view is not None and i == len(chunks) - 1:  # buttons under the last part
                    options["view"] = view
                if interaction.response.is_done():
                    await interaction.followup.send(chunk, **options)
                else:
                    await interaction.response.send_message(chunk, **options)
        except discord.HTTPException as exc:  # expired interaction, missing access
            logger.warning("discord: reply in %s failed: %s", interaction.channel_id,
                           self.redact(str(exc)))

    async def on_tree_error(self, interaction: Interaction,
                            error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.CheckFailure):
            text = MANAGER_ONLY
        elif isinstance(error, BadOption):
            name = interaction.command.name if interaction.command else ""
            usage = COMMANDS[name].usage if name in COMMANDS else "/help"
            text = f"{error}. Usage: {usage}"
        else:
            logger.error("discord: command %s failed: %s", interaction.command and
                         interaction.command.name, self.redact(repr(error)), exc_info=error)
            text = "Something went wrong answering that; the error was logged."
        await self.answer(interaction, Reply(text, error=True))

    async def symbols(self, interaction: Interaction, current: str) -> list[Choice[str]]:
        """Coins liquidated in the last 24 h, biggest first, that start with what was typed."""
        at, coins = self._coins
        if time.monotonic() - at > 60.0:
            coins = await self.writer.run(_recent_coins, self.store, self.clock.now_ms())
            self._coins = (time.monotonic(), coins)
        word = current.strip().upper()
        return [Choice(name=c, value=c) for c in coins if c.startswith(word)][:25]


def _recent_coins(store: Store, now_ms: int) -> list[str]:
    return [coin for coin, _, _ in store.totals(now_ms, DAY_MS).by("coin") if coin != MARKET]
