"""A Binance forceOrder payload kept as what its event row does not already say.

A USDⓈ-M `forceOrder` frame repeats the row: its symbol, side, filled quantity, average
price and trade time are the row's symbol, side, qty, price and ts_ms, and its order type,
time in force and status are the same constants in every frame (PROTOCOLS.md §1). What is
left, the remainder, is the event time E, the limit price p and whatever else differs
(the last fill l, later fields such as ps and st): it goes into the row's `raw` column as a
small JSON blob, and `frame` puts the whole payload back together from it and the row
(tests/feeds/store/test_compact.py proves that over tests/payloads/binance/). That costs
about a third of compressing the whole frame into a block (feeds/store/rawlog.py), which
every other payload still goes to, as does a Binance frame of any other shape.
"""

from __future__ import annotations

from typing import Any

import orjson

EXCHANGE = "binance"
_SIDE_CODE = {"long": "SELL", "short": "BUY"}  # SELL: a long position was liquidated


def remainder(raw: Any, symbol: str, side: str, qty: str, price: str, ts_ms: int
              ) -> bytes | None:
    """The part of a forceOrder frame its row does not hold, or None when the frame is of
    another shape (its payload is then kept whole). `qty` and `price` are the row's text."""
    o, event_ms = (raw.get("o"), raw.get("E")) if type(raw) is dict else (None, None)
    if (type(o) is not dict or type(event_ms) is not int or len(raw) != 3
            or raw.get("e") != "forceOrder" or "E" in o):
        return None
    if len(o) == 11:  # the documented frame, when these are its fields: nothing to copy
        try:
            if (o["s"] != symbol or o["S"] != _SIDE_CODE[side] or o["z"] != qty
                    or o["ap"] != price or o["T"] != ts_ms or o["o"] != "LIMIT"
                    or o["f"] != "IOC" or o["X"] != "FILLED"):
                return None
            q, last, p = o["q"], o["l"], o["p"]
        except KeyError:  # eleven fields, not these: kept whole
            return None
        rest: dict[str, Any] = {}
    else:  # later fields (ps, st) or fewer: whatever is not checked stays in the rest
        fields = _checked_copy(o, symbol, side, qty, price, ts_ms)
        if fields is None:
            return None
        rest, q, last, p = fields
    # Defaults: q and l are the filled qty, p the average price; absent or null stays whole.
    if q is None or last is None or p is None:
        return None
    if q != qty:
        rest["q"] = q
    if last != qty:
        rest["l"] = last
    if p != price:
        rest["p"] = p
    if event_ms != ts_ms:
        rest["E"] = event_ms
    try:
        text = orjson.dumps(rest)
    except TypeError:  # not a decoded frame (a Decimal inside): kept whole instead
        return None
    # A copy: orjson's bytes keep its 1 KiB output buffer, and a batch holding hundreds of
    # them cost 0.8 µs an event in allocation where the small copy costs 0.05.
    return text.decode().encode()


def frame(rest: bytes, symbol: str, side: str, qty: str, price: str, ts_ms: int
          ) -> dict[str, Any]:
    """The forceOrder frame back from its remainder and its row, keys in Binance's order."""
    extra = orjson.loads(rest)
    event_ms = extra.pop("E", ts_ms)
    o = {"s": symbol, "S": _SIDE_CODE[side], "o": "LIMIT", "f": "IOC", "q": qty, "p": price,
         "ap": price, "X": "FILLED", "l": qty, "z": qty, "T": ts_ms}
    o.update(extra)  # a default replaced keeps its place; later fields (ps, st) follow
    return {"e": "forceOrder", "E": event_ms, "o": o}


def _checked_copy(o: dict[str, Any], symbol: str, side: str, qty: str, price: str, ts_ms: int
                  ) -> tuple[dict[str, Any], Any, Any, Any] | None:
    """`o` less the fields its row holds and the constants, and its q, l and p; None when
    one of those is not what the row and the constants say."""
    rest = o.copy()
    pop = rest.pop
    # The fields the row holds must be exactly the row's (ap is 0 on an unfilled edge case,
    # when the parser takes p: the row's price is then not ap, and the frame stays whole),
    # and the constants must be there.
    if (pop("s", None) != symbol or pop("S", None) != _SIDE_CODE[side]
            or pop("z", None) != qty or pop("ap", None) != price
            or pop("T", None) != ts_ms or pop("o", None) != "LIMIT"
            or pop("f", None) != "IOC" or pop("X", None) != "FILLED"):
        return None
    return rest, pop("q", None), pop("l", None), pop("p", None)
