"""Soak: `liqbot run` against all seven venues' fake servers at 10× the busiest hour, for minutes.

    make soak                                   # 10 minutes (the issue-16 check)
    .venv/bin/python bench/soak.py --minutes 1  # a short look

The bot runs as it ships (`python -m bot.cli.main run`, its own process) with every venue's
websocket pointed at a local server speaking that venue's protocol (tests/helpers/fake_ws*.py:
Binance USDⓈ-M and COIN-M, Bybit v5 with op-ping and acks, OKX with text ping, BitMEX with
text ping, Deribit JSON-RPC with test_request heartbeats, CoinGlass keyed), and REST hosts
on a closed port, so each venue starts from its shipped instrument snapshot. This process
pushes liquidations at a steady rate and samples, every `--sample-s`:
- the bot's resident memory (/proc), printed as a curve;
- its event-loop lag, from its own /metrics (`liqbot_event_loop_lag_seconds`, a 10 ms probe);
- events received by its feeds (`liqbot_events_total`) against events sent: the backlog.

The rate. The busiest hour the project knows is 2026-01-13 22:00 UTC: $458.07M liquidated
market-wide (DESIGN.md; the data folder leaves that month out). Divided by the mean event
size of the one event-level record in ../shared/data (OKX, 2026-03-04/05, ctVal-corrected:
$4,769, median $642) that hour is 26.7 events/s; 10× is 267 events/s. Sizes are drawn
log-normally with that median and mean, 91 % shorts as in that hour, across BTC/ETH/SOL.

Targets (issue 16): RSS after warm-up grows ≤ 5 %, loop-lag p99 < 50 ms, no backlog (every
event sent is received, within a second of being sent, at every sample after warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    clean_env,
    count_events,
    free_port,
    loadavg,
    progress,
    rss_mb,
    table,
    verdict,
)
from bench.soak_frames import (  # noqa: E402
    Event,
    binance_frames,
    bitmex_frames,
    bybit_frames,
    coinglass_frames,
    coinm_frames,
    deribit_frames,
    okx_frames,
)
from tests.helpers.fake_ws import FakeExchange, bybit_replies, okx_replies  # noqa: E402
from tests.helpers.fake_ws_venues import DeribitFake, TextPingFake  # noqa: E402

BUSIEST_HOUR_USD = 458.07e6  # 2026-01-13 22:00-23:00 UTC, DESIGN.md
MEAN_EVENT_USD, MEDIAN_EVENT_USD = 4_769.0, 641.6  # OKX events in ../shared/data/multivenue
SHORT_SHARE = 419.03 / 458.07
BASE_RATE = BUSIEST_HOUR_USD / MEAN_EVENT_USD / 3600  # events/s at 1×
RSS_GROWTH_MAX, LAG_P99_MAX_S = 0.05, 0.050
# Share of the events per venue (roughly their share of liquidation volume).
WEIGHTS = {"binance": 0.28, "bybit": 0.24, "okx": 0.12, "coinglass": 0.16, "binance-coinm": 0.06,
           "bitmex": 0.07, "deribit": 0.07}
COINS = (("BTC", 95_000.0, 0.5), ("ETH", 3_300.0, 0.3), ("SOL", 140.0, 0.2))
# Coins each venue's shipped tables and default subscriptions cover.
VENUE_COINS = {"binance-coinm": ("BTC", "ETH"), "bitmex": ("BTC",), "deribit": ("BTC", "ETH")}


# -- the fakes and the load ------------------------------------------------------------------


@dataclass
class Venue:
    name: str
    fake: FakeExchange
    build: Callable[[list[Event]], list[Any]]
    path_suffix: str = ""  # Bybit: only the linear socket gets frames
    sent: int = 0
    coins: tuple[str, ...] = ("BTC", "ETH", "SOL")
    last_ts: int = 0


async def _push(v: Venue, frames: list[Any]) -> None:
    """Send to each open connection of the venue (Bybit: the one subscribed to linear)."""
    live = getattr(v.fake, "_live")  # noqa: B009 (the fake's open sockets, by connection)
    for conn in v.fake.open_connections():
        if v.path_suffix and not conn.path.split("?")[0].endswith(v.path_suffix):
            continue
        ws = live.get(conn.index, (None,))[0]
        if ws is None or ws.closed:
            continue
        for frame in frames:
            await ws.send_str(json.dumps(frame, separators=(",", ":")))


@dataclass
class Load:
    rate: float
    rng: random.Random = field(default_factory=lambda: random.Random(16))
    sigma: float = math.sqrt(2 * math.log(MEAN_EVENT_USD / MEDIAN_EVENT_USD))

    def events(self, v: Venue, n: int, now_ms: int) -> list[Event]:
        coins = [c for c in COINS if c[0] in v.coins]
        picks = self.rng.choices(coins, [w for *_, w in coins], k=n)
        out = []
        for coin, price, _ in picks:
            # Strictly rising exchange times per venue: two events never share a key.
            v.last_ts = max(now_ms, v.last_ts + 1)
            usd = min(self.rng.lognormvariate(math.log(MEDIAN_EVENT_USD), self.sigma), 2e6)
            out.append(Event(coin, price * (1 + self.rng.gauss(0, 0.001)), max(usd, 20.0),
                             self.rng.random() < SHORT_SHARE, v.last_ts))
        return out


async def drive(venues: list[Venue], load: Load, stop: asyncio.Event, tick_s: float = 0.1) -> None:
    """Send each venue its share of `load.rate`, a Poisson count per tick."""
    start = time.monotonic()
    ticks = 0
    while not stop.is_set():
        now_ms = int(time.time() * 1000)
        for v in venues:
            lam = load.rate * WEIGHTS[v.name] * tick_s
            n = _poisson(load.rng, lam)
            if not n or not v.fake.open_connections():
                continue
            events = load.events(v, n, now_ms)
            await _push(v, v.build(events))
            v.sent += len(events)
        ticks += 1
        await asyncio.sleep(max(0.0, start + ticks * tick_s - time.monotonic()))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    n, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


# -- the bot and what we read from it --------------------------------------------------------




def write_config(folder: Path, venues: list[Venue], ops: str) -> Path:
    dead = f"http://127.0.0.1:{free_port()}"  # closed: REST falls back to shipped tables
    urls = {v.name: v.fake.url for v in venues}
    lines = ["[feeds]", "venues = " + json.dumps([v.name for v in venues]), "[feeds.ws_urls]"]
    lines += [f'"{name}" = "{url}"' for name, url in urls.items()]
    lines += ["[feeds.rest_urls]"] + [f'"{n}" = "{dead}"' for n in ("bybit", "okx",
                                                                    "binance-coinm")]
    lines += ["[funding]", "venues = []", "[coinglass]", f'url = "{dead}"', "[ops]",
              f'listen = "{ops}"', "summary_s = 60"]
    path = folder / "soak.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_bot(cfg: Path, folder: Path) -> tuple[subprocess.Popen[bytes], IO[str]]:
    """`liqbot run` as it ships, its own process; its log and alerts go to soak.log."""
    env = clean_env(LIQBOT_COINGLASS_API_KEY="soak-test-key-0123456789")  # CoinGlass needs a key
    log = open(folder / "soak.log", "w")  # noqa: SIM115 (open for the bot's whole life)
    bot = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "run", "--config", str(cfg),
                            "--db", str(folder / "soak.db")], cwd=ROOT, env=env,
                           stdout=log, stderr=subprocess.STDOUT)
    return bot, log


_SAMPLE = re.compile(r'^(\w+)(?:\{([^}]*)\})? (\S+)$')


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """Prometheus text -> {name: {labels: value}} (labels as the raw `k="v",...` text)."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and not line.startswith("#"):
            out[m.group(1)][m.group(2) or ""] = float(m.group(3))
    return out


