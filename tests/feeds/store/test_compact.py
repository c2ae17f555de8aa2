"""A Binance frame stored as its row plus a remainder comes back whole (feeds/store/compact.py),
and the store's one-pass gate and key agree with their reference definitions (issue 16)."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import struct
from decimal import Decimal
from pathlib import Path

from feeds.model import Liquidation
from feeds.plausible import fault, known_name, passes
from feeds.store import Store
from feeds.venues.binance import parse_message
from tests.feeds.test_plausible import BAD
from tests.helpers.factories import T0, make_liq

CORPUS = Path(__file__).resolve().parents[2] / "payloads" / "binance"
FRAMES = sorted(p for p in CORPUS.glob("*.json")
                if "forceorder" in p.name or p.name.startswith("issue12"))


def corpus_events() -> list[Liquidation]:
    events = [e for p in FRAMES for e in parse_message(p.read_text(), T0)]
    assert len(events) == len(FRAMES) >= 5
    return events


def stored_raw(store: Store, e: Liquidation) -> object:
    return store.database.conn.execute(
        "SELECT raw FROM events WHERE uid = ?", (e.event_key(),)).fetchone()[0]


def test_every_corpus_frame_is_rebuilt_from_its_row_and_remainder(tmp_path: Path) -> None:
    events = corpus_events()
    store = Store(tmp_path / "c.db")
    try:
        assert store.insert_liquidations(events) == len(events)
        for e in events:
            rest = stored_raw(store, e)
            assert isinstance(rest, bytes) and len(rest) < len(json.dumps(e.raw)) / 2
            assert store.raw_payload(e.event_key(), e.ts_ms) == e.raw
            # Binance's key order too, so the text written back is the frame's.
            assert json.dumps(store.raw_payload(e.event_key(), e.ts_ms)) == json.dumps(e.raw)
        assert store.insert_liquidations(events) == 0  # duplicates: no row, no payload
    finally:
        store.close()


def test_frames_of_another_shape_are_kept_whole(tmp_path: Path) -> None:
    sample = json.loads((CORPUS / "binance_usdm_forceorder.json").read_text())
    odd = []
    for i, change in enumerate([
        lambda f: f.update(extra=1),                       # a top-level field more
        lambda f: f["o"].pop("X"),                         # a constant field missing
        lambda f: f["o"].update(X="PARTIALLY_FILLED"),     # a constant field otherwise
        lambda f: f["o"].pop("q"),                         # a defaulted field missing
        lambda f: f["o"].update(ap="0", p="9910"),         # the parser took p, not ap
        lambda f: f["o"].update(E=5),                      # a field named like the remainder's
        lambda f: (f["o"].pop("f"), f["o"].update(st=1)),  # eleven fields, not the eleven
    ]):
        frame = copy.deepcopy(sample)
        frame["o"]["T"] += i
        change(frame)
        odd.append(frame)
    events = [e for f in odd for e in parse_message(json.dumps(f), T0)]
    store = Store(tmp_path / "o.db")
    try:
        assert store.insert_liquidations(events) == len(odd)
        for e in events:
            assert stored_raw(store, e) is None  # whole, in a block
            assert store.raw_payload(e.event_key(), e.ts_ms) == e.raw
    finally:
        store.close()


def test_the_one_pass_check_agrees_with_fault() -> None:
    now = T0 + 60_000
    rng = random.Random(7)
    good = [make_liq(qty_base=Decimal(f"{rng.uniform(1e-6, 1e4):.6f}"),
                     price=Decimal(f"{rng.uniform(1e-4, 2e5):.4f}"), ts_exchange_ms=T0)
            for _ in range(300)]
    coin_quoted = [make_liq(quote="BTC", notional_usd=Decimal(0)),
                   make_liq(quote="BTC", notional_usd=Decimal("1e11"))]
    for e in [*good, *coin_quoted, *(e for _, e in BAD)]:
        fault(e, now)  # remembers a plausible name, as the store's gate does
        try:
            floats = float(e.qty_base), float(e.price), float(e.notional_usd)
        except ValueError:
            assert fault(e, now) is not None
            continue
        one_pass = known_name(e.exchange, e.symbol) and passes(
            *floats, e.ts_ms, e.quote is not None, now)
        assert one_pass == (fault(e, now) is None), e


def test_event_key_is_the_hash_it_always_was() -> None:
    """Keys of stored rows must not move: the blake2b of the text written with plain `{}`."""
    for e in [*corpus_events(), make_liq(venue_id="abc", ts_exchange_ms=None),
              make_liq(price=Decimal("100.500"), qty_base=Decimal("1E+2"))]:
        ts = e.ts_exchange_ms if e.ts_exchange_ms is not None else e.ts_recv_ms
        text = (f"{e.exchange}|{e.symbol}|{e.position_side.value}|{ts}|"
                f"{format(e.price.normalize(), '')}|{format(e.qty_base.normalize(), '')}")
        if e.venue_id is not None:
            text += f"|id={e.venue_id}"
        digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
        assert e.event_key() == struct.unpack(">q", digest)[0]
