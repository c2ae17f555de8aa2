"""Hyperliquid: current funding and open interest over REST; it has no liquidation stream.

Hyperliquid publishes no public all-market liquidation feed (PROTOCOLS.md §7), so this module
is a funding venue only: no `make_feeds`, no `decoder`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from feeds.model import Funding, OpenInterest, ParseError, canonical_coin
from feeds.venues.base import FundingPoll, Item, PollContext
from feeds.venues.parsing import dec, json_rows, need, non_negative, text
from feeds.venues.reference import note_mark

logger = logging.getLogger(__name__)

EXCHANGE = "hyperliquid"
REST_URL = "https://api.hyperliquid.xyz"


def parse_meta_and_ctxs(
    raw: Any, now_ms: int, coins: Iterable[str] | None = None
) -> tuple[list[Funding], list[OpenInterest]]:
    """Normalize `POST /info {"type": "metaAndAssetCtxs"}`; the payload has no time, so now_ms.

    [{"universe": [{"name": "SOL", "szDecimals": 2, "maxLeverage": 50}]},
     [{"funding": "0.0000198",          # HOURLY rate: interval 1 h
       "openInterest": "10764.48",      # base coin
       "markPx": "108.04", ...}]]       # ctxs[i] belongs to universe[i]: matched by index
    """
    if not isinstance(raw, list) or len(raw) != 2:
        raise ParseError("metaAndAssetCtxs: expected [meta, ctxs]")
    universe = json_rows(need(raw[0], "universe", "meta"), "universe")
    ctxs = json_rows(raw[1], "ctxs")
    if len(universe) != len(ctxs):
        # Pairing is by index only: a length mismatch would shift every coin onto another's data.
        raise ParseError(f"metaAndAssetCtxs: {len(universe)} coins but {len(ctxs)} contexts")
    wanted = None if coins is None else {c.upper() for c in coins}
    funding, oi = [], []
    for meta, ctx in zip(universe, ctxs, strict=True):
        coin = text(need(meta, "name", "universe"), "name")
        if wanted is not None and coin.upper() not in wanted:
            continue
        rate = dec(need(ctx, "funding", coin), "funding")
        base = non_negative(need(ctx, "openInterest", coin), "openInterest")
        mark = non_negative(need(ctx, "markPx", coin), "markPx")
        note_mark(canonical_coin(coin), now_ms, mark)  # USDC-margined: a USD reference
        funding.append(Funding(EXCHANGE, coin, now_ms, rate, 1.0))
        oi.append(OpenInterest(EXCHANGE, coin, now_ms, base, base * mark))
    return funding, oi


async def fetch_funding(ctx: PollContext, symbols: Sequence[str]) -> list[Item]:
    """One poll: a single `metaAndAssetCtxs` request covers every coin."""
    raw = await ctx.http.post("/info", {"type": "metaAndAssetCtxs"})
    funding, oi = parse_meta_and_ctxs(raw, ctx.clock.now_ms(), symbols or None)
    missing = {s.upper() for s in symbols} - {f.symbol.upper() for f in funding}
    if missing:
        logger.warning("%s: no such coins in metaAndAssetCtxs: %s", ctx.name, sorted(missing))
    return [*funding, *oi]


FUNDING = FundingPoll(REST_URL, ("BTC", "ETH", "SOL"), fetch_funding)
