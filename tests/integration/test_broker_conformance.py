"""Pins the Kafka behaviours the ostwatch pipeline relies on, against the broker it runs on.

By default the tests start the embedded Tansu broker; ``OSTWATCH_TEST_BOOTSTRAP=host:port`` points
them at an existing broker (e.g. Apache Kafka from ``infra/docker-compose.yml``) instead. The known
Tansu deviations are strict expected failures here, and plain expected failures on an external
broker, so switching to Apache Kafka turns them into visible passes. Every test uses its own
topics (deleted afterwards: Tansu never applies retention) and its own consumer group.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import UnknownError
from aiokafka.structs import TopicPartition as AioPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import OffsetOutOfRangeError
from kafka.structs import OffsetAndMetadata

from infra.broker import EmbeddedBroker, delete_topics, ensure_topics, wait_for_broker
from streams.kafka_compat import end_offsets

logger = logging.getLogger(__name__)

EXTERNAL_BOOTSTRAP = os.environ.get("OSTWATCH_TEST_BOOTSTRAP")
ON_TANSU = not EXTERNAL_BOOTSTRAP
READ_TIMEOUT_S = 15.0
# The group settings the stack uses on the embedded broker (see ENVIRONMENT.md: Tansu holds a
# join for half the session timeout).
GROUP_SETTINGS: dict[str, int] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
}
AIO_REBALANCE_TIMEOUT_MS = 6000
JOIN_LIMIT_S = 15.0
# Apache Kafka's log cleaner backs off 15 s between runs, so an external broker gets longer.
COMPACTION_WAIT_S = 5.0 if ON_TANSU else 40.0

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def tansu_deviation(
    reason: str, raises: type[BaseException] = AssertionError
) -> pytest.MarkDecorator:
    """Expected failure on Tansu; on an external broker it may pass (that is the point)."""
    return pytest.mark.xfail(strict=ON_TANSU, raises=raises, reason=f"Tansu 0.6.0: {reason}")


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One broker for the module: the embedded Tansu, or the one named by the environment."""
    if EXTERNAL_BOOTSTRAP:
        wait_for_broker(EXTERNAL_BOOTSTRAP, timeout=30.0)
        yield EXTERNAL_BOOTSTRAP
        return
    log_path: Path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with EmbeddedBroker(log_path=log_path) as broker:
        yield broker.bootstrap


class Topics:
    """Fresh, uniquely named topics for one test, all deleted at its end."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.names: list[str] = []

    def name(self) -> str:
        """A unique topic name, tracked for deletion but not created (for auto-creation)."""
        name = f"conformance-{uuid.uuid4().hex[:12]}"
        self.names.append(name)
        return name

    def create(self, partitions: int = 1, configs: Mapping[str, str] | None = None) -> str:
        name = self.name()
        ensure_topics(self.bootstrap, {name: partitions}, configs={name: configs or {}})
        return name


@pytest.fixture
def topics(bootstrap: str) -> Iterator[Topics]:
    factory = Topics(bootstrap)
    yield factory
    delete_topics(bootstrap, factory.names)


@pytest.fixture
def group_id() -> str:
    return f"conformance-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------------------------
# Client helpers
# --------------------------------------------------------------------------------------------


def producer(bootstrap: str, **config: Any) -> KafkaProducer:
    """kafka-python producer; idempotence off explicitly (3.x defaults it on, Tansu breaks it)."""
    options: dict[str, Any] = {"enable_idempotence": False, "acks": "all", **config}
    return KafkaProducer(bootstrap_servers=bootstrap, **options)


def produce_batches(bootstrap: str, topic: str, batches: int, per_batch: int) -> None:
    """Write ``batches`` record batches of ``per_batch`` records each to partition 0."""
    with_linger = producer(bootstrap, linger_ms=10_000, batch_size=1024 * 1024)
    try:
        for batch in range(batches):
            for index in range(per_batch):
                with_linger.send(topic, f"{batch}-{index}".encode(), partition=0)
            with_linger.flush(timeout=10)
    finally:
        with_linger.close(timeout=5)


def read_records(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    start: int | None = None,
    timeout: float = READ_TIMEOUT_S,
    **config: Any,
) -> list[Any]:
    """Read ``count`` records from every partition of ``topic`` (from ``start`` or the start)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **config
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))
        ]
        consumer.assign(partitions)
        for tp in partitions:
            if start is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    finally:
        consumer.close(autocommit=False)
    assert len(records) >= count, f"read {len(records)} of {count} records from {topic}"
    return records


