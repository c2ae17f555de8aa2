"""`liqbot browse`: the database in Datasette, read-only, with the questions people ask.

Datasette is an optional extra (`pip install 'liqbot[browse]'`). The live database is
opened in SQLite's read-only mode, which sees the bot's newest commits; Datasette's
"immutable" mode would not (it ignores the WAL) and may misread pages a checkpoint moves
under it. `--snapshot` serves a fresh backup instead, immutable and detached from the bot.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import logging
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bot.ops.backup import backup, read_only_uri

logger = logging.getLogger(__name__)
EXTRA_HINT = "pip install 'liqbot[browse]'"
# Our Datasette plugins: how cells show (ISO times, dollars, severity names).
PLUGINS_DIR = Path(__file__).parent / "datasette_plugins"

# Every timestamp is integer ms UTC in the store; Datasette shows the ISO form beside it.
_HOUR = "strftime('%Y-%m-%dT%H:00Z', start_ms / 1000, 'unixepoch')"
_TIME = "strftime('%Y-%m-%dT%H:%M:%SZ', {} / 1000, 'unixepoch')"

BIGGEST_HOURS = f"""
SELECT {_HOUR} AS hour_utc, source, round(long_usd + short_usd) AS total_usd,
       round(long_usd) AS long_usd, round(short_usd) AS short_usd,
       round(100.0 * short_usd / nullif(long_usd + short_usd, 0), 1) AS short_pct,
       events, venues
FROM (
  SELECT start_ms, 'events' AS source, sum(long_usd) AS long_usd, sum(short_usd) AS short_usd,
         sum(long_n + short_n) AS events, group_concat(DISTINCT exchange) AS venues
  FROM buckets_1h GROUP BY start_ms
  UNION ALL
  SELECT start_ms, source, sum(long_usd), sum(short_usd), sum(long_n + short_n),
         group_concat(DISTINCT exchange)
  FROM agg_buckets WHERE span_ms = 3600000 GROUP BY start_ms, source
)
ORDER BY total_usd DESC LIMIT 100
"""

ALERTS_SENT = f"""
SELECT {_TIME.format('a.signal_ms')} AS signal_end_utc, a.kind, a.scope,
       CAST(a."window" AS INTEGER) / 60000 AS window_min, a.severity,
       round(json_extract(a.payload, '$.long_usd') + json_extract(a.payload, '$.short_usd'))
         AS total_usd,
       round(100 * json_extract(a.payload, '$.share'), 1) AS share_pct,
       o.destination, o.status, o.attempts,
       {_TIME.format('o.sent_ms')} AS sent_utc, o.error, a.key
FROM alerts a JOIN outbox o ON o.alert_key = a.key
ORDER BY a.signal_ms DESC, a.key, o.destination LIMIT 500
"""

# The latest backtest is stored as JSON in meta (backtests/track.py). Missing, malformed
# or reshaped JSON leaves the outcome columns empty instead of failing the page.
EPISODES = f"""
WITH doc AS (
  SELECT CASE WHEN json_valid(value) THEN value ELSE '{{}}' END AS j
  FROM meta WHERE key = 'backtest_latest'
),
bt AS (
  SELECT r.key AS idx, json_extract(r.value, '$.kind') AS kind,
         json_extract(r.value, '$.scope') AS scope,
         json_extract(r.value, '$.severity') AS severity, json_extract(r.value, '$.n') AS n,
         json_extract(r.value, '$.median') AS median, json_extract(r.value, '$.hit') AS hit,
         json_extract(r.value, '$.random_hit') AS random_hit,
         json_extract(r.value, '$.horizon') AS horizon
  FROM doc, json_each(doc.j, '$.rows') r
  WHERE json_type(r.value) = 'object'
    AND json_extract(r.value, '$.horizon') = json_extract(doc.j, '$.main_horizon')
    -- An episode's severity is its peak's: the peak cohort (rows saved before cohorts: all).
    AND coalesce(json_extract(r.value, '$.cohort'), 'peak') = 'peak'
),
ep AS (
  SELECT kind, scope, episode_ms, min(signal_ms) AS first_ms, max(signal_ms) AS last_ms,
         max(severity) AS peak_severity, count(*) AS alerts,
         max(json_extract(payload, '$.long_usd') + json_extract(payload, '$.short_usd'))
           AS peak_usd,
         max(json_extract(payload, '$.price_change')) AS price_change
  FROM alerts GROUP BY kind, scope, episode_ms
)
SELECT {_TIME.format('ep.episode_ms')} AS episode_start_utc, ep.kind, ep.scope,
       ep.peak_severity, ep.alerts, round(ep.peak_usd) AS peak_usd,
       round(100 * ep.price_change, 2) AS price_change_pct,
       (SELECT count(*) FROM outbox o JOIN alerts a ON a.key = o.alert_key
         WHERE a.kind = ep.kind AND a.scope = ep.scope AND a.episode_ms = ep.episode_ms
           AND o.status = 'sent') AS delivered,
       (SELECT count(*) FROM outbox o JOIN alerts a ON a.key = o.alert_key
         WHERE a.kind = ep.kind AND a.scope = ep.scope AND a.episode_ms = ep.episode_ms
           AND o.status = 'dead') AS dead,
       bt.horizon AS backtest_horizon, bt.n AS backtest_n,
       round(100 * bt.median, 2) AS backtest_median_pct, round(100 * bt.hit) AS backtest_hit_pct,
       round(100 * bt.random_hit) AS backtest_random_hit_pct
