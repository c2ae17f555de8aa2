"""/start and Refresh on Discord: the same onboarding buttons, Refresh for anyone, through
the fake gateway and REST with discord.py's own component handling."""

from __future__ import annotations

from tests.bot.discord.test_commands import MANAGER, live  # noqa: F401  (the fixture)
from tests.helpers.discord_interactions import button_press, slash


def _ids(components: list[dict]) -> list[list[str]]:
    return [[c["custom_id"] for c in row["components"]] for row in components]


async def test_start_offers_the_onboarding_buttons(live):  # noqa: F811
    r = await live.ask(slash("start"))
    assert r.type == 4 and len(r.content.splitlines()) == 3
    assert _ids(r.data["components"]) == [
        ["liqbot:set:sub:short_squeeze", "liqbot:set:sub:long_cascade", "liqbot:set:sub:all"],
        ["liqbot:set:new:liqs", "liqbot:set:new:settings"]]
    # Subscribing changes settings: Manage Server only; it answers with a new message.
    refused = await live.ask(button_press("liqbot:set:sub:all", r.data["components"]))
    assert refused.ephemeral and await live.sub() is None
    sub = await live.ask(button_press("liqbot:set:sub:long_cascade", r.data["components"],
                                      permissions=MANAGER))
    assert sub.type == 4 and sub.content.startswith("Subscribed. Alerts: long cascade")
    assert (await live.sub()).kinds == ("long_cascade",)


async def test_refresh_edits_the_message_for_anyone(live):  # noqa: F811
    r = await live.ask(slash("liqs", symbol="BTC", window="4h"))
    assert _ids(r.data["components"]) == [["liqbot:set:run:liqs:4h:BTC"]]
    pressed = await live.ask(button_press("liqbot:set:run:liqs:4h:BTC", r.data["components"]))
    assert pressed.type == 7  # UPDATE_MESSAGE: edited in place, by a member without rights
    # /liqs answers as an embed: the Refresh edits that embed, the same answer again
    assert pressed.data["embeds"] == r.data["embeds"] and r.data["embeds"][0]["title"]
    assert pressed.data["components"]
