"""Gateway interaction payloads for the fake Discord: slash commands, autocomplete, buttons.

    await fake.push(slash("liqs", symbol="BTC"))          # an INTERACTION_CREATE
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.helpers.fake_discord import APP_ID, BOT_USER, CHANNEL_ID, GUILD_ID, VIEW_AND_SEND

# -- interaction payloads --------------------------------------------------------------------

_interaction_ids = itertools.count(600_000_000_000_000_001)


def _member(user_id: str, permissions: int) -> dict[str, Any]:
    return {"user": {"id": user_id, "username": f"user{user_id[-3:]}", "discriminator": "0",
                     "global_name": None, "avatar": None},
            "roles": [], "joined_at": "2025-01-01T00:00:00+00:00", "deaf": False, "mute": False,
            "flags": 0, "permissions": str(permissions)}


def interaction(kind: int, data: dict[str, Any], *, guild: bool = True,
                permissions: int = VIEW_AND_SEND, channel_id: str = CHANNEL_ID,
                user_id: str = "500000000000000001", **extra: Any) -> dict[str, Any]:
    """An INTERACTION_CREATE payload as Discord sends it (guild text channel or DM)."""
    iid = str(next(_interaction_ids))
    payload: dict[str, Any] = {
        "id": iid, "application_id": APP_ID, "type": kind, "data": data,
        "token": f"interaction-token-{iid}", "version": 1, "locale": "en-US",
        "app_permissions": str(VIEW_AND_SEND), "entitlements": [],
        "attachment_size_limit": 8_388_608, "channel_id": channel_id, **extra}
    if guild:
        payload.update(guild_id=GUILD_ID, guild_locale="en-US", context=0,
                       authorizing_integration_owners={"0": GUILD_ID},
                       channel={"id": channel_id, "type": 0, "name": "alerts", "position": 0,
                                "guild_id": GUILD_ID, "permission_overwrites": [],
                                "nsfw": False, "parent_id": None},
                       member=_member(user_id, permissions))
    else:
        user = _member(user_id, 0)["user"]
        payload.update(context=1, authorizing_integration_owners={"1": user_id},
                       channel={"id": channel_id, "type": 1, "recipients": [user]}, user=user)
    return payload


def slash(name: str, *, guild: bool = True, permissions: int = VIEW_AND_SEND,
          channel_id: str = CHANNEL_ID, **options: Any) -> dict[str, Any]:
    """A slash-command interaction (type 2) with string options."""
    opts = [{"name": k, "type": 3, "value": v} for k, v in options.items() if v is not None]
    return interaction(2, {"id": "1", "name": name, "type": 1, "options": opts}, guild=guild,
                       permissions=permissions, channel_id=channel_id)


def autocomplete(name: str, focused: str, *, guild: bool = True,
                 **options: Any) -> dict[str, Any]:
    """An autocomplete interaction (type 4): `focused` names the option being typed."""
    opts = [{"name": k, "type": 3, "value": v, **({"focused": True} if k == focused else {})}
            for k, v in options.items()]
    return interaction(4, {"id": "1", "name": name, "type": 1, "options": opts}, guild=guild)


def button_press(custom_id: str, components: list[dict[str, Any]], *, guild: bool = True,
                 permissions: int = VIEW_AND_SEND,
                 channel_id: str = CHANNEL_ID) -> dict[str, Any]:
    """A button click (type 3) on a bot message that carries `components`."""
    message = {"id": "910000000000000001", "channel_id": channel_id, "type": 0,
               "content": "settings", "embeds": [], "author": BOT_USER,
               "timestamp": "2026-01-13T22:00:00+00:00", "edited_timestamp": None,
               "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
               "attachments": [], "pinned": False, "flags": 0, "components": components}
    return interaction(3, {"custom_id": custom_id, "component_type": 2}, guild=guild,
                       permissions=permissions, channel_id=channel_id, message=message)
