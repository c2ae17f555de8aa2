"""Per-venue parser throughput: frames/s of `liqbot decode`'s decoder vs json.loads alone.

Baseline: `json.loads` of the very same frame texts, measured in the same run; the ratio
says how much of a frame's cost is our normalization (side rules, Decimal, contract
conversion) on top of the JSON decode every client pays anyway.

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


def _rate(fn: Callable[[str], object], frames: list[str]) -> float:
    start = time.perf_counter()
    for f in frames:
        fn(f)
    return len(frames) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=50_000)
    p.add_argument("--fixtures", type=Path, default=FIXTURES,
                   help="tests/payloads (or a flat shared/fixtures/exchanges)")
    args = p.parse_args(argv)
    print(f"{'venue':<14} {'ours frames/s':>14} {'json.loads/s':>14} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = _instruments(Path(tmp))
        for venue in VENUES:
            frames = _frames(venue, args.frames, args.fixtures)
            decode = venue_module(venue).decoder(paths.get(venue))
            if not decode(frames[0]):
                raise SystemExit(f"{venue}: the benchmark frame decoded to no event")
            baseline = _rate(json.loads, frames)
            ours = _rate(decode, frames)
            print(f"{venue:<14} {ours:>14,.0f} {baseline:>14,.0f} {ours / baseline:>7.3f}")
    print("ratio = our decoder / json.loads alone on the same frames (same run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
