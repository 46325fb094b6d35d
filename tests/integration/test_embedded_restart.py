"""A producer that keeps sending while the embedded broker is killed and restarted on its port.

Tansu acknowledges a produce to a topic it does not have and leaves those records unreadable
once the topic is created (``test_broker_conformance``), so the records a warm producer sends
the moment the restarted broker listens are lost unless the topics exist first. The producer
here sends as soon as the restarted broker answers, as the one in the broker-restart fault test
sometimes did (it reconnected before the stack had created the topics again).
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra.broker import EmbeddedBroker, ensure_topics, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOPIC = "restart-probe"


def readable(bootstrap: str, expected: int) -> int:
    """How many records of the topic's one partition can be read back (waits up to 10 s)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    tp = TopicPartition(TOPIC, 0)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        count, deadline = 0, time.monotonic() + 10
        while count < expected and time.monotonic() < deadline:
            count += len(consumer.poll(timeout_ms=200).get(tp, []))
    finally:
        consumer.close(autocommit=False)
    return count


def test_records_sent_as_soon_as_a_restarted_broker_answers_are_readable() -> None:
    """The producer sends once the restarted broker answers and before anyone else creates
    its topics (the stack does that right after starting it): it must lose nothing."""
    broker = EmbeddedBroker(port=free_port())
    broker.start(topics={TOPIC: 1})
    warm = KafkaProducer(
        bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=False, linger_ms=20
    )
    try:
        warm.send(TOPIC, b"warm", partition=0).get(10)  # the producer now knows the topic
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGKILL)
        while broker.is_running():
            time.sleep(0.01)
        broker.stop()
        time.sleep(0.5)
        broker.start(topics={TOPIC: 1})
        sent = [warm.send(TOPIC, f"after-{i}".encode(), partition=0) for i in range(6)]
        warm.flush(timeout=30)
        acknowledged = sum(1 for future in sent if future.succeeded())
        ensure_topics(broker.bootstrap, {TOPIC: 1})  # what the stack does next
        assert acknowledged == 6
        assert readable(broker.bootstrap, acknowledged) == acknowledged
    finally:
        warm.close(timeout=5)
        broker.stop()
