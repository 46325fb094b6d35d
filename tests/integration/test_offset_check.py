"""The committed-offset check of ``ostwatch status`` (infra/offset_check.py) on a real broker
and a real store: it names a partition committed past an undecided message, and it is not
fooled by a message sent twice (its submission row keeps the later offset)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from infra.application.operations import LocalOperations
from infra.broker import EmbeddedBroker, ensure_topics
from infra.offset_check import GroupProbe, check_offsets
from ostwatch.settings import AlertSettings
from sinks.store import Store
from streams.intake.classify import SEQ_HEADER, SOURCE_HEADER

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SOURCE = "ingest:offset-check"
COLUMNS = [
    "source",
    "seq",
    "outcome",
    "decided_at",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
]


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


def publish(bootstrap: str, topic: str, seqs: list[int]) -> None:
    """One message per seq on partition 0, named as ``ostwatch ingest`` names submissions."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    for seq in seqs:
        headers = [(SOURCE_HEADER, SOURCE.encode()), (SEQ_HEADER, str(seq).encode())]
        producer.send(topic, b"{}", partition=0, headers=headers)
    producer.flush()
    producer.close()


def decide(store: Store, topic: str, decided: dict[int, int]) -> None:
    """Submission rows as the intake writes them: seq → the offset it was decided at."""
    now = datetime.now(UTC)
    rows = [(SOURCE, seq, "accepted", now, topic, 0, offset) for seq, offset in decided.items()]
    store.db.insert_columns("submissions", [list(c) for c in zip(*rows, strict=True)], COLUMNS)


def commit(bootstrap: str, topic: str, group: str, offset: int) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(offset, "", -1)})
    consumer.close(autocommit=False)


def checked(bootstrap: str, topic: str, group: str, store: Store) -> dict[str, Any]:
    probe = GroupProbe(bootstrap, topic, group, 2, quirks=True)
    try:
        return check_offsets(probe, LocalOperations(store, AlertSettings()))
    finally:
        probe.close()


def test_a_commit_past_an_undecided_message_is_named(bootstrap: str, store: Store) -> None:
    topic, group = f"check-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: 2})
    publish(bootstrap, topic, list(range(10)))
    decide(store, topic, {seq: seq for seq in range(10) if seq != 6})
    commit(bootstrap, topic, group, 5)
    assert checked(bootstrap, topic, group, store)["ok"]  # below 5 everything is decided
    commit(bootstrap, topic, group, 8)
    found = checked(bootstrap, topic, group, store)
    assert not found["ok"]
    assert found["partitions"]["0"]["first_undecided_below_committed"] == 6
    assert "partition(s) 0 (committed 8, offset 6 undecided)" in found["problem"]
    assert found["partitions"]["0"]["lag"] == 2 and found["partitions"]["1"]["ok"]


def test_a_message_sent_twice_is_decided_under_its_later_offset(
    bootstrap: str, store: Store
) -> None:
    topic, group = f"check-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: 2})
    publish(bootstrap, topic, [0, 1, 2, 3, 2])  # a producer retry sent seq 2 again, at 4
    decide(store, topic, {0: 0, 1: 1, 2: 4, 3: 3})  # its row keeps the later offset
    commit(bootstrap, topic, group, 5)
    found = checked(bootstrap, topic, group, store)
    assert found["ok"], found["problem"]
    assert found["partitions"]["0"]["committed"] == 5 and found["partitions"]["0"]["lag"] == 0
