"""The two pipelines ostwatch's worker is compared with (bench/compare.py), one process each.

Both own a fresh chDB directory (chDB allows one process per directory), migrate it, load
the fixture registry, and consume the raw events topic with a consumer group of their own
from the earliest offset. Neither runs the alert engine (the comparison runs all three
pipelines with OSTWATCH_ALERT_ENABLED=false) and neither sends rejected lines to the
dead-letter topic (the benchmark files have none).

- ``plain``: the naive baseline. kafka-python ``KafkaConsumer``; per Kafka message, decode
  and validate with our schemas and registry (``IntakeService.decide`` on that one
  message), then ONE INSERT of one archive row per accepted event, then a synchronous
  offset commit. It does *less* than the others: no hash chain, no aggregate refresh, no
  submission rows, no deduplication token (a redelivery archives twice).
- ``quix``: Quix Streams 3.x (confluent-kafka/librdkafka). An ``Application`` on the raw
  topic whose sink, a ``BatchingSink``, is flushed on every Quix checkpoint and hands the
  checkpoint's messages to the very ``IntakeService.process`` the Faust agent calls:
  decode, validate, duplicate filter, archive + hash chain, aggregate refresh, submission
  rows. So it does exactly ostwatch's domain work; what differs is the framework and its
  batching. A checkpoint is taken every ``batch_within_s`` (0.25 s) or ``batch_max``
  (5,000) messages, the same bounds the Faust agent batches by (``stream.take_events``),
  and the sink writes all partitions of a checkpoint in one call, as one Faust batch does.

Progress goes to a JSON status file (``--status``), rewritten at most every 0.2 s and on
stop: messages decided so far and when, the freshness histogram (Kafka timestamp → the
event's batch is archived, the same ``LatencyHistogram`` the worker keeps) and, on stop,
what ClickHouse holds. SIGUSR1 resets the histogram (after a warm-up), SIGTERM stops.

    python -m bench.pipelines {plain,quix} --bootstrap H:P --topic T --data-dir D --status F
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from quixstreams import Application
from quixstreams.sinks import BatchingSink, SinkBatch
from quixstreams.sinks.base.item import SinkItem

from infra.worker import intake_service
from ostwatch.metrics import LatencyHistogram
from ostwatch.settings import AlertSettings, ClickHouseSettings, StreamSettings, load
from schemas.reference import REGISTRY_FILES
from sinks.clickhouse import ClickHouse
from sinks.records import IntakeBatch
from sinks.store import Store
from streams.intake.classify import RawMessage
from streams.intake.service import IntakeService
from streams.kafka_compat import EMBEDDED_GROUP_TIMINGS

REGISTRY = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "registry"
PIPELINES = ("plain", "quix")

log = logging.getLogger(__name__)


class Status:
    """What the pipeline did so far, as a JSON file the benchmark polls."""

    def __init__(self, path: Path, freshness: LatencyHistogram) -> None:
        self.path = path
        self.freshness = freshness
        self.decided = 0
        self.decided_at = 0.0
        self._written = 0.0

    def count(self, decided: int) -> None:
        """``decided`` more messages are archived (or rejected) and their offsets committable."""
        self.decided += decided
        self.decided_at = time.time()
        if self.decided_at - self._written >= 0.2:
            self.write()

    def write(self, **extra: Any) -> None:
        doc = {
            "pid": os.getpid(),
            "ready": True,
            "decided": self.decided,
            "decided_at": self.decided_at,
            "freshness": self.freshness.summary(),
            **extra,
        }
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(json.dumps(doc))
        scratch.replace(self.path)
        self._written = time.time()


def open_store(data_dir: Path, clickhouse: ClickHouseSettings) -> Store:
    """A migrated store in ``data_dir`` with the fixture registry loaded."""
    store = Store(ClickHouse.connect(clickhouse, data_dir))
    store.migrate()
    texts = {name: (REGISTRY / name).read_text(encoding="utf-8") for name in REGISTRY_FILES}
    store.load_registry(texts, "bench")
    return store


def stored_counts(store: Store) -> dict[str, int]:
    """What ClickHouse holds at the end: archive rows and submission rows."""
    archived = store.archive.count()
    submissions = store.submissions.count()
    return {"archived": int(archived), "submissions": int(submissions)}


def group_timings_ms() -> dict[str, int]:
    """The embedded broker's consumer-group timings (streams/app.py), in milliseconds."""
    return {
        "session": int(EMBEDDED_GROUP_TIMINGS["broker_session_timeout"] * 1000),
        "heartbeat": int(EMBEDDED_GROUP_TIMINGS["broker_heartbeat_interval"] * 1000),
    }


# -- (a) plain consumer ------------------------------------------------------------------