FROM ep LEFT JOIN bt ON bt.idx = (
  -- The same fallbacks as the alert's track record: this scope and severity first.
  SELECT b.idx FROM bt b WHERE b.kind = ep.kind AND b.scope IN (ep.scope, 'all')
    AND (b.severity = ep.peak_severity OR b.severity IS NULL)
  ORDER BY b.scope = 'all', b.severity IS NULL LIMIT 1)
ORDER BY ep.episode_ms DESC LIMIT 500
"""

# `hide_sql`: a canned query's page opens on its results; "Show SQL" still shows the query.
QUERIES: dict[str, dict[str, Any]] = {
    "biggest_hours": {"title": "Biggest hours", "sql": BIGGEST_HOURS.strip(), "hide_sql": True,
                      "description": "The 100 largest liquidation hours, per source: our own "
                                     "events, or an imported aggregate (never summed together)."},
    "episodes": {"title": "Episodes and their outcomes", "sql": EPISODES.strip(), "hide_sql": True,
                 "description": "One row per alert episode: peak size and severity, deliveries, "
                                "and what the latest backtest says about its kind."},
    "alerts_sent": {"title": "Alerts sent", "sql": ALERTS_SENT.strip(), "hide_sql": True,
                    "description": "Every alert and destination with its delivery state."},
}


def metadata(db_name: str) -> dict[str, Any]:
    """Datasette metadata for a database Datasette calls `db_name` (the file's stem)."""
    return {
        "title": "liqbot",
        "description": "Liquidations, alerts and deliveries. Pages show times in UTC, amounts "
                       "in dollars and severities by name; the JSON and CSV keep the stored "
                       "values (times in ms since 1970, UTC).",
        "databases": {db_name: {
            "queries": QUERIES,
            "tables": {"events": {"sort_desc": "ts_ms"}, "alerts": {"sort_desc": "signal_ms"},
                       "gaps": {"sort_desc": "start_ms"}},
        }},
    }


class BrowseError(RuntimeError):
    """`liqbot browse` cannot start; the message says what to install or fix."""


def datasette_argv(db: Path, metadata_path: Path, *, host: str, port: int, immutable: bool,
                   open_browser: bool = False) -> list[str]:
    """The Datasette command line: read-only (or immutable for a snapshot), loopback first."""
    argv = [sys.executable, "-m", "datasette", "serve", "--metadata", str(metadata_path),
            "--plugins-dir", str(PLUGINS_DIR),
            "--host", host, "--port", str(port), "--setting", "sql_time_limit_ms", "5000"]
    argv += ["--immutable", str(db)] if immutable else [str(db)]
    return argv + (["--open"] if open_browser else [])


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: only localhost is known to stay on the machine
        return host.lower() == "localhost"


def browse(db_path: str | Path, *, host: str = "127.0.0.1", port: int = 8001,
           snapshot: bool = False, open_browser: bool = False) -> int:
    """Run Datasette over the database until it exits; return its exit status."""
    if importlib.util.find_spec("datasette") is None:
        raise BrowseError(f"liqbot browse needs Datasette: {EXTRA_HINT}")
    db = Path(db_path)
    if not db.is_file():
        raise BrowseError(f"{db}: no such database file")
    if not _loopback(host):
        logger.warning("browse: Datasette has no login; anyone who reaches %s:%d can read "
                       "the whole database", host, port)
    with tempfile.TemporaryDirectory(prefix="liqbot-browse-") as tmp:
        if snapshot:
            db = backup(db, Path(tmp) / db.name).path
        meta = Path(tmp) / "metadata.json"
        meta.write_text(json.dumps(metadata(db.stem), indent=1))
        # A live file opens read-only; a snapshot, or a file nobody has open on a read-only
        # mount, is immutable (faster: Datasette counts rows once).
        immutable = snapshot or "immutable=1" in read_only_uri(db)
        argv = datasette_argv(db, meta, host=host, port=port, immutable=immutable,
                              open_browser=open_browser)
        logger.info("browse: http://%s:%d/ (Ctrl-C stops)", host, port)
        return _run_forwarding_sigterm(argv)


def _run_forwarding_sigterm(argv: list[str]) -> int:
    """Run Datasette as a child; SIGTERM (docker stop, systemctl stop) reaches it too.

    Ctrl-C already reaches the whole process group; SIGTERM reaches only us, and leaving
    the child behind would keep the port busy and the temporary snapshot in use.
    """
    proc = subprocess.Popen(argv)
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        while True:
            try:
                return 0 if proc.wait() in (0, -signal.SIGTERM, -signal.SIGINT) else proc.returncode
            except KeyboardInterrupt:
                continue  # Datasette got the same Ctrl-C and is shutting down
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
