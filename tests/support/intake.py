"""Feed contract events through the real intake on a real embedded ClickHouse, without a
broker: exactly what the Faust agent does with each batch it takes from the events topic
(``IntakeService.process``: decide → archive write → aggregate refresh).

Messages are framed the way real submissions are (see ``producers.publisher``):

* ``"line"`` — the JSON line itself in a RawSubmission (``publish_line`` for a line the
  client could not validate): the stream parses and judges the line on its own;
* ``"event"`` — a line the client finds valid as its typed Avro record (``publish_line``),
  anything else as a RawSubmission;
* ``"batch"`` — the same, several in one SubmissionBatch value (``publish_lines``).

Every submission carries the ``ostwatch-source`` / ``ostwatch-seq`` headers, with a new seq
per submission, so a resent event is a duplicate and a re-processed batch a redelivery.
"""

from __future__ import annotations

import asyncio
import csv
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ostwatch.settings import AlertSettings, ClickHouseSettings
from schemas.codec import encode_event, encode_raw_submission, encode_submission_batch
from schemas.kafka_headers import submission_headers
from schemas.models import EventRejected, parse_event_dict
from schemas.reference import REGISTRY_FILES, RegistrySnapshot, parse_registry_dir
from sinks.clickhouse import ClickHouse
from sinks.records import IntakeBatch
from sinks.reports import Reports, Scope, Source
from sinks.store import Store
from streams.alerts.engine import AlertEngine
from streams.intake.classify import RawMessage
from streams.intake.pipeline import IntakeConfig, IntakeContext
from streams.intake.service import IntakeService
from tests.support.events import Framing
from tests.support.oracle import REPORT_NAMES

__all__ = [
    "REGISTRY",
    "REGISTRY_DIR",
    "REPORT_NAMES",
    "IntakeHarness",
    "Payload",
    "frame",
    "json_line",
    "split",
]

REGISTRY_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "registry"
REGISTRY: RegistrySnapshot = parse_registry_dir(REGISTRY_DIR)
TOPIC = "ostwatch.events"
SOURCE = "test:intake-harness"

# A submission: a JSON object as a facility sends it, or raw bytes (not even JSON).
Payload = dict[str, Any] | bytes
Reports5 = dict[str, list[dict[str, Any]]]


def json_line(doc: dict[str, Any]) -> bytes:
    """The event as one JSON Lines line, as a facility system writes it."""
    return orjson.dumps(doc)


def _headers(source: str, seq: int) -> list[tuple[str, bytes]]:
    return submission_headers(source, seq)


def _value(payload: Payload, framing: Framing) -> bytes:
    """One submission's Kafka value. As the publisher does it: an event the client finds
    valid goes as its typed Avro record, anything else (and everything with ``"line"``
    framing) as the line itself in a RawSubmission, for the stream to judge."""
    line = payload if isinstance(payload, bytes) else json_line(payload)
    if framing != "line" and isinstance(payload, dict):
        try:
            return encode_event(parse_event_dict(payload))
        except EventRejected as exc:
            return encode_raw_submission(line, exc.reason)
    return encode_raw_submission(line, "sent unvalidated")


def frame(
    payloads: Sequence[Payload], *, framing: Framing, source: str, first_seq: int, offset: int
) -> list[RawMessage]:
    """Kafka records for the payloads, one submission (seq) each, from ``first_seq`` on."""
    values = [_value(payload, framing) for payload in payloads]
    seqs = range(first_seq, first_seq + len(values))
    if framing == "batch" and len(values) > 1:
        batch = encode_submission_batch(list(zip(seqs, values, strict=True)))
        return [RawMessage(batch, _headers(source, first_seq), TOPIC, 0, offset)]
    return [
        RawMessage(value, _headers(source, seq), TOPIC, 0, offset + index)
        for index, (seq, value) in enumerate(zip(seqs, values, strict=True))
    ]