def read_until_value(bootstrap: str, topic: str, last: bytes, **config: Any) -> list[Any]:
    """Every record from the start up to the one whose value is ``last`` (partition 0).

    Used where the count to expect is the question (compaction, aborted transactions).
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **config
    )
    tp = TopicPartition(topic, 0)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        records: list[Any] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while not records or records[-1].value != last:
            assert time.monotonic() < deadline, f"{last!r} not read back from {topic}"
            records.extend(consumer.poll(timeout_ms=200).get(tp, []))
    finally:
        consumer.close(autocommit=False)
    return records


async def aio_read(bootstrap: str, topic: str, count: int) -> list[Any]:
    """aiokafka counterpart of :func:`read_records` (assigned, from the beginning)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        await consumer.start()
        await consumer.topics()  # loads cluster metadata, so the topic's partitions are known
        partitions = [AioPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(records) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    assert len(records) >= count, f"read {len(records)} of {count} records from {topic}"
    return records


def values(records: list[Any]) -> list[bytes]:
    return [record.value for record in records]


# --------------------------------------------------------------------------------------------
# Behaviours that hold on Tansu and on Apache Kafka
# --------------------------------------------------------------------------------------------


def test_round_trip_preserves_keys_values_and_headers(bootstrap: str, topics: Topics) -> None:
    topic = topics.create(partitions=2)
    sent = [
        (f"facility-{i % 3}".encode(), f"event-{i}".encode(), [("event_id", uuid.uuid4().bytes)])
        for i in range(12)
    ]
    client = producer(bootstrap)
    try:
        for key, value, headers in sent:
            client.send(topic, value, key=key, headers=headers)
        client.flush(timeout=10)
    finally:
        client.close(timeout=5)

    received = read_records(bootstrap, topic, len(sent))
    assert sorted((r.key, r.value, list(r.headers)) for r in received) == sorted(sent)


def test_ordering_is_kept_per_partition(bootstrap: str, topics: Topics) -> None:
    topic = topics.create(partitions=3)
    client = producer(bootstrap, linger_ms=5)
    try:
        futures = [
            client.send(topic, str(seq).encode(), key=f"facility-{seq % 7}".encode())
            for seq in range(300)
        ]
        client.flush(timeout=10)
        partition_of = [future.get(10).partition for future in futures]
    finally:
        client.close(timeout=5)

    by_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for record in read_records(bootstrap, topic, 300):
        by_partition[record.partition].append((record.offset, int(record.value)))
    assert sum(len(v) for v in by_partition.values()) == 300
    for partition, entries in by_partition.items():
        entries.sort()
        sequence = [seq for _, seq in entries]
        assert sequence == sorted(sequence), f"partition {partition} out of send order"
        assert sequence == [s for s in range(300) if partition_of[s] == partition]


def test_same_key_lands_on_same_partition_for_both_clients(bootstrap: str, topics: Topics) -> None:
    """kafka-python (producers) and aiokafka (Faust) must agree, or a facility's events split."""
    topic = topics.create(partitions=4)
    keys = [f"facility-{i}".encode() for i in range(8)]
    client = producer(bootstrap)
    try:
        sync_partitions = {
            key: {client.send(topic, b"x", key=key).get(10).partition for _ in range(5)}
            for key in keys
        }
    finally:
        client.close(timeout=5)

    async def aio_partitions() -> dict[bytes, set[int]]:
        aio = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        try:
            await aio.start()
            return {
                key: {(await aio.send_and_wait(topic, b"y", key=key)).partition for _ in range(5)}
                for key in keys
            }
        finally:
            await aio.stop()

    assert all(len(p) == 1 for p in sync_partitions.values())
    assert asyncio.run(aio_partitions()) == sync_partitions
    assert len(set().union(*sync_partitions.values())) > 1, "keys should spread over partitions"


def test_acks_all_kafka_python(bootstrap: str, topics: Topics) -> None:
    topic = topics.create()
    client = producer(bootstrap, acks="all", enable_idempotence=False)
    try:
        offsets = [client.send(topic, f"m{i}".encode()).get(10).offset for i in range(20)]
    finally:
        client.close(timeout=5)
    assert offsets == list(range(20))
    assert values(read_records(bootstrap, topic, 20)) == [f"m{i}".encode() for i in range(20)]


def test_acks_all_aiokafka(bootstrap: str, topics: Topics) -> None:
    topic = topics.create()

    async def send() -> list[int]:
        aio = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
        try:
            await aio.start()
            return [(await aio.send_and_wait(topic, f"m{i}".encode())).offset for i in range(20)]
        finally:
            await aio.stop()

    assert asyncio.run(send()) == list(range(20))
    assert values(read_records(bootstrap, topic, 20)) == [f"m{i}".encode() for i in range(20)]


def test_linger_batches_records_without_loss_or_duplicates(bootstrap: str, topics: Topics) -> None:
    topic = topics.create()
    client = producer(bootstrap, linger_ms=300, batch_size=1024 * 1024)
    try:
        futures = [client.send(topic, f"m{i}".encode()) for i in range(200)]
        assert not any(f.is_done for f in futures), "records left before linger elapsed"
        client.flush(timeout=10)
        offsets = [f.get(0).offset for f in futures]
        per_request = client.metrics()["producer-metrics"]["records-per-request-avg"]
    finally:
        client.close(timeout=5)
    assert offsets == list(range(200))
    assert per_request > 1, f"expected batched produce requests, got {per_request} per request"
    assert values(read_records(bootstrap, topic, 200)) == [f"m{i}".encode() for i in range(200)]


@pytest.mark.parametrize("codec", ["gzip", "lz4", "zstd", "snappy"])
def test_compression_round_trip_aiokafka(bootstrap: str, topics: Topics, codec: str) -> None:
    topic = topics.create()
    payloads = [
        f'{{"seq": {i}, "facility_id": "F001", "pad": "{"x" * 200}"}}'.encode() for i in range(100)
    ]

    async def round_trip() -> list[bytes]:
        aio = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=codec)
        try:
            await aio.start()
            sent = [await aio.send(topic, payload) for payload in payloads]
            await aio.flush()
            await asyncio.gather(*sent)
        finally:
            await aio.stop()
        return values(await aio_read(bootstrap, topic, len(payloads)))

    assert asyncio.run(round_trip()) == payloads


