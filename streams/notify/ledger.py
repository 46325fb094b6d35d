"""The durable delivery state: SQLite in WAL mode, one writer (the worker), any readers.

Order of commits (why nothing is lost or sent twice):

1. The agent records each change and its planned deliveries as ``pending`` in one
   transaction (``synchronous=FULL``: on disk when ``commit`` returns) *before* Faust may
   commit the Kafka offset. A crash before that commit redelivers the message; the
   ``changes`` primary key (the idempotency key) recognises the copy and adds nothing.
2. The dispatcher delivers only from this ledger, never from the stream, and marks a
   delivery ``sent`` right after the notifier acknowledged it. After a restart, ``sent``
   rows are never touched again and ``pending`` ones are picked up where they were.

The one window left, a crash between a notifier's acknowledgement and the ``sent`` commit,
repeats that delivery with the *same* idempotency key (webhook ``Idempotency-Key``,
e-mail ``Message-ID``; the outbox checks its own file), so the receiver can drop it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from schemas.alerts import AlertChange
from streams.notify.routing import Target

STATUSES = ("pending", "sent", "failed")

# The newest ``limit`` alerts (optionally one alert, or those with a delivery in a status),
# each change with its deliveries.
REPORT_SQL = """
WITH chosen AS (
    SELECT alert_id, MAX(received_at) AS latest FROM changes
    WHERE (:alert_id IS NULL OR alert_id = :alert_id)
      AND (:status IS NULL OR idempotency_key IN
           (SELECT idempotency_key FROM deliveries WHERE status = :status))
    GROUP BY alert_id ORDER BY latest DESC LIMIT :limit
)
SELECT c.alert_id, c.kind, c.severity, c.facility_id, c.sequence, c.change,
       c.idempotency_key, c.received_at, c.redelivered, d.notifier, d.recipient,
       d.status, d.fallback, d.attempts, d.next_attempt_at, d.last_error, d.sent_at