def run_plain(
    args: argparse.Namespace,
    stream: StreamSettings,
    store: Store,
    service: IntakeService,
    status: Status,
) -> None:
    """Per message: decide, one INSERT per accepted event, commit that message's offset."""
    timings = group_timings_ms()
    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=[args.bootstrap],
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=stream.fetch_max_wait_ms,
        session_timeout_ms=timings["session"],
        heartbeat_interval_ms=timings["heartbeat"],
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    try:
        while not stopping.is_set():
            for partition, records in consumer.poll(timeout_ms=100).items():
                for record in records:
                    if stopping.is_set():  # a poll may bring thousands of events
                        return
                    message = raw(
                        record.topic, record.partition, record.offset, record.value,
                        record.headers, record.timestamp,
                    )  # fmt: skip
                    batch = service.decide([message])
                    for item in batch.accepted:
                        store.archive.insert([item])
                    status.freshness.record(time.time() - record.timestamp / 1000)
                    consumer.commit(
                        {
                            TopicPartition(partition.topic, partition.partition): (
                                OffsetAndMetadata(record.offset + 1, "", -1)
                            )
                        }
                    )
                    status.count(len(batch))
    finally:
        consumer.close()


# -- (b) Quix Streams ---------------------------------------------------------------------


class IntakeSink(BatchingSink):
    """Hands each Quix checkpoint's messages to ``IntakeService.process``, as the Faust agent
    hands it each batch; Quix commits the offsets only after ``flush`` returns."""

    def __init__(self, service: IntakeService, status: Status) -> None:
        super().__init__()
        self.service = service
        self.status = status
        self._loop = asyncio.new_event_loop()

    def write(self, batch: SinkBatch) -> None:
        """One partition's batch (``flush`` below writes all partitions at once instead)."""
        self.process([_item(batch.topic, batch.partition, item) for item in batch])

    def flush(self) -> None:
        """Every partition's messages of this checkpoint in one intake batch."""
        try:
            messages = [
                _item(topic, partition, item)
                for (topic, partition), batch in self._batches.items()
                for item in batch
            ]
            if messages:
                self.process(messages)
        finally:
            self._batches.clear()

    def process(self, messages: Sequence[RawMessage]) -> None:
        decided: IntakeBatch = self._loop.run_until_complete(self.service.process(messages))
        self.status.count(len(decided))


def _item(topic: str, partition: int, item: SinkItem) -> RawMessage:
    return raw(topic, partition, item.offset, item.value, item.headers, item.timestamp)


def raw(
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    headers: Sequence[tuple[str, str | bytes | None]] | None,
    timestamp_ms: int,
) -> RawMessage:
    """A consumed record (kafka-python or Quix) as the intake sees it."""
    return RawMessage(
        value=value,
        headers=[(k, v.encode() if isinstance(v, str) else v or b"") for k, v in headers or []],
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=timestamp_ms / 1000,
    )


def run_quix(
    args: argparse.Namespace,
    stream: StreamSettings,
    store: Store,
    service: IntakeService,
    status: Status,
) -> None:
    """A Quix ``Application``: raw bytes in, the intake sink out, at-least-once."""
    timings = group_timings_ms()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=stream.batch_within_s,
        commit_every=stream.batch_max,
        processing_guarantee="at-least-once",  # exactly-once needs transactions (ENVIRONMENT)
        auto_create_topics=False,  # the benchmark creates the topic with its partitions
        use_changelog_topics=False,  # stateless: nothing to restore
        state_dir=str(args.data_dir / "quix-state"),
        consumer_extra_config={
            "fetch.wait.max.ms": stream.fetch_max_wait_ms,  # Tansu holds a fetch this long
            "session.timeout.ms": timings["session"],
            "heartbeat.interval.ms": timings["heartbeat"],
        },
        loglevel="WARNING",
    )
    topic = app.topic(args.topic, key_deserializer="bytes", value_deserializer="bytes")
    app.dataframe(topic).sink(IntakeSink(service, status))
    app.run()  # stops on SIGTERM, after a last checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", choices=PIPELINES)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--status", type=Path, required=True)
    parser.add_argument("--group", default=f"bench-{uuid.uuid4().hex[:8]}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # Settings built once, here at the entry point, and passed down.
    stream, clickhouse = load(StreamSettings), load(ClickHouseSettings)
    store = open_store(args.data_dir, clickhouse)
    service = intake_service(store, stream, clickhouse, load(AlertSettings))
    service.warm_up()
    status = Status(args.status, LatencyHistogram())
    if args.pipeline == "quix":
        status.freshness = service.stats.freshness  # recorded by IntakeService.process

    def reset(signum: int, frame: FrameType | None) -> None:
        status.freshness.reset()

    signal.signal(signal.SIGUSR1, reset)
    status.write()
    try:
        (run_quix if args.pipeline == "quix" else run_plain)(args, stream, store, service, status)
    finally:
        status.write(final=True, stored=stored_counts(store))
        store.close()


if __name__ == "__main__":
    main()
