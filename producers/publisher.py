"""The producer library a facility system embeds: validate → serialise (Avro) → publish.

Messages are keyed by ``facility_id`` (so one facility's events stay in order on one
partition) and carry a submission name in headers: ``ostwatch-source`` and
``ostwatch-seq``. A resend of the same submission is recognised downstream, and the same
``event_id`` sent again is counted once, so delivery is idempotent end to end even though
the embedded broker refuses Kafka's idempotent producer.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from schemas.codec import encode_event, encode_raw_submission, encode_submission_batch
from schemas.kafka_headers import submission_headers
from schemas.models import (
    DEFAULT_BOUNDS,
    DEFAULT_MAX_LINE_BYTES,
    BaseEvent,
    EventBounds,
    EventRejected,
    parse_event_dict,
    parse_event_line,
    redact_rejected_line,
)

log = logging.getLogger(__name__)

UNKNOWN_FACILITY_KEY = b"~unknown"


class PublishError(RuntimeError):
    """The broker did not take one or more messages; ``failures`` says which and why."""

    def __init__(self, message: str, failures: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


class InvalidEvent(ValueError):
    """The event breaks the contract; ``reason`` names the field and the rule."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventPublisher:
    """Publishes contract events to the events topic with acks=all.

    ``source`` names this publisher's stream of submissions (default: a fresh UUID per
    instance); ``seq`` numbers them. Give a stable source and seq (e.g. an outbox row id)
    to make resends after a crash recognisable as the same submission. ``bounds`` are
    CONTRACT §1's bounds on event time, judged against this machine's clock when sending
    (the stream processor judges again against the time the platform received it).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        source: str | None = None,
        security: Mapping[str, Any] | None = None,
        linger_ms: int = 20,
        batch_size: int = 512 * 1024,
        compression_type: str | None = None,
        client_id: str = "ostwatch-producer",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        bounds: EventBounds = DEFAULT_BOUNDS,
    ) -> None:
        self.topic = topic
        self.max_line_bytes = max_line_bytes
        self.bounds = bounds
        self.source = source or f"producer:{uuid.uuid4()}"
        self._next_seq = 0
        self._failures: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        try:
            self._producer = KafkaProducer(
                **producer_config(
                    bootstrap_servers,
                    security,
                    client_id=client_id,
                    linger_ms=linger_ms,
                    batch_size=batch_size,
                    compression_type=compression_type,
                )
            )
        except KafkaError as exc:
            raise PublishError(
                f"cannot reach the Kafka broker at {bootstrap_servers}: {exc}"
            ) from exc

    def publish(self, event: BaseEvent | Mapping[str, Any], seq: int | None = None) -> int:
        """Validate and send one event; returns its seq. Raises InvalidEvent before sending."""
        if not isinstance(event, BaseEvent):
            try:
                event = parse_event_dict(event, bounds=self.bounds)
            except EventRejected as exc:
                raise InvalidEvent(exc.reason) from None
        return self._send(event.facility_id.encode(), encode_event(event), seq)

    def publish_line(self, line: bytes, seq: int | None = None) -> tuple[int, str | None]:
        """Send one JSON line as sent by a facility, valid or not; returns (seq, problem).

        A valid line goes as its typed Avro event. An invalid one goes as a raw submission
        so that the stream processor rejects it with the authoritative reason and keeps
        it: nothing a facility sent is dropped on the way.
        """
        key, value, problem = encode_line(line, self.max_line_bytes, self.bounds)
        return self._send(key, value, seq), problem

    def publish_lines(self, lines: Iterable[tuple[int, bytes]], per_message: int = 500) -> int:
        """Bulk form of :meth:`publish_line` for whole files; returns how many were invalid.

        Lines are grouped per facility into messages of up to ``per_message`` submissions
        (a SubmissionBatch), each item framed exactly as it would be sent alone, so the
        stream processor pays its per-message cost once per group, not once per event.
        """
        pending: dict[bytes, list[tuple[int, bytes]]] = {}
        invalid = 0
        for seq, line in lines:
            key, value, problem = encode_line(line, self.max_line_bytes, self.bounds)
            invalid += problem is not None
            group = pending.setdefault(key, [])
            group.append((seq, value))
            if len(group) >= per_message:
                self._send_group(key, pending.pop(key))
        for key, group in pending.items():
            self._send_group(key, group)
        return invalid

    def publish_encoded(self, key: bytes, value: bytes, seq: int) -> int:
        """Send a message already validated and encoded (e.g. kept in an outbox)."""
        return self._send(key, value, seq)

    def _send_group(self, key: bytes, group: list[tuple[int, bytes]]) -> None:
        if len(group) == 1:
            self._send(key, group[0][1], group[0][0])
        else:
            self._send(key, encode_submission_batch(group), group[0][0])

    def _send(self, key: bytes, value: bytes, seq: int | None) -> int:
        with self._lock:
            if seq is None:
                seq = self._next_seq
            self._next_seq = max(self._next_seq, seq + 1)
        headers = submission_headers(self.source, seq)
        try:
            future = self._producer.send(self.topic, key=key, value=value, headers=headers)
        except KafkaError as exc:
            raise PublishError(f"cannot send to {self.topic}: {exc}", [(seq, str(exc))]) from exc
        future.add_errback(self._on_failure, seq)
        return seq

    def _on_failure(self, seq: int, exc: BaseException) -> None:
        log.error("delivery failed for %s seq %d: %s", self.source, seq, exc)
        with self._lock:
            self._failures.append((seq, str(exc)))

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until the broker acknowledged everything sent; raise PublishError otherwise."""
        try:
            self._producer.flush(timeout=timeout)
        except KafkaError as exc:
            raise PublishError(f"flush failed: {exc}") from exc
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise PublishError(
                f"{len(failures)} message(s) not acknowledged by the broker, first: "
                f"seq {failures[0][0]}: {failures[0][1]}",
                failures,
            )

    def close(self, timeout: float = 10.0) -> None:
        self._producer.close(timeout=timeout)

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def encode_line(
    line: bytes, max_line_bytes: int, bounds: EventBounds = DEFAULT_BOUNDS
) -> tuple[bytes, bytes, str | None]:
    """(key, value, problem) of one line as a facility sent it, whatever it holds.

    A valid line is its typed Avro event (problem None). Any other is a raw submission the
    stream rejects and keeps, carrying only what may be kept: personal-looking values
    redacted, a long line cut to just over the limit (so the stream still sees it is too
    long). Every check on the way is bounded and refuses with EventRejected, so no line can
    stop a file from being sent.
    """
    try:
        if len(line) > max_line_bytes:
            raise EventRejected(f"line too long: more than {max_line_bytes} bytes")
        event = parse_event_line(line, bounds=bounds)
    except EventRejected as exc:
        kept = redact_rejected_line(line[: max_line_bytes + 1])
        return _facility_key(kept), encode_raw_submission(kept, exc.reason), exc.reason
    return event.facility_id.encode(), encode_event(event), None