def test_fetch_from_the_middle_of_a_batch(bootstrap: str, topics: Topics) -> None:
    topic = topics.create()
    produce_batches(bootstrap, topic, batches=3, per_batch=10)
    records = read_records(bootstrap, topic, 15, start=15)
    assert [r.offset for r in records] == list(range(15, 30))
    assert records[0].value == b"1-5"


def test_group_commit_and_resume_kafka_python(
    bootstrap: str, topics: Topics, group_id: str
) -> None:
    topic = topics.create()
    produce_batches(bootstrap, topic, batches=1, per_batch=20)
    tp = TopicPartition(topic, 0)

    def member() -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=AIO_REBALANCE_TIMEOUT_MS,
            **GROUP_SETTINGS,
        )
        consumer.subscribe([topic])
        return consumer

    def poll_until(consumer: KafkaConsumer, count: int) -> list[Any]:
        records: list[Any] = []
        deadline = time.monotonic() + 20
        while len(records) < count and time.monotonic() < deadline:
            records.extend(consumer.poll(timeout_ms=200).get(tp, []))
        return records

    first = member()
    try:
        seen = poll_until(first, 10)
        assert len(seen) >= 10
        first.commit({tp: OffsetAndMetadata(10, "", -1)})
        assert first.committed(tp) == 10
    finally:
        first.close(autocommit=False)

    second = member()
    try:
        resumed = poll_until(second, 10)
    finally:
        second.close(autocommit=False)
    assert [r.offset for r in resumed[:10]] == list(range(10, 20))


def test_group_commit_and_resume_aiokafka(bootstrap: str, topics: Topics, group_id: str) -> None:
    """Slow on Tansu (~14 s): aiokafka sends no LeaveGroup in generation 0, so the second
    member waits for the first one's 6 s session to expire before its own join completes."""
    topic = topics.create()
    produce_batches(bootstrap, topic, batches=1, per_batch=20)
    tp = AioPartition(topic, 0)

    async def consume(count: int, commit_at: int | None) -> list[int]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            rebalance_timeout_ms=AIO_REBALANCE_TIMEOUT_MS,
            **GROUP_SETTINGS,
        )
        try:
            await consumer.start()
            offsets: list[int] = []
            deadline = time.monotonic() + 25
            while len(offsets) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200)
                offsets.extend(r.offset for r in batches.get(tp, []))
            if commit_at is not None:
                await consumer.commit({tp: commit_at})
                assert await consumer.committed(tp) == commit_at
            return offsets
        finally:
            await consumer.stop()

    async def scenario() -> list[int]:
        assert len(await consume(10, commit_at=10)) >= 10
        return await consume(10, commit_at=None)

    assert asyncio.run(scenario())[:10] == list(range(10, 20))


