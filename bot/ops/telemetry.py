"""A run's operator view: the metrics it pushes and the /healthz + /metrics page it serves.

The runner calls these where things happen. Without metrics every call is a no-op, so a
caller that asks for neither (the tests, a library user) pays nothing and binds no port.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from bot.config import parse_listen
from bot.ops.http import HealthCheck, OpsServer, start_ops_server
from bot.ops.metrics import Metrics, metered
from bot.state.writer import Writer

logger = logging.getLogger(__name__)


class StatusCounts(Protocol):
    """What the outbox gauge reads: rows per status (the outbox, wherever it lives)."""

    def status_counts(self) -> dict[str, int]: ...


class Telemetry:
    """Metrics for one run, plus the ops endpoint when `listen` names an address."""

    def __init__(self, metrics: Metrics | None = None, listen: str | None = None) -> None:
        if metrics is None and parse_listen(listen) is not None:
            metrics = Metrics()  # serving a page needs something to put on it
        self.metrics, self.listen = metrics, listen
        self._server: OpsServer | None = None

    def wrap(self, notifiers: Mapping[str, Any]) -> dict[str, Any]:
        """Notifiers whose sends are timed and counted per platform."""
        return metered(notifiers, self.metrics)

    def bind(self, db_path: str, feeds: Sequence[Any] = (),
             rejected: Mapping[str, int] | None = None, writes: Any = None) -> None:
        if self.metrics is not None:
            self.metrics.bind_db(db_path)
            if rejected is not None:
                self.metrics.bind_rejections(rejected)
            if feeds:
                self.metrics.bind_feeds(feeds)
            if writes is not None:
                self.metrics.bind_writes(writes)

    def events(self, items: Iterable[Any]) -> None:
        if self.metrics is not None:
            self.metrics.observe_events(items)

    def alerts(self, n: int) -> None:
        if self.metrics is not None and n:
            self.metrics.observe_alerts(n)

    def gap(self, venue: str, start_ms: int, end_ms: int | None) -> None:
        if self.metrics is not None:
            self.metrics.observe_gap(venue, start_ms, end_ms)

    async def outbox(self, writer: Writer, outbox: StatusCounts) -> None:
        """Refresh the outbox gauge; the count runs on the writer thread like every query."""
        if self.metrics is not None:
            self.metrics.set_outbox(await writer.run(outbox.status_counts))

    async def serve(self, check: HealthCheck) -> None:
        """Start the ops endpoint (if configured); a busy port is a ConfigError."""
        if self.metrics is not None and self._server is None:
            self._server = await start_ops_server(self.listen, self.metrics, check)

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            try:
                await server.stop()
            except Exception:
                logger.exception("ops: stopping the endpoint failed")
