"""Every BTC (and ETH) instrument of every venue is counted under its coin, after a replay.

Issue 12: `XBTUSD` was filed under XB, `BTCUSD_PERP` under BTCUSD, `BTC_USDC-PERPETUAL` under
BTC_USDC... so `liqbot totals --symbol BTC` missed them. Each venue's frames go through
`liqbot decode` (its decoder), the output is replayed (the JSONL loader) into a store, and
the store's BTC total must count every one of them at $900 each.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from feeds.history.jsonl import load_events_jsonl
from feeds.model import DAY_MS, MINUTE_MS, Liquidation, Side, coin_of, guessed_coin
from feeds.store import Store
from feeds.venues.decode import decoder_for
from tests.feeds.venues.coin_frames import FRAMES, instruments_file

VENUES = sorted(FRAMES)
# Instruments per venue in coin_frames (BitMEX lists one ETH contract that converts to USD).
COUNTS = {"binance": 3, "binance-coinm": 2, "bybit": 5, "okx": 5, "deribit": 3, "coinglass": 3}


def decode(venue: str, coin: str, tmp_path: Path) -> list[Liquidation]:
    decoder = decoder_for(venue, instruments_file(venue, tmp_path))
    return [e for frame in FRAMES[venue](coin) for e in decoder(json.dumps(frame) + "\n")]


def replayed_totals(events: list[Liquidation], tmp_path: Path, coin: str, *,
                    drop_coin: bool = False) -> tuple[int, float]:
    lines = []
    for e in events:
        row = e.as_short_dict()
        if drop_coin:  # decode output from before `coin` was printed: the symbol decides
            del row["coin"]
        lines.append(json.dumps(row))
    path = tmp_path / f"{coin}-{drop_coin}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    replayed = load_events_jsonl(path).liquidations
    store = Store(tmp_path / f"{coin}-{drop_coin}.db")
    try:
        assert store.insert_liquidations(replayed) == len(events)
        end = max(e.ts_ms for e in replayed) + MINUTE_MS
        totals = store.totals(end, DAY_MS, coin=coin)
        return totals.count, totals.total_usd
    finally:
        store.close()


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("coin", ["BTC", "ETH"])
def test_every_instrument_of_a_venue_counts_under_its_coin(venue: str, coin: str,
                                                           tmp_path: Path) -> None:
    events = decode(venue, coin, tmp_path)
    expected = COUNTS.get(venue) or (3 if coin == "BTC" else 1)
    assert len(events) == expected == len({e.symbol for e in events})
    assert {e.coin for e in events} == {coin}
    assert all(float(e.notional_usd) == pytest.approx(900) for e in events)
    usd = pytest.approx(900 * len(events))
    assert replayed_totals(events, tmp_path, coin) == (len(events), usd)
    # An older decode output (no `coin` key) replays onto the same coin through the guess.
    assert replayed_totals(events, tmp_path, coin, drop_coin=True) == (len(events), usd)


def test_fourteen_and_more_btc_instruments_across_the_seven_venues(tmp_path: Path) -> None:
    events = [e for venue in VENUES for e in decode(venue, "BTC", tmp_path)]
    symbols = {(e.exchange, e.symbol) for e in events}
    assert len(symbols) >= 14 and {e.exchange for e in events} == set(VENUES)
    assert {e.coin for e in events} == {"BTC"}


@pytest.mark.parametrize(("symbol", "coin"), [
    ("XBTUSD", "BTC"), ("XBTUSDT", "BTC"), ("XBTZ25", "BTC"), ("XBT", "BTC"),
    ("BTCUSD_PERP", "BTC"), ("BTCUSD_260327", "BTC"), ("BTCUSDT_260327", "BTC"),
    ("BTC_USDC-PERPETUAL", "BTC"), ("BTC-PERPETUAL", "BTC"), ("BTC-27MAR26", "BTC"),
    ("BTC-USDT-SWAP", "BTC"), ("BTC-USD-260327", "BTC"), ("BTCPERP", "BTC"),
    ("BTCUSDH26", "BTC"), ("BTCUSDT", "BTC"), ("BTCUSDC", "BTC"), ("BTC", "BTC"),
    ("DOTUSD", "DOT"), ("DOTUSDT", "DOT"), ("ETHUSD_PERP", "ETH"), ("ETH_USDC-PERPETUAL", "ETH"),
    ("1000PEPEUSDT", "1000PEPE"), ("WBTC", "WBTC"), ("SOL", "SOL"),
])
def test_the_last_resort_guess_knows_the_suffix_families(symbol: str, coin: str) -> None:
    assert coin_of(symbol) == coin


def test_a_guess_is_logged_once_per_symbol(caplog: pytest.LogCaptureFixture) -> None:
    guessed_coin.cache_clear()
    liq = Liquidation("bybit", "NEWCOINUSDT", Side.LONG, Decimal(1), Decimal(1), Decimal(1),
                      1, 1, False)
    with caplog.at_level("INFO", logger="feeds.model"):
        assert [liq.coin, liq.coin] == ["NEWCOIN", "NEWCOIN"]
    assert len([r for r in caplog.records if "NEWCOINUSDT" in r.getMessage()]) == 1