def test_explicit_creation_gives_declared_partition_count(bootstrap: str, topics: Topics) -> None:
    topic = topics.create(partitions=5)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        assert consumer.partitions_for_topic(topic) == set(range(5))
    finally:
        consumer.close(autocommit=False)


def test_consumer_group_join_time_with_embedded_settings(
    bootstrap: str, topics: Topics, group_id: str, record_property: Callable[[str, object], None]
) -> None:
    """Pins the stack's embedded group settings: Tansu holds a join for half the session."""
    topic = topics.create(partitions=2)

    async def join_seconds() -> float:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            rebalance_timeout_ms=AIO_REBALANCE_TIMEOUT_MS,
            **GROUP_SETTINGS,
        )
        started = time.monotonic()
        try:
            await consumer.start()
            while not consumer.assignment() and time.monotonic() - started < 30:
                await consumer.getmany(timeout_ms=100)
            assert consumer.assignment() == {AioPartition(topic, 0), AioPartition(topic, 1)}
            return time.monotonic() - started
        finally:
            await consumer.stop()

    seconds = asyncio.run(join_seconds())
    record_property("join_seconds", round(seconds, 2))
    logger.info("consumer group join took %.2f s", seconds)
    assert seconds < JOIN_LIMIT_S


def test_end_offsets_workaround_gives_true_end(bootstrap: str, topics: Topics) -> None:
    """streams.kafka_compat.end_offsets(quirks=True): the Fetch high watermark, on any broker."""
    topic = topics.create(partitions=2)
    produce_batches(bootstrap, topic, batches=3, per_batch=10)
    partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    assert end_offsets(bootstrap, partitions, quirks=True) == {partitions[0]: 30, partitions[1]: 0}

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        consumer.assign(partitions)
        consumer.seek(partitions[0], 3)
        assert end_offsets(consumer, partitions, quirks=True)[partitions[0]] == 30
        assert consumer.position(partitions[0]) == 3, "the caller's consumer must not move"
    finally:
        consumer.close(autocommit=False)


# --------------------------------------------------------------------------------------------
# Known Tansu deviations (expected to pass on Apache Kafka)
# --------------------------------------------------------------------------------------------


@tansu_deviation("ListOffsets(latest) returns the last batch's base offset + 1 (21, not 30)")
def test_list_offsets_latest_is_true_end(bootstrap: str, topics: Topics) -> None:
    topic = topics.create()
    produce_batches(bootstrap, topic, batches=3, per_batch=10)
    tp = TopicPartition(topic, 0)
    assert end_offsets(bootstrap, [tp], quirks=False) == {tp: 30}


@tansu_deviation("InitProducerId is rejected, aiokafka start() fails", raises=UnknownError)
def test_aiokafka_idempotent_producer_starts(bootstrap: str, topics: Topics) -> None:
    topic = topics.create()

    async def send() -> int:
        aio = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        try:
            await aio.start()
            return int((await aio.send_and_wait(topic, b"once")).offset)
        finally:
            await aio.stop()

    assert asyncio.run(send()) == 0


def broker_config(bootstrap: str, name: str) -> str | None:
    """A broker-level setting as the broker reports it through DescribeConfigs, if it does."""
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        broker_id = str(admin.describe_cluster()["brokers"][0]["broker_id"])
        # All keys, unfiltered: naming one key makes Tansu drop the connection, and the default
        # filter ("modified") hides values from server.properties and built-in defaults.
        resource = ConfigResource(ConfigResourceType.BROKER, broker_id)
        described = admin.describe_configs([resource], config_filter="all")
    entry = described.get("broker", {}).get(broker_id, {}).get(name)
    if entry is None:
        return None
    return str(entry["value"] if isinstance(entry, Mapping) else entry)


@tansu_deviation("auto-created topics get 4 partitions; num.partitions is neither set nor reported")
def test_auto_created_topic_takes_the_broker_default_partition_count(
    bootstrap: str, topics: Topics
) -> None:
    """Auto-creation is only predictable if it follows the broker's advertised num.partitions."""
    topic = topics.name()
    client = producer(bootstrap)
    try:
        client.send(topic, b"auto").get(10)
        actual = len(client.partitions_for(topic))
    finally:
        client.close(timeout=5)
    default = broker_config(bootstrap, "num.partitions")
    assert default is not None, f"broker does not report num.partitions; topic got {actual}"
    assert actual == int(default)


