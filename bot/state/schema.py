"""The chat tables (alerts, outbox, subscriptions) as bot/state's own ordered migrations.

Versioned under `state_schema_version` in `meta`, beside the market schema's
`schema_version` (feeds/store/schema.py): each package migrates only its own tables, on
the one `Database` both build on. The bot migrates this part when it opens the database
(bot.state.writer.Writer), and every bot/state class makes sure of it when it is built,
so a file made by `liqbot totals` or a backfill gets its chat tables on first use.
"""

from __future__ import annotations

import sqlite3

from feeds.store import Database, Store

STATE_KEY = "state_schema_version"

# Each entry moves the chat schema from version i to i + 1. Never edit a shipped entry:
# append a new one. These are the statements the market migrations ran before the split
# (issue 11), verbatim and in the same order, so a file migrated either way ends with the
# same tables, columns and indexes (tests/bot/state/test_schema.py compares them).
#
# A file made before the split has the chat tables but no state key. Which of them it
# holds follows from how far its market migrations ran, and each left a mark this reads
# (`_legacy_version`):
#   market v1, v2 (alerts, outbox)                     -> state v1
#   market v3     (+ subscriptions)                    -> state v2
#   market v4     (+ outbox.maybe_sent, first_ms)      -> state v3
#   market v5     (+ index outbox_destination)         -> state v4
# The marks are read rather than the market version because the market part may have
# been migrated past v5 by a command that never opens the chat side (`liqbot totals`).
MIGRATIONS: list[str] = [
    # v1 (market v1 before the split): alerts are recorded before any send; the outbox
    # row per destination is the durable delivery state (DESIGN.md "Alert policy").
    """
    CREATE TABLE alerts (
        key TEXT PRIMARY KEY,             -- kind|scope|window|episode start|severity
        kind TEXT NOT NULL, scope TEXT NOT NULL, window TEXT NOT NULL,
        severity INTEGER NOT NULL,
        episode_ms INTEGER NOT NULL,      -- window start of the episode's first alert
        signal_ms INTEGER NOT NULL,       -- end (exclusive) of the signal's window
        created_ms INTEGER NOT NULL,
        payload TEXT NOT NULL             -- JSON: totals, context, rendered text
    );
    CREATE INDEX alerts_scope ON alerts (kind, scope, signal_ms);

    CREATE TABLE outbox (
        alert_key TEXT NOT NULL REFERENCES alerts (key),
        destination TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_ms INTEGER NOT NULL DEFAULT 0,
        sent_ms INTEGER,
        error TEXT,
        PRIMARY KEY (alert_key, destination)
    ) WITHOUT ROWID;
    CREATE INDEX outbox_pending ON outbox (status, next_ms);
    """,
    # v2 (market v3): chat subscriptions and per-platform state.
    """
    CREATE TABLE subscriptions (
        platform TEXT NOT NULL,           -- telegram | discord
        chat_id TEXT NOT NULL,            -- text: Telegram ids pass 2^31, Discord's 2^63
        kinds TEXT NOT NULL,              -- comma list of signal kinds
        min_usd REAL NOT NULL,
        symbols TEXT NOT NULL,            -- comma list of coins; empty = every coin
        quiet INTEGER NOT NULL DEFAULT 0, -- silent notifications
        active INTEGER NOT NULL DEFAULT 1,
        static INTEGER NOT NULL DEFAULT 0, -- from configuration, not a /subscribe
        updated_ms INTEGER NOT NULL,
        note TEXT,                        -- why a destination was disabled, for operators
        PRIMARY KEY (platform, chat_id)
    ) WITHOUT ROWID;
    """,
    # v3 (market v4): delivery bookkeeping for at-most-twice and the delivery deadline.
    """
    -- Attempts whose outcome is unknown: counted before each send, taken back when the
    -- platform said no; a crash in flight or a timeout after the request was written keeps it.
    ALTER TABLE outbox ADD COLUMN maybe_sent INTEGER NOT NULL DEFAULT 0;
    -- Wall-clock time of the first attempt: the delivery deadline counts from here.
    ALTER TABLE outbox ADD COLUMN first_ms INTEGER;
    """,
    # v4 (market v5): Outbox.due asks, per due item, whether an older one for its
    # destination is backing off; without this that is a scan of every pending row for
    # every row.
    """
    CREATE INDEX outbox_destination ON outbox (destination, status, next_ms);
    """,
    # v5 (issue 15): chat updates are stored as they arrive, before the next poll confirms
    # them to the platform, and handled from here (bot/state/updates.py).
    """
    CREATE TABLE updates (
        platform TEXT NOT NULL,
        update_id INTEGER NOT NULL,
        chat_id TEXT NOT NULL,            -- '' when the update names no chat
        received_ms INTEGER NOT NULL,
        sent_ms INTEGER NOT NULL,         -- when the user sent it (the platform's date)
        payload TEXT NOT NULL,            -- the update as the platform sent it (JSON)
        status TEXT NOT NULL CHECK (status IN ('queued', 'reply', 'sending', 'done')),
        reply TEXT,                       -- JSON: the committed answer, while status = 'reply'
        PRIMARY KEY (platform, update_id)
    ) WITHOUT ROWID;
    CREATE INDEX updates_status ON updates (platform, status, update_id);
    """,
    # v6 (issue 14): finer notification control per chat (bot/state/subscriptions.py).
    """
    -- Per kind and severity: comma list of `kind.severity=silent|off`; unlisted ones are on.
    ALTER TABLE subscriptions ADD COLUMN levels TEXT NOT NULL DEFAULT '';
    -- Quiet hours as `HH:MM-HH:MM` in `tz` (an IANA zone); alerts then arrive silently.
    ALTER TABLE subscriptions ADD COLUMN quiet_hours TEXT NOT NULL DEFAULT '';
    ALTER TABLE subscriptions ADD COLUMN tz TEXT NOT NULL DEFAULT 'UTC';
    -- The digest: off, daily or 4h, and the end of the last period one was queued for.
    ALTER TABLE subscriptions ADD COLUMN digest TEXT NOT NULL DEFAULT 'off';
    ALTER TABLE subscriptions ADD COLUMN digest_ms INTEGER NOT NULL DEFAULT 0;
    """,
]

STATE_VERSION = len(MIGRATIONS)


def migrate(database: Database) -> None:
    """Bring the chat tables of `database` to STATE_VERSION (free once done on it)."""
    database.migrate(STATE_KEY, MIGRATIONS, what="chat state",
                     legacy=lambda: _legacy_version(database.conn))


def migrate_store(store: Store) -> None:
    """`migrate` on the database under a market Store: the form bot/state classes call."""
    migrate(store.database)


def state_version(database: Database) -> int:
    return database.version(STATE_KEY)


def _legacy_version(conn: sqlite3.Connection) -> int:
    """The state version a file made before the split holds (0: no chat tables at all)."""
    names = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master")}
    if "alerts" not in names:
        return 0
    if "subscriptions" not in names:
        return 1
    columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(outbox)")}
    if "maybe_sent" not in columns:
        return 2
    if "outbox_destination" not in names:
        return 3
    return 4
