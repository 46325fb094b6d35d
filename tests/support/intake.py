"""Feed contract events through the real intake (classify, archive, aggregate refresh) on a
real embedded ClickHouse, without a broker: what the Faust agent does with each batch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ostwatch.settings import ClickHouseSettings
from schemas.codec import encode_event
from schemas.models import parse_event_dict
from sinks.clickhouse import ClickHouse
from sinks.reports import Reports, Scope, Source
from sinks.store import Store
from streams.intake.classify import SEQ_HEADER, SOURCE_HEADER, RawMessage
from streams.intake.service import IntakeService

REGISTRY_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "registry"
REGISTRY_FILES = ("facilities.csv", "items.csv", "targets.csv", "deadlines.csv")
REPORT_NAMES = ("stock", "dispensing", "patients", "tests", "targets")


def messages_for(docs: Sequence[dict[str, Any]], source: str, first_seq: int) -> list[RawMessage]:
    """One framed Kafka message per event, named (source, seq) like a producer names them."""
    return [
        RawMessage(
            value=encode_event(parse_event_dict(doc)),
            headers=[(SOURCE_HEADER, source.encode()), (SEQ_HEADER, str(seq).encode())],
            topic="ostwatch.events",
            partition=0,
            offset=seq,
        )
        for seq, doc in enumerate(docs, start=first_seq)
    ]


class IntakeHarness:
    """A fresh database with the fixture registry, fed batch by batch through IntakeService."""

    def __init__(self, chdb_dir: Path, registry_dir: Path = REGISTRY_DIR) -> None:
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
        self.service = IntakeService(self.store, registry_refresh_s=0.0, retry_max_s=1.0)
        self.service.warm_up()
        self._seq = 0

    def feed(self, docs: Sequence[dict[str, Any]], batch_sizes: Sequence[int] = ()) -> None:
        """Process the events in order, split into batches of the given sizes (rest: one)."""
        for batch in _split(list(docs), list(batch_sizes)):
            messages = messages_for(batch, "test:harness", self._seq + 1)
            self._seq += len(batch)
            asyncio.run(self.service.process(messages))

    def reports(self, source: Source, as_of: datetime | None) -> dict[str, Any]:
        reports = Reports(self.db, self.store.registry, source)
        return {name: getattr(reports, name)(as_of, Scope()) for name in REPORT_NAMES}

    def drop(self) -> None:
        self.db.command(f"DROP DATABASE IF EXISTS `{self.database}`")
        self.db.close()


def _split(docs: list[dict[str, Any]], sizes: list[int]) -> Iterator[list[dict[str, Any]]]:
    start = 0
    for size in sizes:
        if start >= len(docs):
            return
        yield docs[start : start + size]
        start += size
    if start < len(docs):
        yield docs[start:]