FROM chosen JOIN changes c USING (alert_id)
LEFT JOIN deliveries d USING (idempotency_key)
ORDER BY chosen.latest DESC, c.alert_id, c.sequence DESC, d.notifier, d.recipient
"""


@dataclass(frozen=True)
class Received:
    """One alert change as read from the topic, with where it came from."""

    change: AlertChange
    payload: bytes
    source: str
    targets: Sequence[Target]


@dataclass
class EnqueueResult:
    new_changes: int = 0
    redelivered: int = 0
    deliveries: int = 0
    # keys seen again with other content: the first copy stands (the engine must not reuse
    # a sequence number for a different change), reported rather than dropped silently
    conflicting: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Lane:
    """All due deliveries of one notifier to one recipient (delivered in order, batched)."""

    notifier: str
    recipient: str


@dataclass(frozen=True)
class PendingDelivery:
    key: str
    attempts: int
    payload: bytes


class Ledger:
    """Thread-safe: one connection behind a lock (the worker calls it from one thread)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA foreign_keys=ON")
        schema = resources.files("streams.notify").joinpath("ledger.sql").read_text("utf-8")
        self._db.executescript(schema)

    @classmethod
    def open_readonly(cls, path: Path) -> sqlite3.Connection:
        """A read-only connection for the CLI (the worker may be writing meanwhile)."""
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        db.execute("PRAGMA busy_timeout=10000")
        db.row_factory = sqlite3.Row
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> list[int]:
        """Run statements in one IMMEDIATE transaction; returns each one's rowcount."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                counts = [self._db.execute(sql, args).rowcount for sql, args in statements]
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return counts

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- the agent --------------------------------------------------------------------------

    def enqueue(self, items: Sequence[Received], now: float) -> EnqueueResult:
        """Record new changes and their deliveries as pending; recognise copies."""
        result = EnqueueResult()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for item in items:
                    change, alert = item.change, item.change.alert
                    inserted = self._db.execute(
                        "INSERT OR IGNORE INTO changes (idempotency_key, alert_id, sequence, "
                        "change, kind, severity, facility_id, payload, received_at, source) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            change.idempotency_key,
                            alert.alert_id,
                            change.sequence,
                            change.change,
                            alert.kind,
                            alert.severity,
                            alert.facility_id,
                            item.payload,
                            now,
                            item.source,
                        ),
                    ).rowcount
                    if not inserted:
                        result.redelivered += 1
                        if not self._same_payload(change.idempotency_key, item.payload):
                            result.conflicting.append(change.idempotency_key)
                        self._db.execute(
                            "UPDATE changes SET redelivered = redelivered + 1 "
                            "WHERE idempotency_key = ?",
                            (change.idempotency_key,),
                        )
                        continue
                    result.new_changes += 1
                    for target in item.targets:
                        result.deliveries += self._db.execute(
                            "INSERT OR IGNORE INTO deliveries (idempotency_key, notifier, "
                            "recipient, status, fallback, next_attempt_at, created_at) "
                            "VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                            (
                                change.idempotency_key,
                                target.notifier,
                                target.recipient,
                                int(target.fallback),
                                now,
                                now,
                            ),
                        ).rowcount
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return result

    def _same_payload(self, key: str, payload: bytes) -> bool:
        row = self._db.execute(
            "SELECT payload FROM changes WHERE idempotency_key = ?", (key,)
        ).fetchone()
        if row is None:
            return False
        try:
            return AlertChange.from_bytes(bytes(row[0])) == AlertChange.from_bytes(payload)
        except ValueError:
            return bytes(row[0]) == payload

    # -- the dispatcher ---------------------------------------------------------------------

    def due_lanes(self, now: float) -> list[Lane]:
        """Lanes with something deliverable now, the longest waiting first."""
        rows = self._read(
            "SELECT notifier, recipient FROM deliverable WHERE next_attempt_at <= ? "
            "GROUP BY notifier, recipient ORDER BY MIN(arrival)",
            (now,),
        )
        return [Lane(notifier, recipient) for notifier, recipient in rows]

    def next_due_after(self, now: float) -> float | None:
        """The earliest future attempt (what is due already is the dispatcher's to run)."""
        rows = self._read(
            "SELECT MIN(next_attempt_at) FROM deliveries "
            "WHERE status = 'pending' AND next_attempt_at > ?",
            (now,),
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def due_in_lane(self, lane: Lane, now: float, limit: int) -> list[PendingDelivery]:
        """The lane's deliverable changes in arrival order (see the view in ledger.sql)."""
        rows = self._read(
            "SELECT idempotency_key, attempts, payload FROM deliverable "
            "WHERE notifier = ? AND recipient = ? AND next_attempt_at <= ? "
            "ORDER BY arrival LIMIT ?",
            (lane.notifier, lane.recipient, now, limit),
        )
        return [PendingDelivery(key, attempts, bytes(payload)) for key, attempts, payload in rows]

    def mark_sent(self, lane: Lane, keys: Sequence[str], now: float) -> None:
        self._write(
            (
                "UPDATE deliveries SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
                "last_error = NULL WHERE idempotency_key = ? AND notifier = ? AND recipient = ? "
                "AND status = 'pending'",
                (now, key, lane.notifier, lane.recipient),
            )
            for key in keys
        )

    def mark_attempt_failed(
        self, lane: Lane, keys: Sequence[str], error: str, retry_at: float | None
    ) -> None:
        """Count a failed attempt; ``retry_at`` None gives up (status ``failed``)."""
        status = "pending" if retry_at is not None else "failed"
        self._write(
            (
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = COALESCE(?, next_attempt_at) "
                "WHERE idempotency_key = ? AND notifier = ? AND recipient = ? "
                "AND status = 'pending'",
                (status, error[:500], retry_at, key, lane.notifier, lane.recipient),
            )
            for key in keys
        )

    def retry_failed(self, now: float, alert_id: str | None = None) -> int:
        """Put given-up deliveries back to pending (an operator fixed the cause)."""
        sql = (
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, attempts = 0 "
            "WHERE status = 'failed'"
        )
        args: list[Any] = [now]
        if alert_id:
            sql += (
                " AND idempotency_key IN (SELECT idempotency_key FROM changes WHERE alert_id = ?)"
            )
            args.append(alert_id)
        return self._write([(sql, args)])[0]

    def counts(self) -> dict[str, int]:
        rows = dict(self._read("SELECT status, COUNT(*) FROM deliveries GROUP BY status"))
        return {status: int(rows.get(status, 0)) for status in STATUSES}


def delivery_report(
    path: Path, *, status: str | None = None, alert_id: str | None = None, limit: int = 200
) -> dict[str, Any]:
    """Delivery state per alert for an operator: counts, then alerts newest first, each
    change with its deliveries. Opens the ledger read-only (the worker may be running)."""
    if not path.exists():
        raise FileNotFoundError(f"no delivery state at {path} (has the stack run with alerts?)")
    db = Ledger.open_readonly(path)
    try:
        counts = dict(db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status"))
        redelivered = db.execute("SELECT COALESCE(SUM(redelivered), 0) FROM changes").fetchone()
        query = {"status": status, "alert_id": alert_id, "limit": limit}
        rows = db.execute(REPORT_SQL, query).fetchall()
    finally:
        db.close()
    by_alert: dict[str, dict[str, Any]] = {}
    for row in rows:
        alert = by_alert.setdefault(
            row["alert_id"],
            {
                "alert_id": row["alert_id"],
                "kind": row["kind"],
                "severity": row["severity"],
                "facility_id": row["facility_id"],
                "changes": {},
            },
        )
        change = alert["changes"].setdefault(
            row["idempotency_key"],
            {
                "sequence": row["sequence"],
                "change": row["change"],
                "idempotency_key": row["idempotency_key"],
                "received_at": _instant(row["received_at"]),
                "redelivered": row["redelivered"],
                "deliveries": [],
            },
        )
        if row["notifier"] is not None:
            change["deliveries"].append(
                {
                    "notifier": row["notifier"],
                    "recipient": row["recipient"],
                    "status": row["status"],
                    "fallback": bool(row["fallback"]),
                    "attempts": row["attempts"],
                    "next_attempt_at": _instant(row["next_attempt_at"])
                    if row["status"] == "pending"
                    else None,
                    "sent_at": _instant(row["sent_at"]),
                    "last_error": row["last_error"],
                }
            )
    ordered = list(by_alert.values())
    for alert in ordered:
        alert["changes"] = list(alert["changes"].values())
    return {
        "ledger": str(path),
        "deliveries": {s: int(counts.get(s, 0)) for s in STATUSES},
        "redelivered_messages": int(redelivered[0]),
        "alerts": ordered,
    }


def _instant(value: float | None) -> str | None:
    if value is None:
        return None
    return (
        datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
