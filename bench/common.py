"""Shared benchmark helpers: synthetic Binance frames and store rows, timing, tables, verdicts."""

from __future__ import annotations

import json
import math
import os
import random
import resource
import socket
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "bench" / ".data"
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a whole hour
MINUTE_MS = 60_000

# Binance USDⓈ-M perpetuals: (symbol, price, price decimals, qty decimals, weight).
BINANCE_SYMBOLS: tuple[tuple[str, float, int, int, float], ...] = (
    ("BTCUSDT", 95_000.0, 1, 3, 30), ("ETHUSDT", 3_500.0, 2, 3, 20), ("SOLUSDT", 180.0, 2, 0, 8),
    ("XRPUSDT", 2.4, 4, 1, 6), ("DOGEUSDT", 0.32, 5, 0, 6), ("BNBUSDT", 680.0, 2, 2, 4),
    ("SUIUSDT", 3.9, 4, 1, 4), ("ADAUSDT", 0.9, 4, 0, 3), ("AVAXUSDT", 35.0, 3, 0, 3),
    ("LINKUSDT", 21.0, 3, 2, 3), ("LTCUSDT", 110.0, 2, 3, 2), ("1000PEPEUSDT", 0.012, 7, 0, 3),
    ("DOTUSDT", 6.5, 3, 1, 2), ("TRXUSDT", 0.25, 5, 0, 2), ("WIFUSDT", 1.9, 4, 1, 2),
    ("NEARUSDT", 5.2, 3, 0, 1), ("ARBUSDT", 0.8, 4, 1, 1), ("BTCUSDC", 95_000.0, 1, 3, 1),
)

# Venues for the totals store: (exchange, weight, sampled feed, symbol pattern).
EXCHANGES: tuple[tuple[str, float, bool, str], ...] = (
    ("binance", 0.45, True, "{}USDT"), ("bybit", 0.35, False, "{}USDT"),
    ("okx", 0.20, True, "{}-USDT-SWAP"),
)
# Coins for the totals store: (coin, price, price decimals, qty decimals, weight).
COINS: tuple[tuple[str, float, int, int, float], ...] = (
    ("BTC", 95_000.0, 1, 3, 30), ("ETH", 3_500.0, 2, 3, 20), ("SOL", 180.0, 2, 2, 8),
    ("XRP", 2.4, 4, 1, 6), ("DOGE", 0.32, 5, 0, 6), ("BNB", 680.0, 2, 2, 4), ("SUI", 3.9, 4, 1, 4),
    ("ADA", 0.9, 4, 0, 3.5), ("AVAX", 35.0, 3, 1, 3), ("LINK", 21.0, 3, 2, 3),
    ("LTC", 110.0, 2, 3, 2.5),
    ("DOT", 6.5, 3, 1, 2), ("TRX", 0.25, 5, 0, 2), ("NEAR", 5.2, 3, 1, 2), ("ARB", 0.8, 4, 1, 2),
)


def synth_frames(n: int, seed: int = 1, t0_ms: int = T0_MS,
                 gap_ms: tuple[int, int] = (1, 250)) -> list[tuple[str, int]]:
    """Return n distinct raw `forceOrder` frames as (JSON text, receive ms); T rises strictly,
    by a uniform `gap_ms` step (milliseconds, at least 1) from one frame to the next."""
    rng = random.Random(seed)
    picks = rng.choices(range(len(BINANCE_SYMBOLS)), [s[4] for s in BINANCE_SYMBOLS], k=n)
    out: list[tuple[str, int]] = []
    t = t0_ms
    for i in range(n):
        symbol, base, pdp, qdp, _ = BINANCE_SYMBOLS[picks[i]]
        t += rng.randint(*gap_ms)
        sell = rng.random() < 0.55  # SELL: a long was liquidated
        ap = base * math.exp(rng.gauss(0.0, 0.01))
        usd = min(rng.lognormvariate(math.log(1500.0), 1.4), 3e6)
        z = f"{max(round(usd / ap, qdp), 10.0 ** -qdp):.{qdp}f}"
        slip = rng.uniform(0.002, 0.02)
        frame = {
            "e": "forceOrder", "E": t + rng.randint(0, 3),
            "o": {"s": symbol, "S": "SELL" if sell else "BUY", "o": "LIMIT", "f": "IOC", "q": z,
                  "p": f"{ap * (1 - slip if sell else 1 + slip):.{pdp}f}", "ap": f"{ap:.{pdp}f}",
                  "X": "FILLED", "l": z, "z": z, "T": t},
        }
        out.append((json.dumps(frame, separators=(",", ":")), t + rng.randint(20, 400)))
    return out


