"""One $900 liquidation on every BTC and ETH instrument of each venue, as that venue frames it.

Shapes follow the recorded frames in tests/payloads and PROTOCOLS.md; the instrument
tables are the fields each venue publishes (exchangeInfo, instruments-info, instruments,
instrument/active), cut down to what the parsers read. Every event is worth exactly $900.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TS = 1_767_225_600_000  # 2026-01-01T00:00Z; BitMEX rows carry none (receive time instead)
PRICE = {"BTC": 90_000, "ETH": 3_000}


def binance(coin: str) -> list[dict[str, Any]]:
    qty = str(900 / PRICE[coin])
    return [{"e": "forceOrder", "E": TS + i, "o": {
        "s": symbol, "S": "SELL", "o": "LIMIT", "f": "IOC", "q": qty, "p": str(PRICE[coin]),
        "ap": str(PRICE[coin]), "X": "FILLED", "l": qty, "z": qty, "T": TS + i}}
        for i, symbol in enumerate([f"{coin}USDT", f"{coin}USDC", f"{coin}USDT_260327"])]


COINM_INFO = {"symbols": [
    {"symbol": f"{c}USD_{kind}", "pair": f"{c}USD", "baseAsset": c, "quoteAsset": "USD",
     "marginAsset": c, "contractSize": 100 if c == "BTC" else 10}
    for c in ("BTC", "ETH") for kind in ("PERP", "260327")]}


def binance_coinm(coin: str) -> list[dict[str, Any]]:
    contracts = "9" if coin == "BTC" else "90"  # × contractSize 100 / 10 USD
    return [{"e": "forceOrder", "E": TS + i, "o": {
        "s": symbol, "ps": f"{coin}USD", "S": "BUY", "o": "LIMIT", "f": "IOC",
        "q": contracts, "p": str(PRICE[coin]), "ap": str(PRICE[coin]), "X": "FILLED",
        "l": contracts, "z": contracts, "T": TS + i}}
        for i, symbol in enumerate([f"{coin}USD_PERP", f"{coin}USD_260327"])]


def _bybit_symbols(coin: str) -> list[tuple[str, str, str]]:
    # (symbol, contractType, settle): USDT and USDC perpetuals, a USDC future, inverse ones.
    return [(f"{coin}USDT", "LinearPerpetual", "USDT"), (f"{coin}PERP", "LinearPerpetual", "USDC"),
            (f"{coin}-27MAR26", "LinearFutures", "USDC"), (f"{coin}USD", "InversePerpetual", coin),
            (f"{coin}USDH26", "InverseFutures", coin)]


BYBIT_INFO = {"retCode": 0, "retMsg": "OK", "result": {"category": "", "nextPageCursor": "",
              "list": [{"symbol": s, "contractType": kind, "status": "Trading",
                        "baseCoin": c, "quoteCoin": "USD" if settle == c else settle,
                        "settleCoin": settle}
                       for c in ("BTC", "ETH") for s, kind, settle in _bybit_symbols(c)]}}


def bybit(coin: str) -> list[dict[str, Any]]:
    frames = []
    for i, (symbol, kind, _) in enumerate(_bybit_symbols(coin)):
        size = "900" if kind.startswith("Inverse") else str(900 / PRICE[coin])
        frames.append({"topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": TS + i,
                       "data": [{"T": TS + i, "s": symbol, "S": "Buy", "v": size,
                                 "p": str(PRICE[coin])}]})
    return frames


def _okx_instruments(coin: str) -> list[tuple[str, str, str, str]]:
    # (instId, instType, ctType, ctVal): linear ctVal in the coin, inverse in USD.
    lin = "0.01" if coin == "BTC" else "0.1"
    return [(f"{coin}-USDT-SWAP", "SWAP", "linear", lin),
            (f"{coin}-USD-SWAP", "SWAP", "inverse", "100"),
            (f"{coin}-USDC-SWAP", "SWAP", "linear", lin),
            (f"{coin}-USDT-260327", "FUTURES", "linear", lin),
            (f"{coin}-USD-260327", "FUTURES", "inverse", "100")]


OKX_INFO = {"code": "0", "msg": "", "data": [
    {"instId": i, "instType": t, "ctType": kind, "ctVal": val,
     "ctValCcy": "USD" if kind == "inverse" else c, "uly": i.rsplit("-", 1)[0],
     "instFamily": i.rsplit("-", 1)[0]}
    for c in ("BTC", "ETH") for i, t, kind, val in _okx_instruments(c)]}


def okx(coin: str) -> list[dict[str, Any]]:
    data = []
    for i, (inst, inst_type, kind, val) in enumerate(_okx_instruments(coin)):
        sz = 900 / 100 if kind == "inverse" else 900 / PRICE[coin] / float(val)
        family = inst.rsplit("-", 1)[0]
        data.append({"instId": inst, "instType": inst_type, "uly": family, "instFamily": family,
                     "details": [{"bkLoss": "0", "bkPx": str(PRICE[coin]), "ccy": "",
                                  "posSide": "long", "side": "sell", "sz": f"{sz:g}",
                                  "ts": str(TS + i)}]})
    return [{"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": data}]


BITMEX_INFO = [
    {"symbol": "XBTUSD", "rootSymbol": "XBT", "underlying": "XBT", "quoteCurrency": "USD",
     "settlCurrency": "XBt", "isInverse": True, "isQuanto": False, "multiplier": -100000000,
     "underlyingToPositionMultiplier": None},
    {"symbol": "XBTH26", "rootSymbol": "XBT", "underlying": "XBT", "quoteCurrency": "USD",
     "settlCurrency": "XBt", "isInverse": True, "isQuanto": False, "multiplier": -100000000,
     "underlyingToPositionMultiplier": None},
    {"symbol": "XBTUSDT", "rootSymbol": "XBT", "underlying": "XBT", "quoteCurrency": "USDT",
     "settlCurrency": "USDt", "isInverse": False, "isQuanto": False, "multiplier": 1,
     "underlyingToPositionMultiplier": 1000000},
    {"symbol": "ETHUSDT", "rootSymbol": "ETH", "underlying": "ETH", "quoteCurrency": "USDT",
     "settlCurrency": "USDt", "isInverse": False, "isQuanto": False, "multiplier": 1,
     "underlyingToPositionMultiplier": 1000},
]


def bitmex(coin: str) -> list[dict[str, Any]]:
    rows = ([("XBTUSD", 900), ("XBTH26", 900), ("XBTUSDT", 10_000)] if coin == "BTC"
            else [("ETHUSDT", 300)])  # XBTUSDT: 1e-6 XBT per contract; ETHUSDT: 1e-3 ETH
    return [{"table": "liquidation", "action": "insert", "data": [
        {"orderID": f"{symbol}-{i}", "symbol": symbol, "side": "Sell", "price": PRICE[coin],
         "leavesQty": qty}]} for i, (symbol, qty) in enumerate(rows)]


def deribit(coin: str) -> list[dict[str, Any]]:
    trades = [(f"{coin}-PERPETUAL", 900), (f"{coin}-27MAR26", 900),
              (f"{coin}_USDC-PERPETUAL", 900 / PRICE[coin])]
    return [{"jsonrpc": "2.0", "method": "subscription", "params": {
        "channel": f"trades.future.{coin}.100ms", "data": [
            {"trade_id": f"{coin}-{i}", "trade_seq": i, "timestamp": TS + i,
             "instrument_name": name, "price": PRICE[coin], "index_price": PRICE[coin],
             "direction": "sell", "amount": amount, "tick_direction": 0, "liquidation": "T"}
            for i, (name, amount) in enumerate(trades)]}}]


def coinglass(coin: str) -> list[dict[str, Any]]:
    names = {"BTC": ["BTCUSDT", "XBTUSD", "BTCUSD_PERP"],
             "ETH": ["ETHUSDT", "ETHUSD", "ETHUSD_PERP"]}
    return [{"channel": "liquidationOrders", "data": [
        {"baseAsset": coin, "exName": ex, "symbol": symbol, "price": PRICE[coin], "side": 2,
         "time": TS + i, "volUsd": 900}
        for i, (ex, symbol) in enumerate(zip(["Binance", "Bitmex", "Binance"], names[coin],
                                             strict=True))]}]


FRAMES = {"binance": binance, "binance-coinm": binance_coinm, "bybit": bybit, "okx": okx,
          "bitmex": bitmex, "deribit": deribit, "coinglass": coinglass}
INSTRUMENTS: dict[str, Any] = {"binance-coinm": COINM_INFO, "bybit": BYBIT_INFO, "okx": OKX_INFO,
                               "bitmex": BITMEX_INFO}


def instruments_file(venue: str, folder: Path) -> str | None:
    """Write the venue's instrument table where `liqbot decode --instruments` reads it."""
    if venue not in INSTRUMENTS:
        return None
    path = folder / f"{venue}_instruments.json"
    path.write_text(json.dumps(INSTRUMENTS[venue]))
    return str(path)
