"""The Alert: a signal the policy decided to send, frozen with everything render needs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from signals import Signal
from signals.params import SEVERITY_NAMES

EXTREME = max(SEVERITY_NAMES)  # "extreme": the alerts that carry a chart


@dataclass(frozen=True, slots=True)
class Alert:
    key: str  # kind|scope|window|episode start|severity: stable across reruns
    kind: str
    severity: int
    severity_name: str
    scope: str  # coin, or "*" for market-wide
    window_ms: int
    start_ms: int
    end_ms: int
    long_usd: float
    short_usd: float
    share: float
    ratio: float | None
    episode_ms: int
    escalation: bool = False
    lower_bound: bool = False
    top_coins: list[tuple[str, float, float]] = field(default_factory=list)
    top_exchanges: list[tuple[str, float, float]] = field(default_factory=list)
    price_change: float | None = None
    funding_8h: float | None = None
    reasons: list[str] = field(default_factory=list)
    track_record: str | None = None
    # The baseline's covered share; thin_history: too little for relative tiers to count.
    coverage: float | None = None
    thin_history: bool = False
    # The biggest single liquidation of the window (feeds.store.charts.LargestLiquidation as a
    # dict: exchange, symbol, coin, side, usd, price, ts_ms); None when only aggregates exist.
    largest: dict[str, Any] | None = None
    # A message composed elsewhere (a chat's digest, bot/digest.py): rendered as it reads.
    text: str | None = None

    @property
    def extreme(self) -> bool:
        """The top severity."""
        return self.severity >= EXTREME

    @property
    def charted(self) -> bool:
        """Extreme alerts and digests (the only composed messages) go out with a chart of
        their window: the moment people would rather look at than read."""
        return self.extreme or self.text is not None

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Alert:
        data: dict[str, Any] = json.loads(text)
        # A payload written by a newer version may carry fields this one lacks: drop them.
        data = {k: v for k, v in data.items() if k in _FIELDS}
        for key in ("top_coins", "top_exchanges"):
            data[key] = [tuple(x) for x in data.get(key, [])]
        return cls(**data)

    @classmethod
    def from_signal(cls, s: Signal, episode_ms: int, escalation: bool) -> Alert:
        st = s.stat
        key = f"{s.kind.value}|{st.scope}|{st.window_ms}|{episode_ms}|{s.severity}"
        return cls(
            key=key, kind=s.kind.value, severity=s.severity, severity_name=s.severity_name,
            scope=st.scope, window_ms=st.window_ms, start_ms=st.start_ms, end_ms=st.end_ms,
            long_usd=st.long_usd, short_usd=st.short_usd, share=s.share, ratio=s.ratio,
            episode_ms=episode_ms, escalation=escalation, lower_bound=st.lower_bound,
            top_coins=list(st.top_coins), top_exchanges=list(st.top_exchanges),
            price_change=st.context.price_change, funding_8h=st.context.funding_8h,
            reasons=list(s.reasons), coverage=st.coverage, thin_history=s.thin_history,
        )


_FIELDS = frozenset(f.name for f in fields(Alert))