class IntakeHarness:
    """A database of its own with the fixture registry, fed batch by batch through a real
    ``IntakeService``; ``reset`` empties it for the next example (registry kept)."""

    def __init__(
        self,
        chdb_dir: Path,
        registry_dir: Path = REGISTRY_DIR,
        alert_settings: AlertSettings | None = None,
    ) -> None:
        self.alert_settings = alert_settings
        self.database = f"t_{uuid.uuid4().hex[:12]}"
        self.db = ClickHouse.connect(ClickHouseSettings(database=self.database), chdb_dir)
        self.store = Store(self.db)
        self.store.migrate()
        files = {
            name: (registry_dir / name).read_text(encoding="utf-8")
            for name in REGISTRY_FILES
            if (registry_dir / name).is_file()
        }
        self.store.load_registry(files, str(registry_dir))
        self.service = self._start_service()
        self.sent: list[list[RawMessage]] = []
        self.outcomes: list[IntakeBatch] = []
        self._seq = 0
        self._offset = 0

    def _start_service(self) -> IntakeService:
        settings = self.alert_settings
        alerts = AlertEngine(self.store, settings, live=True) if settings is not None else None
        service = IntakeService(IntakeContext(self.store, IntakeConfig(retry_max_s=1.0), alerts))
        service.warm_up()
        return service

    def reset(self) -> None:
        """Empty every table but the registry and start a fresh intake service."""
        tables = [row[0] for row in self.db.query_rows("SHOW TABLES")]
        for table in tables:
            if not table.startswith("registry_") and table != "schema_migrations":
                self.db.command(f"TRUNCATE TABLE `{table}`")
        self.sent.clear()
        self.outcomes.clear()
        self.service = self._start_service()

    def process(self, messages: Sequence[RawMessage]) -> IntakeBatch:
        """One batch through ``IntakeService.process``, as the agent hands it over."""
        outcome = asyncio.run(self.service.process(list(messages)))
        self.outcomes.append(outcome)
        return outcome

    def send(self, payloads: Sequence[Payload], framing: Framing = "line") -> IntakeBatch:
        """One batch of new submissions (fresh seqs and offsets)."""
        messages = frame(
            payloads, framing=framing, source=SOURCE, first_seq=self._seq + 1, offset=self._offset
        )
        self._seq += len(payloads)
        self._offset += len(messages)
        self.sent.append(messages)
        return self.process(messages)

    def feed(
        self,
        docs: Sequence[Payload],
        batch_sizes: Sequence[int] = (),
        framing: Framing = "line",
    ) -> list[IntakeBatch]:
        """Send the events in order, one batch per size given (the rest in one batch)."""
        return [self.send(batch, framing) for batch in split(docs, batch_sizes)]

    def redeliver(self, index: int) -> IntakeBatch:
        """The ``index``-th batch sent, processed again unchanged: Kafka's at-least-once."""
        return self.process(self.sent[index])

    def accepted_ids(self) -> set[str]:
        """The event_ids the intake accepted so far (redeliveries aside)."""
        return {item.event.event_id for batch in self.outcomes for item in batch.accepted}

    def reports(self, source: Source, as_of: datetime | None) -> Reports5:
        """All five reports, by name, from the live aggregates or the archive alone."""
        return {name: self.one(source, name, as_of) for name in REPORT_NAMES}

    def one(self, source: Source, name: str, as_of: datetime | None) -> list[dict[str, Any]]:
        """One report, from the live aggregates or the archive alone."""
        report = getattr(Reports(self.db, self.store.registry, source), name)
        rows: list[dict[str, Any]] = report(as_of, Scope())
        return rows

    def report(self, name: str, as_of: datetime | None = None) -> list[dict[str, Any]]:
        """One report from the live aggregates, after checking the archive answers the same."""
        live = self.one("aggregates", name, as_of)
        archive = self.one("archive", name, as_of)
        assert live == archive, f"{name} as of {as_of}: aggregates {live} != archive {archive}"
        return live

    def drop(self) -> None:
        self.db.command(f"DROP DATABASE IF EXISTS `{self.database}`")
        self.db.close()


def split(docs: Sequence[Payload], sizes: Sequence[int]) -> Iterator[list[Payload]]:
    """Consecutive batches of the given sizes; whatever is left over is one more batch."""
    start = 0
    for size in sizes:
        if start >= len(docs):
            return
        yield list(docs[start : start + size])
        start += size
    if start < len(docs):
        yield list(docs[start:])


def registry_live_from(tmp_path: Path, live_from: dict[str, str]) -> Path:
    """The fixture registry with facilities.csv's optional live_from column (CONTRACT §2)."""
    directory = tmp_path / "registry"
    directory.mkdir()
    for source in REGISTRY_DIR.iterdir():
        (directory / source.name).write_bytes(source.read_bytes())
    with (REGISTRY_DIR / "facilities.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    with (directory / "facilities.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*rows[0], "live_from"])
        writer.writerows([*row, live_from.get(row[0], "")] for row in rows[1:])
    return directory