def producer_config(
    bootstrap_servers: str, security: Mapping[str, Any] | None, **options: Any
) -> dict[str, Any]:
    """kafka-python producer settings: acks=all, no idempotence (see below), and the
    security options of ``BrokerSettings.kafka_python_security`` (SASL/SCRAM, TLS) as given."""
    return {
        "bootstrap_servers": [s.strip() for s in bootstrap_servers.split(",")],
        "acks": "all",
        # Kafka's idempotent producer is rejected by the embedded broker (and breaks
        # after a broker restart); idempotence is end to end by event_id instead.
        "enable_idempotence": False,
        "retries": 10,
        "retry_backoff_ms": 200,
        "max_request_size": 4 * 1024 * 1024,
        **options,
        **dict(security or {}),
    }


def _facility_key(line: bytes) -> bytes:
    """The partition key of an invalid line: its facility_id if one can be read."""
    marker = b'"facility_id"'
    start = line.find(marker)
    if start < 0:
        return UNKNOWN_FACILITY_KEY
    rest = line[start + len(marker) :].lstrip(b" \t:").lstrip()
    if rest.startswith(b'"'):
        end = rest.find(b'"', 1)
        if 1 < end <= 65:
            return rest[1:end]
    return UNKNOWN_FACILITY_KEY
