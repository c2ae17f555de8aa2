"""Per-venue parser throughput: frames/s of `liqbot decode`'s decoder vs orjson.loads alone.

Baseline: `orjson.loads` of the very same frame texts, measured in the same run: the decoder
every parser uses (feeds/venues/parsing.py), so the ratio says how much of a frame's cost
is our normalization (side rules, Decimal, contract conversion, the Liquidation) on top of
the fastest JSON decode there is. Stdlib `json.loads` is printed beside it as information.

    .venv/bin/python bench/parsers.py [--frames 50000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feeds.venues.registry import VENUES, venue_module  # noqa: E402

FIXTURES = ROOT / "tests" / "payloads"  # the conformance corpus: one folder per venue
FIXTURE = {
    "binance": "binance_usdm_forceorder.json",
    "binance-coinm": "binance_coinm_forceorder.json",
    "bybit": "bybit_all_liquidation.json",
    "okx": "okx_liquidation_orders.json",
    "bitmex": "bitmex_liquidation_insert.json",
    "deribit": "deribit_trade_liquidation.json",
}
COINGLASS_FRAME = {"channel": "liquidationOrders", "data": [
    {"baseAsset": "BTC", "exName": "Binance", "symbol": "BTCUSDT", "price": 95123.4,
     "side": 2, "time": 1_767_225_600_000, "volUsd": 25012.5}]}


def _instruments(tmp: Path) -> dict[str, str | None]:
    """Contract tables the venues need, written as the venues' own responses."""
    coinm = tmp / "coinm.json"
    coinm.write_text(json.dumps({"symbols": [
        {"symbol": "BTCUSD_200925", "pair": "BTCUSD", "contractSize": 100}]}))
    okx = tmp / "okx.json"
    okx.write_text(json.dumps({"code": "0", "msg": "", "data": [
        {"instId": "IOST-USDT-SWAP", "ctVal": "10", "ctValCcy": "IOST", "ctType": "linear"}]}))
    return {"binance-coinm": str(coinm), "okx": str(okx)}


def _fixture(fixtures: Path, venue: str) -> str:
    path = fixtures / FIXTURE[venue]  # a flat folder (shared/fixtures) or one per venue
    if not path.exists():
        path = next(fixtures.glob(f"*/{FIXTURE[venue]}"), path)
    return path.read_text()


def _frames(venue: str, n: int, fixtures: Path = FIXTURES) -> list[str]:
    """n distinct frames: the fixture with its identifiers varied (BitMEX tracks orderIDs)."""
    base = COINGLASS_FRAME if venue == "coinglass" else json.loads(_fixture(fixtures, venue))
    text = json.dumps(base)
    out = []
    for i in range(n):
        frame = text
        if venue == "bitmex":
            frame = frame.replace(base["data"][0]["orderID"], f"bench-{i:012d}")
        out.append(frame)
    return out


def _rate(fn: Callable[[str], object], frames: list[str], repeat: int = 3) -> float:
    """The best of `repeat` passes (a pass disturbed by other load is not the parser's)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for f in frames:
            fn(f)
        best = min(best, time.perf_counter() - start)
    return len(frames) / best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=50_000)
    p.add_argument("--fixtures", type=Path, default=FIXTURES,
                   help="tests/payloads (or a flat shared/fixtures/exchanges)")
    args = p.parse_args(argv)
    print(f"{'venue':<14} {'ours frames/s':>14} {'orjson.loads/s':>15} {'ratio':>7}"
          f" {'(info) json.loads/s':>20}")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = _instruments(Path(tmp))
        for venue in VENUES:
            frames = _frames(venue, args.frames, args.fixtures)
            decode = venue_module(venue).decoder(paths.get(venue))
            if not decode(frames[0]):
                raise SystemExit(f"{venue}: the benchmark frame decoded to no event")
            baseline = _rate(orjson.loads, frames)
            ours = _rate(decode, frames)
            stdlib = _rate(json.loads, frames)
            ratios.append(ours / baseline)
            print(f"{venue:<14} {ours:>14,.0f} {baseline:>15,.0f} {ours / baseline:>7.3f}"
                  f" {stdlib:>20,.0f}")
    print(f"ratio = our decoder / orjson.loads alone on the same frames (best of 3 passes each, "
          f"same run): {min(ratios):.2f} to {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
