"""Where an alert goes, as the outbox and the subscriptions store it: `platform:chat`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one outbox item goes: `telegram:-100123`, `discord-webhook:<id>`, or a sink.

    A sink (`console`) is a platform that is its own destination: it has no chat id. The
    string form is what the outbox and the subscriptions store.
    """

    platform: str
    chat_id: str = ""

    def __post_init__(self) -> None:
        if not self.platform or ":" in self.platform or self.platform != self.platform.strip():
            raise ValueError(f"not a destination platform: {self.platform!r}")

    @classmethod
    def parse(cls, text: str) -> Destination:
        """`platform:chat` or a bare sink name; anything else raises ValueError."""
        platform, sep, chat_id = text.partition(":")
        if sep and not chat_id:
            raise ValueError(f"destination {text!r} has no chat id (expected platform:chat)")
        try:
            return cls(platform, chat_id)
        except ValueError:
            raise ValueError(f"not a destination: {text!r} (expected platform:chat)") from None

    def __str__(self) -> str:
        return f"{self.platform}:{self.chat_id}" if self.chat_id else self.platform