def lag_quantile(before: dict[str, float], after: dict[str, float], q: float) -> float:
    """The upper bound of the bucket holding quantile `q` of the loop-lag samples in between."""
    def cum(d: dict[str, float]) -> list[tuple[float, float]]:
        rows = [(float(re.search(r'le="([^"]+)"', k).group(1)), v)  # type: ignore[union-attr]
                for k, v in d.items()]
        return sorted(rows)
    b, a = dict(cum(before)), cum(after)
    total = a[-1][1] - b.get(a[-1][0], 0.0)
    for le, count in a:
        if total and (count - b.get(le, 0.0)) / total >= q:
            return le
    return math.inf




@dataclass
class Sample:
    t: float
    rss_mb: float
    sent: int
    received: int
    lag_max: float
    buckets: dict[str, float]


async def soak(minutes: float, rate: float, warmup_s: float, sample_s: float,
               keep: Path | None) -> dict[str, Any]:
    ids = [0]
    bitmex_open: list[str] = []
    fakes: list[Venue] = [
        Venue("binance", FakeExchange(), binance_frames),
        Venue("binance-coinm", FakeExchange(path="/ws/!forceOrder@arr"), coinm_frames,
              coins=VENUE_COINS["binance-coinm"]),
        Venue("bybit", FakeExchange(path="/v5/public", responder=bybit_replies()), bybit_frames,
              path_suffix="/linear"),
        Venue("okx", FakeExchange(path="/ws/v5/public", responder=okx_replies), okx_frames),
        Venue("bitmex", TextPingFake(path="/realtime?subscribe=liquidation"),
              lambda es: bitmex_frames(es, bitmex_open), coins=VENUE_COINS["bitmex"]),
        Venue("deribit", DeribitFake(test_every_s=10.0, answer_within_s=5.0),
              lambda es: deribit_frames(es, ids), coins=VENUE_COINS["deribit"]),
        Venue("coinglass", TextPingFake(path="/ws-api"), coinglass_frames),
    ]
    for v in fakes:
        await v.fake.start()
    tmp = tempfile.TemporaryDirectory(prefix="liqbot-soak-")
    folder = keep or Path(tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    ops = f"127.0.0.1:{free_port()}"
    cfg = write_config(folder, fakes, ops)
    bot, log = start_bot(cfg, folder)
    samples: list[Sample] = []
    stop = asyncio.Event()
    driver: asyncio.Task[None] | None = None
    try:
        async with aiohttp.ClientSession() as http:
            async def scrape() -> dict[str, dict[str, float]]:
                async with http.get(f"http://{ops}/metrics") as r:
                    return parse_metrics(await r.text())

            deadline = time.monotonic() + 30
            while True:  # wait for every venue's socket before the clock starts
                if bot.poll() is not None:
                    raise RuntimeError(f"liqbot exited: {(folder / 'soak.log').read_text()[-800:]}")
                if all(v.fake.open_connections() for v in fakes):
                    break
                if time.monotonic() > deadline:
                    missing = [v.name for v in fakes if not v.fake.open_connections()]
                    raise RuntimeError(f"venues never connected: {missing}")
                await asyncio.sleep(0.2)
            progress(f"all {len(fakes)} venues connected; pushing {rate:.0f} events/s for "
                     f"{minutes:g} min")
            driver = asyncio.create_task(drive(fakes, Load(rate), stop))
            t0 = time.monotonic()
            end = t0 + minutes * 60
            while (now := time.monotonic()) < end:
                await asyncio.sleep(min(sample_s, end - now))
                if bot.poll() is not None:
                    raise RuntimeError(f"liqbot exited: {(folder / 'soak.log').read_text()[-800:]}")
                m = await scrape()
                samples.append(Sample(
                    time.monotonic() - t0, rss_mb(bot.pid), sum(v.sent for v in fakes),
                    int(sum(m.get("liqbot_events_total", {}).values())),
                    m.get("liqbot_event_loop_lag_max_seconds", {}).get("", math.nan),
                    {k: v for k, v in m.get("liqbot_event_loop_lag_seconds_bucket", {}).items()}))
                s = samples[-1]
                progress(f"  {s.t:5.0f}s  RSS {s.rss_mb:6.1f} MB  sent {s.sent:,}  "
                         f"received {s.received:,}")
            stop.set()
            await driver
            await asyncio.sleep(1.0)
            final = await scrape()
        sent_by = {v.name: v.sent for v in fakes}
        got_by = {re.search(r'venue="([^"]+)"', k).group(1): int(n)  # type: ignore[union-attr]
                  for k, n in final.get("liqbot_events_total", {}).items()}
    finally:
        stop.set()
        if driver is not None and not driver.done():
            driver.cancel()
        bot.terminate()
        try:
            bot.wait(timeout=60)
        except subprocess.TimeoutExpired:
            bot.kill()
            bot.wait()
        log.close()
        for v in fakes:
            await v.fake.stop()
    stored = count_events(folder / "soak.db")
    text = (folder / "soak.log").read_text()
    tmp.cleanup()
    return {"samples": samples, "sent_by": sent_by, "got_by": got_by, "stored": stored,
            "tracebacks": text.count("Traceback"), "log_lines": text.count("\n"),
            "warmup_s": warmup_s, "minutes": minutes, "rate": rate}




def report(res: dict[str, Any]) -> dict[str, Any]:
    samples: list[Sample] = res["samples"]
    warm = [s for s in samples if s.t >= res["warmup_s"]] or samples[-1:]
    print(f"\nRSS curve of `liqbot run` (MB, every {samples[0].t:.0f} s; warm-up to "
          f"{res['warmup_s']:.0f} s):")
    step = max(1, len(samples) // 30)
    print("  " + "  ".join(f"{s.t:.0f}s {s.rss_mb:.1f}" for s in samples[::step]))
    base, last = warm[0].rss_mb, warm[-1].rss_mb
    growth = (last - base) / base
    peak = max(s.rss_mb for s in warm)
    first_idx = samples.index(warm[0])
    before = samples[first_idx - 1].buckets if first_idx else {}
    p99 = lag_quantile(before, samples[-1].buckets, 0.99)
    p50 = lag_quantile(before, samples[-1].buckets, 0.50)
    lag_max = max(s.lag_max for s in warm)
    backlog = [s.sent - s.received for s in warm]
    per_s = res["rate"]
    sent, got = sum(res["sent_by"].values()), sum(res["got_by"].values())
    rows = [[v, f"{res['sent_by'][v]:,}", f"{res['got_by'].get(v, 0):,}"] for v in res["sent_by"]]
    table(["venue", "events sent", "received by the bot"], rows + [["all", f"{sent:,}",
                                                                     f"{got:,}"]])
    print(f"stored in the database at the end: {res['stored']:,} events "
          f"({'all' if res['stored'] == sent else 'NOT all'} of those sent); "
          f"{res['log_lines']} log lines, {res['tracebacks']} tracebacks")
    rss_ok = growth <= RSS_GROWTH_MAX
    lag_ok = p99 <= LAG_P99_MAX_S
    # Backlog: at most one second of events in flight at any sample, none at the end.
    backlog_ok = max(backlog) <= per_s and got == sent and res["stored"] == sent
    table(["measure (after warm-up)", "value", "target", ""], [
        ["RSS growth", f"{base:.1f} -> {last:.1f} MB ({growth:+.1%}), peak {peak:.1f}",
         f"≤ {RSS_GROWTH_MAX:.0%}", verdict(rss_ok)],
        ["event-loop lag", f"p50 ≤ {p50 * 1000:.1f} ms, p99 ≤ {p99 * 1000:.1f} ms "
                           f"(bucket bounds), max {lag_max * 1000:.0f} ms",
         f"p99 < {LAG_P99_MAX_S * 1000:.0f} ms", verdict(lag_ok)],
        ["backlog (sent - received)", f"max {max(backlog):,} at a sample, "
                                      f"{sent - got:,} at the end",
         f"≤ 1 s of events ({per_s:.0f})", verdict(backlog_ok)],
    ])
    passed = rss_ok and lag_ok and backlog_ok and not res["tracebacks"]
    print(f"soak: {res['minutes']:g} min at {per_s:.0f} events/s "
          f"({per_s / BASE_RATE:.0f}× the busiest hour) -> {verdict(passed)}")
    return {"passed": passed, "rss_growth": growth, "rss_mb": [s.rss_mb for s in samples],
            "lag_p99_s": p99, "lag_max_s": lag_max, "sent": sent, "received": got,
            "stored": res["stored"], "max_backlog": max(backlog)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to push (default 10)")
    ap.add_argument("--times", type=float, default=10.0,
                    help="multiple of the busiest hour's event rate (default 10)")
    ap.add_argument("--warmup-s", type=float, help="seconds before RSS and lag count "
                    "(default: a fifth of the run, at most 120)")
    ap.add_argument("--sample-s", type=float, help="seconds between samples "
                    "(default: 10, or less for a short run)")
    ap.add_argument("--keep", type=Path, help="keep the database and log in this folder")
    args = ap.parse_args(argv)
    if not args.minutes > 0 or not args.times > 0:
        ap.error("--minutes and --times must be positive")
    seconds = args.minutes * 60
    warmup = args.warmup_s if args.warmup_s is not None else min(120.0, seconds / 5)
    sample = args.sample_s or min(10.0, max(1.0, seconds / 30))
    rate = BASE_RATE * args.times
    print(f"soak: 7 venues through local fakes, {rate:.0f} events/s = {args.times:g}× the "
          f"busiest hour (${BUSIEST_HOUR_USD / 1e6:.2f}M / ${MEAN_EVENT_USD:,.0f} mean event "
          f"= {BASE_RATE:.1f}/s), {args.minutes:g} min ({loadavg()})")
    res = asyncio.run(soak(args.minutes, rate, warmup, sample, args.keep))
    return report(res)


if __name__ == "__main__":
    sys.exit(0 if main()["passed"] else 1)
