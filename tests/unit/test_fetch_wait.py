"""The worker's consumer must not let a fetch wait Faust's fixed 1.5 s (Tansu holds it all)."""

from __future__ import annotations

import asyncio

import aiokafka

from streams.kafka_compat import limit_fetch_wait


def test_consumers_built_after_the_limit_use_it() -> None:
    async def build() -> int:
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers="127.0.0.1:9", fetch_max_wait_ms=1500
        )
        return int(consumer._fetch_max_wait_ms)

    original = aiokafka.AIOKafkaConsumer
    try:
        limit_fetch_wait(100)
        limit_fetch_wait(80)  # applying again replaces the value, without stacking wrappers
        assert asyncio.run(build()) == 80
        assert aiokafka.AIOKafkaConsumer.__mro__[1] is original
    finally:
        aiokafka.AIOKafkaConsumer = original
