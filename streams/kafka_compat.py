"""Client-side work-arounds for Tansu, the embedded broker, in one place.

Each work-around is switched on by the ``quirks`` flag (``BrokerSettings.quirks``: on for the
embedded broker, off for Apache Kafka) and must be harmless when switched on against a correct
broker, except the fetch wait, which is harmless everywhere and so always applied.
``tests/integration/test_broker_conformance.py`` shows what each one fixes. The module sits in
``streams`` because the Faust app needs the first two; ``infra`` (the offset check, the
watchdog) imports it from here.

Group timings (``EMBEDDED_GROUP_TIMINGS``): Tansu holds a join for half the session timeout,
so Faust's 60 s default made a worker take ~33 s to start.

Fetch wait (``limit_fetch_wait``): Tansu holds every fetch for the full ``fetch_max_wait_ms``
even when records are there, and Faust's driver fixes that at 1.5 s.

End offsets (``end_offsets``): Tansu answers ListOffsets(latest) with the base offset of the
partition's last batch plus one (three batches of ten records give 21, not 30), while the high
watermark it puts in a Fetch response is right. With ``quirks`` the end offset is therefore read
from a fetch inside the last batch, at ListOffsets − 1, where the broker has data and answers at
once (a fetch at or past the wrong end would wait for new records instead).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition

# Consumer-group timings for the embedded broker (see the module's docstring; ENVIRONMENT.md).
EMBEDDED_GROUP_TIMINGS: dict[str, float] = {
    "broker_session_timeout": 6.0,
    "broker_heartbeat_interval": 1.0,
    "broker_rebalance_timeout": 6.0,
}


class NoHighWatermark(TimeoutError):
    """No Fetch response carried a high watermark in time (an unreachable broker is an
    ``OSError`` as well, so callers handle both alike)."""


class _ShortFetchWait:
    """Marks the consumer class already wrapped by ``limit_fetch_wait``."""

    fetch_max_wait_ms: int


def limit_fetch_wait(max_wait_ms: int) -> None:
    """Make Faust's consumer fetch wait at most ``max_wait_ms`` for records.

    Faust's aiokafka driver passes ``fetch_max_wait_ms=1500`` with no setting to change it.
    Kafka answers a fetch as soon as records arrive, but the embedded Tansu holds every fetch
    for the full wait, which alone added up to 1.5 s to each event's freshness (measured
    here: a record's consume latency 722 ms typical with 1500, 22 ms with 100). So the
    consumer class the driver builds is wrapped to pass our value; in this process only.
    """
    import aiokafka

    current = aiokafka.AIOKafkaConsumer
    base = current.__mro__[1] if issubclass(current, _ShortFetchWait) else current

    class ShortFetchWaitConsumer(base, _ShortFetchWait):  # type: ignore[valid-type,misc]
        fetch_max_wait_ms = max_wait_ms

        def __init__(self, *topics: str, **kwargs: Any) -> None:
            kwargs["fetch_max_wait_ms"] = max_wait_ms
            super().__init__(*topics, **kwargs)

    aiokafka.AIOKafkaConsumer = ShortFetchWaitConsumer


# Settings copied from a caller's consumer to the probe consumer: where the broker is and how
# to authenticate, nothing about groups or offsets.
_CONNECTION_KEYS = ("bootstrap_servers", "security_protocol", "api_version", "client_dns_lookup")
_CONNECTION_PREFIXES = ("ssl_", "sasl_")


def _connection_config(consumer: KafkaConsumer) -> dict[str, object]:
    config: dict[str, object] = consumer.config
    return {
        key: value
        for key, value in config.items()
        if key in _CONNECTION_KEYS or key.startswith(_CONNECTION_PREFIXES)
    }


def _probe_consumer(connection: Mapping[str, object], timeout_ms: int) -> KafkaConsumer:
    """A group-less consumer used only to read fetch metadata; it commits nothing."""
    return KafkaConsumer(
        **dict(connection),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=max(timeout_ms, 1000),
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=1024 * 1024,
    )


def _fetched_high_watermarks(
    probe: KafkaConsumer, listed: Mapping[TopicPartition, int], timeout: float
) -> dict[TopicPartition, int]:
    """End offsets from Fetch responses at ListOffsets − 1; empty partitions keep their 0."""
    result = dict(listed)
    nonempty = [tp for tp, offset in listed.items() if offset > 0]
    if not nonempty:
        return result
    probe.assign(nonempty)
    for tp in nonempty:
        probe.seek(tp, listed[tp] - 1)
    deadline = time.monotonic() + timeout
    pending = set(nonempty)
    while pending:
        if time.monotonic() >= deadline:
            raise NoHighWatermark(f"no Fetch response with a high watermark for {sorted(pending)}")
        probe.poll(timeout_ms=100)
        for tp in list(pending):
            high_watermark = probe.highwater(tp)
            if high_watermark is not None:
                # ListOffsets can only under-report on Tansu; never go below it.
                result[tp] = max(listed[tp], high_watermark)
                pending.discard(tp)
    return result


def end_offsets(
    consumer_or_bootstrap: KafkaConsumer | str,
    partitions: Iterable[TopicPartition],
    quirks: bool,
    *,
    security: Mapping[str, object] | None = None,
    timeout: float = 10.0,
    probe: KafkaConsumer | None = None,
) -> dict[TopicPartition, int]:
    """The offset the next record of each partition will get (true end, for lag and catch-up).

    Without ``quirks`` this is plain ListOffsets(latest). With ``quirks`` a short-lived probe
    consumer reads the Fetch high watermark, so the caller's consumer keeps its position and
    assignment. ``security`` applies only when a bootstrap string is given; a consumer's own
    connection settings are reused. A caller that asks often passes its own group-less
    ``probe`` (kept open, its assignment changed) instead of a new one each time.
    """
    partitions = list(partitions)
    timeout_ms = int(timeout * 1000)
    if probe is not None:
        listed_by_probe: dict[TopicPartition, int] = probe.end_offsets(
            partitions, timeout_ms=timeout_ms
        )
        return (
            _fetched_high_watermarks(probe, listed_by_probe, timeout) if quirks else listed_by_probe
        )
    owned: list[KafkaConsumer] = []
    if isinstance(consumer_or_bootstrap, str):
        connection = {"bootstrap_servers": consumer_or_bootstrap, **dict(security or {})}
        owned.append(_probe_consumer(connection, timeout_ms))
        lister = owned[0]
    else:
        connection = _connection_config(consumer_or_bootstrap)
        lister = consumer_or_bootstrap
    try:
        listed: dict[TopicPartition, int] = lister.end_offsets(partitions, timeout_ms=timeout_ms)
        if not quirks:
            return listed
        if not owned:
            owned.append(_probe_consumer(connection, timeout_ms))
        return _fetched_high_watermarks(owned[0], listed, timeout)
    finally:
        for probe in owned:
            probe.close(autocommit=False)
