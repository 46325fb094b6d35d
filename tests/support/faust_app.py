"""The worker's Faust app without a broker, and what its consumer would commit: for tests of
the offset ledgers on Faust's real consumer bookkeeping."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import faust
import pytest
from faust.types import TP, Message

from ostwatch.settings import BrokerSettings, StreamSettings
from streams.app import create_app

BROKER = BrokerSettings(bootstrap_servers="127.0.0.1:9")


def offline_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> faust.App:
    """The app as ``infra.worker`` creates it, pointed at a port where no broker listens."""
    import aiokafka

    # create_app wraps aiokafka's consumer class (kafka_compat.limit_fetch_wait); undo it after.
    monkeypatch.setattr(aiokafka, "AIOKafkaConsumer", aiokafka.AIOKafkaConsumer)
    return create_app(
        BROKER,
        StreamSettings(),
        bootstrap="127.0.0.1:9",
        web_host="127.0.0.1",
        web_port=6066,
        data_dir=tmp_path,
    )


def faust_would_commit(app: faust.App, agent: str, topic: str, acked: range) -> dict[TP, int]:
    """What Faust's commit writes for partition 0 of ``topic`` once the agent's channel is
    subscribed (as the worker does) and a stream acknowledged the ``acked`` offsets."""
    app.topics.add(app.agents[agent].channel)
    asyncio.run(cast(Any, app.topics)._update_indices())
    consumer = app.consumer
    for offset in acked:
        consumer.ack(Message(topic, 0, offset, 0.0, 0, None, None, b"", None))
    committable: dict[TP, int] = cast(Any, consumer)._filter_committable_offsets({TP(topic, 0)})
    return committable
