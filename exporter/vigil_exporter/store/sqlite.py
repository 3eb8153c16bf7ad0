"""The default alert store: one SQLite file (``alerts.sqlite3``) in the state folder.

Why SQLite: it is in the standard library, a commit is durable when it returns
(``journal_mode=WAL`` with ``synchronous=FULL`` for :meth:`SQLiteStore.accept`: the WAL is
fsynced before the webhook answers, so a 2xx survives SIGKILL and a power cut), and several
receiver processes on one host (gunicorn workers, a restart overlapping the old process) can
share the file: writes take SQLite's
write lock (``BEGIN IMMEDIATE``) and wait for it up to ``_BUSY_TIMEOUT_MS``. Do not put the
file on a network filesystem (SQLite's locks do not hold there); use the Redis store to share
alerts across hosts.

One connection per store object, guarded by a lock: every operation is a short transaction, and
the slow part (fsync) happens inside SQLite anyway.

The delivery loop's bookkeeping (claims, completions, retries, lease renewals) commits with
``synchronous=NORMAL``: written to the WAL, which a killed process cannot lose (the kernel
holds it), fsynced with the next accept or checkpoint. So a SIGKILL or OOM kill repeats only
the call that was running; a power cut may also repeat the deliveries completed in its last
moments, never lose one. That keeps one fsync per notification, not two per delivery: measured
here, handlers got 82 alerts/s with an fsync per completion against ~3,000 acknowledged/s.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vigil.config import ExporterSettings
from vigil_exporter.store import (
    Accepted,
    Claim,
    DeadLetter,
    Episode,
    Incoming,
    StoreStats,
    is_redelivery,
    next_episode,
)

__all__ = ["FILE_NAME", "SCHEMA_VERSION", "SQLiteStore"]

FILE_NAME = "alerts.sqlite3"
SCHEMA_VERSION = 1
_BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL UNIQUE,
    received REAL NOT NULL,
    payload  TEXT NOT NULL,
    bytes    INTEGER NOT NULL,
    open     INTEGER NOT NULL  -- deliveries still pending or running
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts(open) WHERE open > 0;
CREATE TABLE IF NOT EXISTS deliveries (
    seq     INTEGER NOT NULL,
    handler TEXT NOT NULL,
    state   TEXT NOT NULL,     -- pending | running | dead
    attempt INTEGER NOT NULL,  -- the attempt a claim makes (1 for the first call)
    due     REAL NOT NULL,     -- pending: not before this time
    owner   TEXT,              -- running: who holds it
    lease   REAL,              -- running: held until this time unless renewed
    error   TEXT,              -- the last failure
    failed  REAL,              -- dead: when
    PRIMARY KEY (handler, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_owner ON deliveries(owner) WHERE owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries(failed) WHERE state = 'dead';
CREATE TABLE IF NOT EXISTS identities (
    identity  TEXT PRIMARY KEY,
    status    TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at   TEXT NOT NULL,
    touched   INTEGER NOT NULL  -- recency, for evicting past webhook_dedup_size
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS identities_touched ON identities(touched);
"""