@tansu_deviation(
    "a produce to a topic it does not have is acknowledged, and once the topic is created the "
    "records are unreadable (its Fetch high watermark stays below them)"
)
def test_records_acknowledged_for_a_missing_topic_are_readable_once_it_exists(
    bootstrap: str, topics: Topics
) -> None:
    """A producer whose metadata still names a topic the broker no longer has (a memory-only
    broker restarted on the same port; here: the topic deleted) sends before the topic is
    created again. Kafka refuses such a produce (UNKNOWN_TOPIC_OR_PARTITION) and the producer
    retries after a metadata refresh; whatever it was told was written must be readable."""
    topic = topics.create(partitions=1)
    warm = producer(bootstrap, linger_ms=20, metadata_max_age_ms=600_000)
    try:
        warm.send(topic, b"before", partition=0).get(10)
        delete_topics(bootstrap, [topic])
        sent = [warm.send(topic, f"after-{i}".encode(), partition=0) for i in range(6)]
        warm.flush(timeout=10)
        acknowledged = [f.value for f in sent if f.succeeded()]
        assert acknowledged, "no record was acknowledged"
        ensure_topics(bootstrap, {topic: 1})
    finally:
        warm.close(timeout=5)
    records = read_records(bootstrap, topic, len(acknowledged), timeout=5.0)
    assert len(records) == len(acknowledged), (
        f"{len(acknowledged)} records acknowledged, {len(records)} readable"
    )


@tansu_deviation("cleanup.policy=compact is stored but never applied")
def test_compaction_removes_superseded_values(bootstrap: str, topics: Topics) -> None:
    topic = topics.create(
        configs={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.01",
            "min.compaction.lag.ms": "0",
            "delete.retention.ms": "100",
        }
    )
    client = producer(bootstrap, linger_ms=5)
    try:
        for batch in range(10):
            for index in range(10):
                client.send(topic, f"v{batch}-{index}".encode(), key=b"same-key")
            client.flush(timeout=10)
        deadline = time.monotonic() + COMPACTION_WAIT_S
        surviving = 100
        marker = 0
        while surviving >= 100 and time.monotonic() < deadline:
            time.sleep(0.5)
            # A record with a fresh key rolls the active segment so the cleaner may take it.
            marker += 1
            client.send(topic, f"marker-{marker}".encode(), key=f"marker-{marker}".encode())
            client.flush(timeout=10)
            records = read_until_value(bootstrap, topic, f"marker-{marker}".encode())
            surviving = sum(1 for r in records if r.key == b"same-key")
    finally:
        client.close(timeout=5)
    assert surviving < 100, f"all 100 values of one key still there after {COMPACTION_WAIT_S} s"


@tansu_deviation("a fetch past the end gets no OffsetOutOfRange; the consumer just waits")
def test_seek_past_the_end_reports_offset_out_of_range(bootstrap: str, topics: Topics) -> None:
    """With auto_offset_reset='none' kafka-python raises OffsetOutOfRangeError from poll()."""
    topic = topics.create()
    produce_batches(bootstrap, topic, batches=1, per_batch=10)
    tp = TopicPartition(topic, 0)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
    )
    error: OffsetOutOfRangeError | None = None
    try:
        consumer.assign([tp])
        consumer.seek(tp, 100)
        deadline = time.monotonic() + 5
        while error is None and time.monotonic() < deadline:
            try:
                consumer.poll(timeout_ms=200)
            except OffsetOutOfRangeError as exc:
                error = exc
    finally:
        consumer.close(autocommit=False)
    assert error is not None, "no OffsetOutOfRangeError within 5 s of seeking to 100 of 10"


@tansu_deviation("read_committed still returns records of aborted transactions")
def test_read_committed_skips_aborted_transactions(bootstrap: str, topics: Topics) -> None:
    topic = topics.create()
    client = KafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"conformance-{uuid.uuid4().hex[:12]}"
    )
    try:
        client.init_transactions()
        client.begin_transaction()
        for i in range(3):
            client.send(topic, f"aborted-{i}".encode())
        client.flush(timeout=10)
        client.abort_transaction()
        client.begin_transaction()
        for i in range(3):
            client.send(topic, f"committed-{i}".encode())
        client.commit_transaction()
    finally:
        client.close(timeout=5)

    received = values(
        read_until_value(bootstrap, topic, b"committed-2", isolation_level="read_committed")
    )
    assert [v for v in received if v.startswith(b"aborted")] == []
    assert received == [b"committed-0", b"committed-1", b"committed-2"]
