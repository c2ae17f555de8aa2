"""One outbox pass (bot.chat.delivery.deliver_due) with recording notifiers.

Fairness, moves, notices.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.chat.base import DeliveryError
from bot.chat.delivery import deliver_due
from bot.policy import Policy
from bot.state.outbox import Outbox
from bot.state.schema import migrate_store
from bot.state.subscriptions import Subscription, Subscriptions
from feeds.store import Store
from signals import SignalParams
from tests.helpers.factories import T0, Ops, make_alert


class Chat:
    """Records what it was sent; `answers` maps a destination to the error it raises."""

    def __init__(self, name: str, *, ready: bool = True, parallel: int = 8) -> None:
        self.name, self.ready, self.parallel = name, ready, parallel
        self.sent: list[tuple[str, str]] = []
        self.answers: dict[str, DeliveryError] = {}

    async def send(self, alert: Any, destination: str) -> None:
        if destination in self.answers:
            raise self.answers[destination]
        self.sent.append((alert.key, destination))

    async def notice(self, text: str) -> None:
        return None

    async def close(self) -> None:
        return None


async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "d.db")
    migrate_store(s)  # the chat tables, as the bot opens the file
    yield s
    s.close()


async def test_a_backlog_for_a_platform_that_is_down_does_not_starve_the_others(store):
    policy = Policy(store, SignalParams())
    old = make_alert(key="old", end_ms=T0)
    policy.record([old], [f"telegram:{i}" for i in range(2500)], T0)  # more than one batch
    policy.record([make_alert(key="new", end_ms=T0 + 60_000)], ["console"], T0)
    console = Chat("console")
    notifiers = {"telegram": Chat("telegram", ready=False), "console": console}
    assert await deliver_due(Outbox(store), notifiers, T0, run) == 1
    assert console.sent == [("new", "console")]


async def test_a_migrated_group_gets_each_alert_once_even_if_already_queued_there(store):
    subs = Subscriptions(store)
    subs.put(Subscription("telegram", "-42"), T0)
    subs.put(Subscription("telegram", "-1001234567890123"), T0)  # configured there too
    Policy(store, SignalParams()).record(
        [make_alert(key="a")], ["telegram:-42", "telegram:-1001234567890123"], T0)
    chat = Chat("telegram")
    chat.answers["telegram:-42"] = DeliveryError("migrated",
                                                 moved_to="telegram:-1001234567890123")
    for _ in range(3):
        await deliver_due(Outbox(store), {"telegram": chat}, T0 + 10**6, run)
    assert chat.sent == [("a", "telegram:-1001234567890123")]
    assert subs.get("telegram", "-1001234567890123") is not None


async def test_dead_chats_are_reported_in_one_notice_after_the_pass(store):
    Policy(store, SignalParams()).record([make_alert(key="a")],
                                         [f"telegram:{i}" for i in range(5)], T0)
    chat, ops = Chat("telegram"), Ops()
    for i in (1, 3):
        chat.answers[f"telegram:{i}"] = DeliveryError("Forbidden: blocked", gone=True)
    assert await deliver_due(Outbox(store), {"telegram": chat, "ops": ops}, T0, run) == 3
    (notice,) = ops.notices
    assert "telegram:1 disabled" in notice and "telegram:3 disabled" in notice


def test_a_configured_chat_that_was_disabled_is_enabled_again_at_start(store):
    subs = Subscriptions(store)
    subs.ensure_static("telegram", ["-1009"], T0)
    subs.deactivate("telegram", "-1009", T0, "Forbidden: not enough rights to send")
    assert not subs.get("telegram", "-1009").active
    subs.ensure_static("telegram", ["-1009"], T0 + 1)
    assert not subs.get("telegram", "-1009").active  # only where the platform asks for it
    subs.ensure_static("telegram", ["-1009"], T0 + 2, reenable=True)
    assert subs.get("telegram", "-1009").active