def synth_events(
    n: int, days: int, seed: int = 1, chunk: int = 1_000_000, t0_ms: int = T0_MS,
) -> Iterator[list[tuple[Any, ...]]]:
    """Yield store rows (the store's INSERT column order, raw NULL) by time, `chunk` at a time.

    Minute rates follow a daily cycle with noise plus ~2 burst episodes a day (cascades and
    squeezes: 20-150x the base rate, one side dominating); BTC/ETH carry half the flow.
    """
    rng = np.random.default_rng(seed)
    minutes = days * 1440
    m = np.arange(minutes)
    w = (1.0 + 0.4 * np.sin(2 * np.pi * m / 1440)) * rng.lognormal(0.0, 0.4, minutes)
    p_long = np.full(minutes, 0.55)
    for _ in range(2 * days):
        s, dur = int(rng.integers(0, minutes)), int(rng.integers(5, 90))
        k = np.arange(min(dur, minutes - s))
        w[s:s + len(k)] += rng.uniform(20, 150) * np.exp(-k / (dur / 3))
        p_long[s:s + len(k)] = 0.88 if rng.random() < 0.6 else 0.12
    counts = rng.multinomial(n, w / w.sum())
    ts = np.repeat(t0_ms + m * MINUTE_MS, counts) + rng.integers(0, MINUTE_MS, n)
    ts.sort()  # offsets stay inside their minute, so minute blocks keep their order
    is_long = rng.random(n) < np.repeat(p_long, counts)
    ex = rng.choice(len(EXCHANGES), n, p=_norm([e[1] for e in EXCHANGES]))
    co = rng.choice(len(COINS), n, p=_norm([c[4] for c in COINS]))
    base, pdp, qdp = (np.array([c[i] for c in COINS]) for i in (1, 2, 3))
    phase = rng.uniform(0, 2 * np.pi, len(COINS))
    drift = 1 + 0.08 * np.sin(2 * np.pi * (ts - t0_ms) / (10 * 86_400_000) + phase[co])
    pscale, qscale = 10.0 ** pdp[co], 10.0 ** qdp[co]
    price = np.round(base[co] * drift * pscale) / pscale
    usd_target = np.clip(rng.lognormal(np.log(2000.0), 1.4, n), 5.0, 5e6)
    qty = np.maximum(np.round(usd_target / price * qscale), 1.0) / qscale
    usd = qty * price
    uid = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)  # like blake2b event keys
    while np.unique(uid).size < n:  # ~3e-6 chance at 10M; keep row count exact
        uid = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)
    recv = ts + rng.integers(20, 400, n)
    symbols = [[e[3].format(c[0]) for c in COINS] for e in EXCHANGES]
    for i in range(0, n, chunk):
        sl = slice(i, i + chunk)
        exs, cos = ex[sl].tolist(), co[sl].tolist()
        yield list(zip(
            uid[sl].tolist(), [EXCHANGES[e][0] for e in exs],
            [symbols[e][c] for e, c in zip(exs, cos, strict=False)], [COINS[c][0] for c in cos],
            ["long" if b else "short" for b in is_long[sl].tolist()],
            [f"{q:.{d}f}" for q, d in zip(qty[sl].tolist(), qdp[co[sl]].tolist(), strict=False)],
            [f"{p:.{d}f}" for p, d in zip(price[sl].tolist(), pdp[co[sl]].tolist(), strict=False)],
            usd[sl].tolist(), ts[sl].tolist(), recv[sl].tolist(),
            [int(EXCHANGES[e][2]) for e in exs], [None] * len(exs), strict=True,
        ))


def _norm(weights: Sequence[float]) -> np.ndarray:
    a = np.asarray(weights, dtype=float)
    return a / a.sum()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    print(line)
    for j, r in enumerate(cells):
        print("| " + " | ".join(c.rjust(w) if j and i else c.ljust(w)
                                for i, (c, w) in enumerate(zip(r, widths, strict=False))) + " |")
        if j == 0:
            print(line)
    print(line)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "*** FAIL ***"


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"load average {load} on {os.cpu_count()} CPUs"


# -- processes the benches start ---------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """A running process's resident memory in MB (NaN once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (closed again: connects are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment minus the developer's LIQBOT_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIQBOT_")}
    env.update(extra)
    return env


def count_events(db: Path) -> int:
    """Events stored in `db`, read on a read-only connection (-1 when it cannot be read)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return -1
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return -1
    finally:
        conn.close()