class SQLiteStore:
    """:class:`~vigil_exporter.store.AlertStore` on a SQLite file in ``folder`` (created 0700).

    Caps come from ``settings``: ``store_max_alerts``, ``store_max_bytes``,
    ``webhook_dedup_size``, ``dead_letter_limit``. An empty store always takes one notification,
    however large (the caps bound what waits, plus one notification), so a notification bigger
    than the caps cannot be refused forever.
    """

    def __init__(self, folder: str | Path, settings: ExporterSettings) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.folder / FILE_NAME
        self._settings = settings
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._durable = True
        with self._write(durable=True):
            # Statement by statement: executescript would commit the transaction first.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise RuntimeError(f"{self.path}: store schema version {version}; this vigil "
                                   f"knows version {SCHEMA_VERSION}")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    @contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction (SQLite's write lock taken at the start), under our lock;
        ``durable``: fsynced before it returns (see the module docs)."""
        with self._lock:
            if durable != self._durable:
                self._db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- the webhook's side ----------------------------------------------------------------

    def accept(self, alerts: Sequence[Incoming], handlers: Sequence[str],
               now: float) -> Accepted:
        try:
            return self._accept(alerts, handlers, now)
        except _Full:  # rolled back: nothing stored, no identity remembered
            return Accepted("full")

    def _accept(self, alerts: Sequence[Incoming], handlers: Sequence[str],
                now: float) -> Accepted:
        settings = self._settings
        with self._write(durable=True) as db:
            touched = db.execute("SELECT COALESCE(MAX(touched), 0) FROM identities"
                                 ).fetchone()[0]
            fresh: list[tuple[Incoming, str, int]] = []  # alert, payload JSON, its bytes
            duplicates = 0
            for alert in alerts:
                touched += 1
                row = db.execute("SELECT status, starts_at, ends_at FROM identities "
                                 "WHERE identity = ?", (alert.identity,)).fetchone()
                previous = Episode(*row) if row is not None else None
                if is_redelivery(previous, alert.status, alert.starts_at):
                    duplicates += 1
                    db.execute("UPDATE identities SET touched = ? WHERE identity = ?",
                               (touched, alert.identity))
                    continue
                episode = next_episode(previous, alert.status, alert.starts_at, alert.ends_at)
                db.execute("INSERT OR REPLACE INTO identities VALUES (?, ?, ?, ?, ?)",
                           (alert.identity, episode.status, episode.starts_at,
                            episode.ends_at, touched))
                text = alert.encoded()
                fresh.append((alert, text, len(text.encode("utf-8", "surrogatepass"))))
            if fresh and handlers:
                count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM alerts "
                                         "WHERE open > 0").fetchone()
                adding = sum(n for _, _, n in fresh)
                if count and (count + len(fresh) > settings.store_max_alerts
                              or size + adding > settings.store_max_bytes):
                    raise _Full
                for alert, text, alert_bytes in fresh:
                    seq = db.execute(
                        "INSERT INTO alerts (id, received, payload, bytes, open) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (alert.id, now, text, alert_bytes, len(handlers))).lastrowid
                    db.executemany(
                        "INSERT INTO deliveries (seq, handler, state, attempt, due) "
                        "VALUES (?, ?, 'pending', 1, ?)",
                        [(seq, handler, now) for handler in handlers])
            # The webhook_dedup_size most recently touched identities stay.
            db.execute("DELETE FROM identities WHERE touched <= (SELECT touched FROM "
                       "identities ORDER BY touched DESC LIMIT 1 OFFSET ?)",
                       (settings.webhook_dedup_size,))
        return Accepted("accepted", len(fresh), duplicates,
                        tuple(alert.id for alert, _, _ in fresh))

    # -- the delivery loop's side ----------------------------------------------------------

    def claim(self, handler: str, owner: str, now: float, lease: float) -> Claim | None:
        # A read first, without the write lock: idle polls of several processes must not
        # queue behind each other (or behind the webhook's commits).
        due = ("((d.state = 'pending' AND d.due <= ?) OR "
               "(d.state = 'running' AND d.lease < ?))")
        found = self._read(f"SELECT d.seq FROM deliveries d WHERE d.handler = ? AND {due} "
                           "ORDER BY d.seq LIMIT 1", (handler, now, now))
        if not found:
            return None
        with self._write() as db:
            row = db.execute(
                "SELECT d.seq, d.attempt, a.id, a.payload, a.received FROM deliveries d "
                f"JOIN alerts a ON a.seq = d.seq WHERE d.handler = ? AND {due} "
                "ORDER BY d.seq LIMIT 1", (handler, now, now)).fetchone()
            if row is None:
                return None
            seq, attempt, alert_id, payload, received = row
            db.execute("UPDATE deliveries SET state = 'running', owner = ?, lease = ? "
                       "WHERE handler = ? AND seq = ?", (owner, now + lease, handler, seq))
        return Claim(alert_id, handler, attempt, json.loads(payload), received, owner)

    def complete(self, claim: Claim) -> None:
        with self._write() as db:
            seq = self._seq(db, claim)
            if seq is None:
                return
            gone = db.execute("DELETE FROM deliveries WHERE handler = ? AND seq = ? "
                              "AND state != 'dead'", (claim.handler, seq)).rowcount
            if gone:
                db.execute("UPDATE alerts SET open = open - 1 WHERE seq = ?", (seq,))
                self._drop_finished(db, seq)

    def retry(self, claim: Claim, error: str, due: float) -> None:
        with self._write() as db:
            seq = self._seq(db, claim)
            if seq is not None:
                db.execute("UPDATE deliveries SET state = 'pending', attempt = attempt + 1, "
                           "due = ?, owner = NULL, lease = NULL, error = ? "
                           "WHERE handler = ? AND seq = ? AND state = 'running'",
                           (due, error, claim.handler, seq))

    def dead_letter(self, claim: Claim, error: str, now: float) -> int:
        with self._write(durable=True) as db:
            seq = self._seq(db, claim)
            if seq is None:
                return 0
            moved = db.execute("UPDATE deliveries SET state = 'dead', owner = NULL, "
                               "lease = NULL, error = ?, failed = ? WHERE handler = ? AND "
                               "seq = ? AND state = 'running'",
                               (error, now, claim.handler, seq)).rowcount
            if moved:
                db.execute("UPDATE alerts SET open = open - 1 WHERE seq = ?", (seq,))
            excess = db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'dead'"
                                ).fetchone()[0] - self._settings.dead_letter_limit
            if excess <= 0:
                return 0
            oldest = db.execute("SELECT handler, seq FROM deliveries WHERE state = 'dead' "
                                "ORDER BY failed, seq LIMIT ?", (excess,)).fetchall()
            db.executemany("DELETE FROM deliveries WHERE handler = ? AND seq = ?", oldest)
            for _, old in oldest:
                self._drop_finished(db, old)
            return len(oldest)

    def renew(self, owner: str, until: float, held: Sequence[tuple[str, str]]) -> None:
        if not held:
            return
        with self._write() as db:
            db.executemany(
                "UPDATE deliveries SET lease = ? WHERE owner = ? AND state = 'running' AND "
                "handler = ? AND seq = (SELECT seq FROM alerts WHERE id = ?)",
                [(until, owner, handler, alert_id) for alert_id, handler in held])

    def release(self, owner: str) -> int:
        with self._write() as db:
            return db.execute("UPDATE deliveries SET state = 'pending', owner = NULL, "
                              "lease = NULL WHERE owner = ? AND state = 'running'",
                              (owner,)).rowcount

    def owners(self) -> set[str]:
        return {row[0] for row in self._read(
            "SELECT DISTINCT owner FROM deliveries WHERE state = 'running'")}

    @staticmethod
    def _seq(db: sqlite3.Connection, claim: Claim) -> int | None:
        row = db.execute("SELECT seq FROM alerts WHERE id = ?", (claim.alert_id,)).fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    def _drop_finished(db: sqlite3.Connection, seq: int) -> None:
        db.execute("DELETE FROM alerts WHERE seq = ? AND open <= 0 AND NOT EXISTS "
                   "(SELECT 1 FROM deliveries WHERE deliveries.seq = alerts.seq)", (seq,))

    # -- reading -----------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        with self._lock:
            count, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) "
                                           "FROM alerts WHERE open > 0").fetchone()
            by_state = self._db.execute("SELECT handler, state, COUNT(*) FROM deliveries "
                                        "GROUP BY handler, state").fetchall()
        pending: dict[str, int] = {}
        running: dict[str, int] = {}
        dead = 0
        for handler, state, n in by_state:
            if state == "dead":
                dead += n
            elif state == "running":
                running[handler] = n
            else:
                pending[handler] = n
        return StoreStats(count, size, dead, pending, running)

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = self._read("SELECT a.id, d.handler, d.attempt, d.error, d.failed, a.payload "
                          "FROM deliveries d JOIN alerts a ON a.seq = d.seq "
                          "WHERE d.state = 'dead' ORDER BY d.failed DESC, d.seq DESC LIMIT ?",
                          (limit,))
        return [DeadLetter(alert_id, handler, attempts, error or "", failed, json.loads(payload))
                for alert_id, handler, attempts, error, failed, payload in rows]

    def open_alert_ids(self, limit: int) -> list[str]:
        if limit == 0:
            return []
        rows = self._read("SELECT id FROM alerts WHERE open > 0 ORDER BY seq DESC LIMIT ?",
                          (limit,))
        return [alert_id for (alert_id,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Full(Exception):
    """Raised inside the accept transaction to roll it back: the caps would be passed."""

