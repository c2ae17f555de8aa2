"""Start-up and idle memory: what every `liqbot` command costs before it does anything.

Measured in the same run, interleaved so machine load hits all alike:
- `liqbot --help` and `liqbot totals --window 24h` (on a small database), each against the
  bare interpreter, `python -c pass`: medians of `--runs` wall-clock starts, the ratio, and
  what liqbot adds on top (target: each command at most 0.4 s);
- `python -X importtime` of the same two commands: the heaviest top-level imports, and
  whether any heavy library (pandas, pyarrow, numpy, matplotlib, discord, telegram,
  sqlite_utils) was loaded at all;
- `liqbot run` idle with no network: every venue, REST and funding URL pointed at a closed
  port on 127.0.0.1, so each connect is refused at once and the bot idles in its retry
  loops; its resident memory every second for `--idle-s` seconds against the bare
  interpreter's (target: at most 120 MB), and which heavy libraries its memory maps hold.

    .venv/bin/python bench/startup.py [--runs 7] [--idle-s 30]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    clean_env,
    free_port,
    loadavg,
    progress,
    rss_mb,
    table,
    verdict,
)
from feeds.venues.names import FUNDING_VENUES, VENUE_NAMES  # noqa: E402

START_TARGET_S = 0.4
IDLE_TARGET_MB = 120.0
HEAVY = ("pandas", "pyarrow", "numpy", "matplotlib", "discord", "telegram", "sqlite_utils")
VENUES = tuple(v for v in VENUE_NAMES if v != "coinglass")  # CoinGlass needs a paid key
REST_VENUES = ("binance", "binance-coinm", "bybit", "okx")  # the others take no REST URL
FUNDING = FUNDING_VENUES


def _env() -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE: every start reads the same cached bytecode
    return clean_env(PYTHONDONTWRITEBYTECODE="1")


def _liqbot(*args: str) -> list[str]:
    # The checkout's code (cwd = ROOT), the way the console script runs main().
    return [sys.executable, "-m", "bot.cli.main", *args]


def _time(cmd: list[str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])} failed: {r.stderr.strip()[-300:]}")
    return elapsed


def _make_db(folder: Path) -> str:
    from decimal import Decimal

    from feeds.model import Liquidation, Side  # the bench process may import what it likes
    from feeds.store import Store

    path = folder / "startup.db"
    store = Store(path)
    now = int(time.time() * 1000)
    store.insert_liquidations(
        Liquidation(exchange="bybit", symbol="BTCUSDT", position_side=Side.SHORT,
                    qty_base=Decimal("0.1"), price=Decimal(95_000), notional_usd=Decimal(9_500),
                    ts_exchange_ms=now - i * 60_000, ts_recv_ms=now - i * 60_000 + 50,
                    sampled=False, base="BTC")
        for i in range(1, 200))
    store.close()
    return str(path)


def startup(db: str, runs: int) -> dict[str, Any]:
    cmds = {"python -c pass": [sys.executable, "-c", "pass"],
            "liqbot --help": _liqbot("--help"),
            "liqbot totals": _liqbot("totals", "--db", db, "--window", "24h")}
    for cmd in cmds.values():
        _time(cmd)  # warm the page cache and bytecode once, unmeasured
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(_time(cmd))
    return {name: statistics.median(ts) for name, ts in times.items()} | {
        f"{name} spread": (min(ts), max(ts)) for name, ts in times.items()}


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_profile(args: list[str]) -> tuple[list[tuple[str, float]], list[str]]:
    """(packages by the import time of all their modules, heaviest first; heavy ones loaded).

    Each module's own ("self") time summed per top-level package: cumulative times nest
    (the first module to import aiohttp carries all of it), self times add up.
    """
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "bot.cli.main", *args],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    per: dict[str, float] = {}
    for line in r.stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            name = m.group(4).split(".")[0]
            per[name] = per.get(name, 0.0) + int(m.group(1)) / 1000
    top = sorted(per.items(), key=lambda x: -x[1])
    return top, sorted(n for n in HEAVY if n in per)




def _mapped_heavy(pid: int) -> list[str]:
    """Heavy packages whose files the process has mapped (their compiled extensions)."""
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
        text = f.read()
    return sorted(n for n in HEAVY if f"/site-packages/{n}/" in text or f"/{n}.libs/" in text)




def idle_rss(folder: Path, seconds: float) -> dict[str, Any]:
    port = free_port()
    dead = f"127.0.0.1:{port}"
    toml = ["[feeds]", f"venues = {list(VENUES)!r}".replace("'", '"'), "[feeds.ws_urls]"]
    toml += [f'{v} = "ws://{dead}/ws"' for v in VENUES]
    toml += ["[feeds.rest_urls]"] + [f'{v} = "http://{dead}"' for v in REST_VENUES]
    toml += ["[funding.urls]"] + [f'{v} = "http://{dead}"' for v in FUNDING]
    cfg = folder / "offline.toml"
    cfg.write_text("\n".join(toml) + "\n")
    base = subprocess.run(
        [sys.executable, "-c", "print(open('/proc/self/status').read())"],
        capture_output=True, text=True, check=True).stdout
    base_mb = int(re.search(r"VmRSS:\s+(\d+)", base).group(1)) / 1024  # type: ignore[union-attr]
    env = _env() | {"LIQBOT_OPS_LISTEN": "127.0.0.1:0"}
    log = folder / "idle.log"
    with open(log, "w") as err:  # a file, not a pipe nobody reads while it idles
        proc = subprocess.Popen(
            _liqbot("run", "--config", str(cfg), "--db", str(folder / "idle.db")),
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    curve: list[tuple[float, float]] = []
    heavy: list[str] = []
    try:
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < seconds:
            if proc.poll() is not None:
                raise RuntimeError(f"liqbot run exited: {log.read_text()[-500:]}")
            curve.append((elapsed, rss_mb(proc.pid)))
            time.sleep(1.0)
        heavy = _mapped_heavy(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    lines = log.read_text().count("\n")
    return {"baseline_mb": base_mb, "curve": curve, "final_mb": curve[-1][1],
            "peak_mb": max(mb for _, mb in curve), "heavy_mapped": heavy, "log_lines": lines,
            "seconds": seconds}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7, help="starts per command (median)")
    ap.add_argument("--idle-s", type=float, default=30.0, help="seconds of idle `liqbot run`")
    args = ap.parse_args(argv)
    print(f"start-up and idle memory ({loadavg()})")
    with tempfile.TemporaryDirectory(prefix="liqbot-startup-") as tmp:
        folder = Path(tmp)
        db = _make_db(folder)
        progress(f"timing {args.runs} starts of each command...")
        t = startup(db, args.runs)
        base = t["python -c pass"]
        rows = []
        for name in ("python -c pass", "liqbot --help", "liqbot totals"):
            lo, hi = t[f"{name} spread"]
            rows.append([name, f"{t[name]:.3f} s", f"{lo:.3f}-{hi:.3f}",
                         "baseline" if name.startswith("python") else f"{t[name] / base:.1f}×",
                         "" if name.startswith("python") else f"+{t[name] - base:.3f} s"])
        table(["command", f"median of {args.runs}", "min-max", "÷ python -c pass", "liqbot adds"],
              rows)
        profiles = {"--help": import_profile(["--help"]),
                    "totals": import_profile(["totals", "--db", db, "--window", "24h"])}
        for name, (top, heavy) in profiles.items():
            total = sum(ms for _, ms in top)
            print(f"\nheaviest imports of `liqbot {name}` (-X importtime, each package's "
                  f"modules summed; {total:.0f} ms in all):")
            print("  " + ", ".join(f"{mod} {ms:.0f} ms" for mod, ms in top[:8]))
            print(f"  heavy libraries loaded: {', '.join(heavy) or 'none'}")
        progress(f"liqbot run idling offline for {args.idle_s:.0f} s...")
        idle = idle_rss(folder, args.idle_s)
    curve = idle["curve"]
    step = max(1, len(curve) // 10)
    print(f"\n`liqbot run`, {len(VENUES)} venues and {len(FUNDING)} funding pollers, every "
          "connect refused: resident memory (MB) by second")
    print("  " + "  ".join(f"{s:.0f}s {mb:.0f}" for s, mb in curve[::step]))
    table(["process", "RSS (MB)", "÷ baseline"],
          [["python -c (bare interpreter)", f"{idle['baseline_mb']:.1f}", "baseline"],
           [f"liqbot run idle after {idle['seconds']:.0f} s", f"{idle['final_mb']:.1f}",
            f"{idle['final_mb'] / idle['baseline_mb']:.1f}×"],
           ["  its peak", f"{idle['peak_mb']:.1f}", ""]])
    print(f"heavy libraries mapped by the idle run: {', '.join(idle['heavy_mapped']) or 'none'}; "
          f"{idle['log_lines']} log lines in {idle['seconds']:.0f} s")
    starts_ok = all(t[n] <= START_TARGET_S for n in ("liqbot --help", "liqbot totals"))
    heavy_ok = not any(h for _, h in profiles.values()) and not idle["heavy_mapped"]
    idle_ok = idle["final_mb"] <= IDLE_TARGET_MB
    passed = starts_ok and heavy_ok and idle_ok
    def said(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print(f"\ntarget: --help and totals ≤ {START_TARGET_S} s ({said(starts_ok)}), no heavy "
          f"import ({said(heavy_ok)}), idle RSS ≤ {IDLE_TARGET_MB:.0f} MB ({said(idle_ok)}) -> "
          f"{verdict(passed)}")
    return {"passed": passed, "times": {k: v for k, v in t.items() if "spread" not in k},
            "imports": {k: {"top": v[0][:8], "heavy": v[1]} for k, v in profiles.items()},
            "idle": idle}


if __name__ == "__main__":
    main()
