"""A durable outbox for facilities with an unreliable link: events wait in SQLite on the
facility's own disk until the broker takes them, then go out in the order they were added.

Each event is validated and encoded when it is added (a bad event is refused at once, not
days later), and committed to disk before ``add`` returns, so a power cut loses nothing the
facility system was told was kept. The outbox has one stable ``source`` and numbers its
events (``seq`` = the row id), so an event sent again after a crash or a lost
acknowledgement is recognised downstream as the same submission and counted once.

Delivered rows are kept for ``keep_days`` so that :meth:`Outbox.resend_since` can send them
again: the embedded broker keeps topics in memory only, and what it acknowledged but the
worker had not yet read is gone if it restarts (see docs/operations.md, "Reliability").
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from ostwatch.timeutil import utc_now
from producers.publisher import EventPublisher, InvalidEvent, PublishError
from schemas.codec import encode_event
from schemas.models import BaseEvent, EventRejected, parse_event_dict

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    added_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
CREATE TABLE IF NOT EXISTS outbox_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class OutboxError(RuntimeError):
    """The outbox cannot keep events (directory not writable, disk full, file damaged)."""


class Outbox:
    """Events kept on disk until the broker acknowledged them; see the module docstring.

    ``deliver`` never raises because the broker is away: it returns how many went out and
    leaves the rest for the next call, so a facility simply calls it every minute or so.
    """

    def __init__(
        self,
        directory: Path,
        bootstrap_servers: str,
        topic: str,
        *,
        security: Mapping[str, Any] | None = None,
        chunk: int = 1000,
        keep_days: float = 7.0,
    ) -> None:
        self.path = Path(directory) / "outbox.sqlite3"
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._security = dict(security or {})
        self._chunk = chunk
        self._keep = timedelta(days=keep_days)
        self._publisher: EventPublisher | None = None
        try:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self.source = self._stable_source()
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot use the outbox in {directory}: {exc}") from exc

    def _stable_source(self) -> str:
        """This outbox's submission name, chosen once and kept in the file."""
        row = self._db.execute("SELECT value FROM outbox_meta WHERE name = 'source'").fetchone()
        if row is not None:
            return str(row[0])
        source = f"outbox:{uuid.uuid4()}"
        self._db.execute("INSERT INTO outbox_meta VALUES ('source', ?)", (source,))
        return source

    # -- keeping -----------------------------------------------------------------------

    def add(self, event: BaseEvent | Mapping[str, Any]) -> int:
        """Validate and keep one event on disk; returns its seq. Raises InvalidEvent."""
        if not isinstance(event, BaseEvent):
            try:
                event = parse_event_dict(event)
            except EventRejected as exc:
                raise InvalidEvent(exc.reason) from None
        try:
            cursor = self._db.execute(
                "INSERT INTO outbox (key, value, added_at) VALUES (?, ?, ?)",
                (event.facility_id.encode(), encode_event(event), _stamp(utc_now())),
            )
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot keep the event in {self.path}: {exc}") from exc
        return int(cursor.lastrowid or 0)

    def pending(self) -> int:
        """How many events wait for the broker."""
        row = self._db.execute("SELECT count() FROM outbox WHERE sent_at IS NULL").fetchone()
        return int(row[0])

    # -- delivering --------------------------------------------------------------------

    def deliver(self, timeout: float = 60.0) -> int:
        """Send what waits, oldest first, in chunks marked sent once acknowledged.

        A chunk the broker did not fully acknowledge stays pending and is sent whole next
        time (the part that did arrive is then a redelivery, counted once downstream).
        """
        delivered = 0
        while True:
            rows = self._db.execute(
                "SELECT seq, key, value FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
                (self._chunk,),
            ).fetchall()
            if not rows:
                break
            try:
                publisher = self._connected()
                for seq, key, value in rows:
                    publisher.publish_encoded(bytes(key), bytes(value), int(seq))
                publisher.flush(timeout=timeout)
            except (PublishError, KafkaError) as exc:
                log.warning(
                    "broker unreachable, %d event(s) kept in the outbox: %s",
                    self.pending(),
                    exc,
                    extra={"topic": self.topic, "source": self.source},
                )
                self._disconnect()
                break
            self._db.execute(
                "UPDATE outbox SET sent_at = ? WHERE sent_at IS NULL AND seq <= ?",
                (_stamp(utc_now()), rows[-1][0]),
            )
            delivered += len(rows)
        self._forget_delivered()
        return delivered

    def resend_since(self, since: datetime) -> int:
        """Mark events delivered at or after ``since`` as pending again (after a broker
        lost them); returns how many. Downstream counts each event once."""
        cursor = self._db.execute(
            "UPDATE outbox SET sent_at = NULL WHERE sent_at >= ?", (_stamp(since),)
        )
        return cursor.rowcount

    def _forget_delivered(self) -> None:
        cutoff = _stamp(utc_now() - self._keep)
        self._db.execute("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?", (cutoff,))

    def _connected(self) -> EventPublisher:
        if self._publisher is None:
            if not _reachable(self.bootstrap_servers):
                # Creating a producer against a dead link would block for ~30 s first.
                raise PublishError(f"no broker answers at {self.bootstrap_servers}")
            self._publisher = EventPublisher(
                self.bootstrap_servers, self.topic, source=self.source, security=self._security
            )
        return self._publisher

    def _disconnect(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            try:
                publisher.close(timeout=1.0)
            except KafkaError:
                log.debug("closing a broken producer failed", exc_info=True)

    def close(self) -> None:
        self._disconnect()
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _stamp(instant: datetime) -> str:
    """UTC text of one fixed width, so that SQLite compares instants as strings."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _reachable(bootstrap_servers: str, timeout: float = 3.0) -> bool:
    """Whether any bootstrap address accepts a TCP connection right now."""
    for address in bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return False
