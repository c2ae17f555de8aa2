"""What users do, as updates the fake Bot API (tests/helpers/fake_telegram.py) hands out:
commands, button presses (callback queries), plain text from a reply keyboard."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

BOT = {"id": 9, "is_bot": True, "first_name": "Liq", "username": "liq_bot"}
ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group",
                   "username": "GroupAnonymousBot"}


class UpdatesMixin:
    """Queues updates for getUpdates; the server (FakeBotApi) owns these attributes."""

    pending: list[dict[str, Any]]
    history: list[dict[str, Any]]
    _ids: itertools.count[int]
    _message_ids: itertools.count[int]
    _arrived: asyncio.Event

    def push(self, kind: str, payload: dict[str, Any]) -> int:
        uid = next(self._ids)
        update = {"update_id": uid, kind: payload}
        self.pending.append(update)
        self.history.append(update)
        self._arrived.set()
        return uid

    def redeliver(self, from_id: int) -> None:
        """Forget confirmations from `from_id` on, as if the bot died before confirming."""
        again = [u for u in self.history if u["update_id"] >= from_id]
        known = {u["update_id"] for u in self.pending}
        self.pending = sorted(self.pending + [u for u in again if u["update_id"] not in known],
                              key=lambda u: u["update_id"])
        self._arrived.set()

    def push_command(self, text: str, chat_id: int | str = 100, *, user_id: int | None = None,
                     anonymous: bool = False, date: int | None = None) -> int:
        """A user (or, `anonymous`, an admin posting as the group) sends a command.

        `date` (unix seconds): when the user sent it, for a command that waited in Telegram.
        """
        chat = _chat(chat_id)
        if user_id is None:  # in a private chat the user's id is the chat's
            user_id = chat["id"] if chat["type"] == "private" else 777
        sender = ANONYMOUS_ADMIN if anonymous else {"id": user_id, "is_bot": False,
                                                    "first_name": "Test"}
        msg = {"message_id": next(self._message_ids),
               "date": int(time.time()) if date is None else date, "text": text,
               "chat": chat, "from": sender,
               "entities": [{"type": "bot_command", "offset": 0,
                             "length": len(text.split()[0])}]}
        if anonymous:
            msg["sender_chat"] = chat
        return self.push("message", msg)

    def push_button(self, data: str, chat_id: int | str, message_id: int,
                    user_id: int = 777) -> int:
        return self.push("callback_query", {
            "id": f"cb{message_id}-{len(self.pending)}", "chat_instance": "ci", "data": data,
            "from": {"id": user_id, "is_bot": False, "first_name": "Test"},
            "message": {"message_id": message_id, "date": int(time.time()), "text": "settings",
                        "chat": _chat(chat_id), "from": BOT}})

    def push_text(self, text: str, chat_id: int | str = 100) -> int:
        """Plain text, as a reply-keyboard button sends it (its label, as if typed)."""
        chat = _chat(chat_id)
        entities = ([{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
                    if text.startswith("/") else [])
        return self.push("message", {
            "message_id": next(self._message_ids), "date": int(time.time()), "text": text,
            "chat": chat, "from": {"id": chat["id"] if chat["type"] == "private" else 777,
                                   "is_bot": False, "first_name": "Test"},
            "entities": entities})


def _chat(chat_id: int | str) -> dict[str, Any]:
    text = str(chat_id)
    if text.startswith("@"):
        return {"id": -1000000000001, "type": "channel", "title": text, "username": text[1:]}
    if text.startswith("-100"):
        return {"id": int(text), "type": "supergroup", "title": "Group"}
    if text.startswith("-"):
        return {"id": int(text), "type": "group", "title": "Group"}
    return {"id": int(text), "type": "private", "first_name": "Test"}


def _admin(user_id: int) -> dict[str, Any]:
    rights = ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages",
              "can_manage_video_chats", "can_restrict_members", "can_promote_members",
              "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
              "can_delete_stories")
    return {"status": "administrator", "user": {"id": user_id, "is_bot": False,
                                                "first_name": "Admin"},
            **{r: r != "is_anonymous" for r in rights}}
