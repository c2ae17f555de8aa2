"""The soak's liquidations in each venue's own wire format (bench/soak.py sends them).

One builder per venue turns the same `Event`s into the frames that venue sends: Binance
USDⓈ-M and COIN-M `forceOrder`, Bybit v5 `allLiquidation.*`, OKX `liquidation-orders`,
BitMEX `liquidation` insert and delete, Deribit `trades.*` with `liquidation`, CoinGlass
`liquidationOrders`. Sizes are chosen so each venue's own USD rule gives back the event's
size (contracts × contract value, inverse contracts = USD, and so on).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OKX_CTVAL = {"BTC": 0.01, "ETH": 0.1, "SOL": 1.0}  # the shipped okx_instruments_swap.json
COINM_SIZE = {"BTC": 100.0, "ETH": 10.0}  # USD per contract, binance_coinm_exchange_info.json


@dataclass
class Event:
    coin: str
    price: float
    usd: float
    short: bool  # a short position was liquidated
    ts: int


def _binance(events: list[Event], symbol: Callable[[str], str]) -> list[Any]:
    out = []
    for e in events:
        q = f"{e.usd / e.price:.6f}"
        out.append({"e": "forceOrder", "E": e.ts, "o": {
            "s": symbol(e.coin), "S": "BUY" if e.short else "SELL", "o": "LIMIT", "f": "IOC",
            "q": q, "p": f"{e.price:.1f}", "ap": f"{e.price:.1f}", "X": "FILLED", "l": q, "z": q,
            "T": e.ts}})
    return out


def binance_frames(events: list[Event]) -> list[Any]:
    return _binance(events, lambda c: f"{c}USDT")


def coinm_frames(events: list[Event]) -> list[Any]:
    out = []
    for e in events:  # contracts of contractSize USD each
        n = max(1, round(e.usd / COINM_SIZE[e.coin]))
        out.append({"e": "forceOrder", "E": e.ts, "o": {
            "s": f"{e.coin}USD_PERP", "ps": f"{e.coin}USD", "S": "BUY" if e.short else "SELL",
            "o": "LIMIT", "f": "IOC", "q": str(n), "p": f"{e.price:.1f}", "ap": f"{e.price:.1f}",
            "X": "FILLED", "l": str(n), "z": str(n), "T": e.ts}})
    return out


def bybit_frames(events: list[Event]) -> list[Any]:
    by: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by[f"{e.coin}USDT"].append(e)
    return [{"topic": f"allLiquidation.{s}", "type": "snapshot", "ts": es[-1].ts, "data": [
        {"T": e.ts, "s": s, "S": "Sell" if e.short else "Buy", "v": f"{e.usd / e.price:.6f}",
         "p": f"{e.price:.1f}"} for e in es]} for s, es in by.items()]


def okx_frames(events: list[Event]) -> list[Any]:
    data = []
    for e in events:
        sz = max(1, round(e.usd / (OKX_CTVAL[e.coin] * e.price)))
        data.append({"details": [{"bkLoss": "0", "bkPx": f"{e.price:.1f}", "ccy": "",
                                  "posSide": "short" if e.short else "long",
                                  "side": "buy" if e.short else "sell", "sz": str(sz),
                                  "ts": str(e.ts)}],
                     "instFamily": f"{e.coin}-USDT", "instId": f"{e.coin}-USDT-SWAP",
                     "instType": "SWAP", "uly": f"{e.coin}-USDT"})
    return [{"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": data}]


def bitmex_frames(events: list[Event], open_orders: list[str]) -> list[Any]:
    """An `insert` of new orders, and the `delete` of those inserted the tick before.

    BitMEX deletes a liquidation order from the table once it is done; the parser keeps
    each open order until then, so a fake that never deleted would leak on our behalf.
    """
    rows = [{"orderID": str(uuid.uuid4()), "symbol": "XBTUSD",
             "side": "Buy" if e.short else "Sell", "price": round(e.price, 1),
             "leavesQty": max(1, round(e.usd))} for e in events]
    frames: list[Any] = [{"table": "liquidation", "action": "insert", "data": rows}]
    if open_orders:
        frames.append({"table": "liquidation", "action": "delete", "data": [
            {"orderID": i, "symbol": "XBTUSD"} for i in open_orders]})
    open_orders[:] = [r["orderID"] for r in rows]
    return frames


def deribit_frames(events: list[Event], ids: list[int]) -> list[Any]:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        ids[0] += 1
        # "T": the taker was liquidated; a buying taker was short.
        by[e.coin].append({"trade_seq": ids[0], "trade_id": str(ids[0]), "timestamp": e.ts,
                           "tick_direction": 0, "price": round(e.price, 1),
                           "instrument_name": f"{e.coin}-PERPETUAL", "index_price": e.price,
                           "direction": "buy" if e.short else "sell",
                           "amount": max(10, round(e.usd, -1)), "liquidation": "T"})
    return [{"jsonrpc": "2.0", "method": "subscription",
             "params": {"channel": f"trades.future.{c}.100ms", "data": d}} for c, d in by.items()]


def coinglass_frames(events: list[Event]) -> list[Any]:
    return [{"channel": "liquidationOrders", "data": [
        {"baseAsset": e.coin, "exName": "Binance", "price": round(e.price, 1),
         "side": 1 if e.short else 2, "symbol": f"{e.coin}USDT", "time": e.ts,
         "volUsd": round(e.usd, 2)} for e in events]}]
