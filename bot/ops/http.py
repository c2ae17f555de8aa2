"""The operator's port: `/healthz` and `/metrics` over HTTP, plus the event-loop lag probe.

It listens on loopback by default: neither page needs a password because nobody outside
the host (or the container) can reach it. `python -m bot.ops.http URL` is the container
HEALTHCHECK: the slim image has no curl.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest

from bot.config import DEFAULT_OPS_LISTEN as DEFAULT_LISTEN
from bot.config import ConfigError, parse_listen
from bot.ops.metrics import CONTENT_TYPE, Metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    checks: dict[str, Any] = field(default_factory=dict)


HealthCheck = Callable[[], "HealthReport | bool"]


def live_check(scheduler: Any, feeds: Sequence[Any], *,
               states: Callable[[], dict[str, str]] = dict,
               heartbeat: Callable[[], float] | None = None,
               stale_after_s: float = 60.0,
               store: Callable[[], str | dict[str, Any]] | None = None) -> HealthCheck:
    """Ok while the scheduler's jobs run, the database takes writes and a venue has an open
    socket.

    A socket that is open but silent (no liquidation for `silent_after_s`) still counts:
    a quiet market is not a broken process, and restarting would not make it speak. The
    body says "silent" for it, the health monitor sends its notice, and the
    `liqbot_feed_last_event_timestamp_seconds` rule catches a venue that acknowledges and
    then sends nothing. `heartbeat` gives the monotonic time the health job last ran: a
    running scheduler whose jobs are stuck (a hung write) is not healthy. `store` says
    "ok" or why writes fail (a full disk, a read-only database): not healthy either.
    """
    def check() -> HealthReport:
        running = bool(getattr(scheduler, "running", False))
        stuck = heartbeat is not None and time.monotonic() - heartbeat() > stale_after_s
        judged = states()
        venues: dict[str, str] = {}
        for f in feeds:
            name = f.stats.exchange
            up = getattr(f.stats, "connected_since_ms", None) is not None
            state = "silent" if up and judged.get(name) == "silent" else (
                "live" if up else "down")
            if state == "live" or name not in venues or venues[name] == "down":
                venues[name] = state
        writes = store() if store is not None else "ok"
        ok = (running and not stuck and writes == "ok"
              and any(v != "down" for v in venues.values()))
        return HealthReport(ok, {"scheduler": "stuck" if stuck and running else (
            "running" if running else "stopped"), "store": writes, "venues": venues})

    return check


def replay_check(replaying: Callable[[], bool]) -> HealthCheck:
    """Ok while the replay loop is still feeding the pipeline."""
    def check() -> HealthReport:
        on = bool(replaying())
        return HealthReport(on, {"replay": "running" if on else "finished"})

    return check


def _judge(check: HealthCheck) -> HealthReport:
    try:
        result = check()
    except Exception as exc:  # a broken check is a failed check, not a 500
        logger.exception("ops: health check raised")
        return HealthReport(False, {"error": f"{type(exc).__name__}: {exc}"})
    return result if isinstance(result, HealthReport) else HealthReport(bool(result))


class LoopLagProbe:
    """Sleep 10 ms in a loop and record how late each wake-up is (RELIABILITY.md item 7)."""

    def __init__(self, metrics: Metrics | None = None, interval_s: float = 0.01,
                 keep_s: float = 60.0) -> None:
        self.metrics, self.interval_s = metrics, interval_s
        self.samples: collections.deque[float] = collections.deque(
            maxlen=max(1, int(keep_s / interval_s)))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval_s)
            late = max(0.0, loop.time() - start - self.interval_s)
            self.samples.append(late)
            if self.metrics is not None:
                self.metrics.observe_loop_lag(late)

    def max_s(self) -> float:
        return max(self.samples, default=0.0)

    def p99_s(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


class OpsServer:
    """A running ops endpoint; `stop()` closes the socket and the probe."""

    def __init__(self, runner: web.AppRunner, probe: asyncio.Task[None] | None) -> None:
        self._runner, self._probe = runner, probe

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): useful when the configured port was 0."""
        addresses = self._runner.addresses
        if not addresses:
            raise RuntimeError("ops server is not listening")
        host, port = addresses[0][:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self._runner.cleanup()


def build_app(metrics: Metrics, check: HealthCheck) -> web.Application:
    """The two routes; exposed so tests can drive them without a socket."""
    async def healthz(_: web.Request) -> web.Response:
        report = _judge(check)
        metrics.healthy.set(int(report.ok))
        body = {"ok": report.ok, **report.checks}
        return web.json_response(body, status=200 if report.ok else 503)

    async def scrape(_: web.Request) -> web.Response:
        metrics.healthy.set(int(_judge(check).ok))
        metrics.tasks.set(len(asyncio.all_tasks()))
        return web.Response(body=generate_latest(metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", scrape)
    return app


async def start_ops_server(listen: str | None, metrics: Metrics, check: HealthCheck, *,
                           probe: bool = True) -> OpsServer | None:
    """Serve /healthz and /metrics on `listen` ("127.0.0.1:9108"); None when it is off."""
    where = parse_listen(listen)
    if where is None:
        return None
    host, port = where
    if not ipaddress.ip_address(host).is_loopback:
        logger.warning("ops: listening on %s:%d, not loopback: /metrics is readable by anyone "
                       "who can reach that address", host, port)
    runner = web.AppRunner(build_app(metrics, check), access_log=None)  # scrapes every 15 s
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"ops.listen: cannot listen on {host}:{port} ({exc.strerror})") from None
    task = None
    if probe:
        lag = LoopLagProbe(metrics)
        metrics.loop_lag_max.set_function(lag.max_s)
        task = asyncio.create_task(lag.run(), name="ops-loop-probe")
    server = OpsServer(runner, task)
    logger.info("ops: /healthz and /metrics on %s", server.url)
    return server


def probe_url(url: str, timeout_s: float = 5.0) -> tuple[bool, str]:
    """GET `url`: (True, body) on 200, else (False, why)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (loopback)
            return resp.status == 200, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode(errors="replace") or str(exc)
    except (OSError, ValueError) as exc:
        return False, str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bot.ops.http [URL]`: exit 0 when the health page says ok (HEALTHCHECK)."""
    args = list(sys.argv[1:] if argv is None else argv)
    url = args[0] if args else f"http://{DEFAULT_LISTEN}/healthz"
    ok, text = probe_url(url)
    print(text.strip()[:500])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
