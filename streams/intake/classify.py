"""Intake decisions as pure functions: decode, validate, check references, de-duplicate.

No I/O here, so every rule is tested directly. The agent adds the one lookup that needs
the store (telling a redelivered submission from a real duplicate) and the writes.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.codec import (
    HEADER_SIZE,
    RAW_SUBMISSION_SCHEMA_ID,
    SUBMISSION_BATCH_SCHEMA_ID,
    Decoded,
    UndecodableMessage,
    decode,
    encode_raw_submission,
    event_from_decoded,
)
from schemas.kafka_headers import SEQ_HEADER, SOURCE_HEADER
from schemas.models import BaseEvent, EventRejected, parse_event_line, redact_rejected_line
from schemas.reference import RegistrySnapshot, reference_problem
from sinks.records import Accepted, Duplicate, IntakeBatch, MessageMeta, Rejected
from streams.intake.conflicts import submission_digest
from streams.intake.limits import FacilityRateLimiter, IntakeLimits

MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A Kafka record as the intake sees it, independent of the client library."""

    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    topic: str
    partition: int
    offset: int
    timestamp: float | None = None  # Kafka record time (epoch seconds), for freshness
    refused: str = ""  # set by ``expand`` for the items of a message over a limit


_BATCH_PREFIX = b"\x00" + SUBMISSION_BATCH_SCHEMA_ID.to_bytes(4, "big")


def expand(
    messages: Iterable[RawMessage], limits: IntakeLimits | None = None
) -> Iterator[RawMessage]:
    """Unpack SubmissionBatch messages into one RawMessage per submission they carry.

    Items keep the container's Kafka coordinates and source; their seq comes from the item.
    A container that cannot be read passes through whole, to be rejected with its reason.
    The items of a container over ``limits.max_batch_items`` are each marked refused, so
    every one of them is still accounted for.
    """
    limits = limits or IntakeLimits()
    for message in messages:
        value = message.value
        if value is None or not value.startswith(_BATCH_PREFIX) or len(value) < HEADER_SIZE:
            yield message
            continue
        try:
            items = decode(value).record["items"]
        except UndecodableMessage:
            yield message
            continue
        headers = dict(message.headers)
        source = headers.get(SOURCE_HEADER) or (
            f"kafka:{message.topic}:{message.partition}:{message.offset}".encode()
        )
        refused = limits.batch_too_large(len(items)) or ""
        for item in items:
            yield RawMessage(
                value=item["value"],
                headers=[(SOURCE_HEADER, source), (SEQ_HEADER, str(item["seq"]).encode())],
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                timestamp=message.timestamp,
                refused=refused,
            )


def arrival_of(message: RawMessage, received_at: datetime) -> datetime:
    """When the platform received a message, for the bound on future event times.

    The Kafka timestamp, so that reading a topic again later (a replay, a restarted worker)
    decides every event as it was decided the first time; but never later than the
    intake's own clock, since the default CreateTime is set by the sender, whose clock
    may run ahead. Without a timestamp, the intake's clock.
    """
    stamp = message.timestamp
    if stamp is None or stamp <= 0:
        return received_at
    try:
        sent = datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):  # a timestamp no clock ever showed
        return received_at
    return min(sent, received_at)


def message_meta(message: RawMessage, received_at: datetime) -> MessageMeta:
    """Name the submission: the sender's (source, seq) headers, else the Kafka coordinates."""
    headers = dict(message.headers)
    source = headers.get(SOURCE_HEADER)
    seq = headers.get(SEQ_HEADER)
    if source and seq and seq.isdigit():
        return MessageMeta(
            source.decode("utf-8", errors="replace")[:200],
            int(seq),
            message.topic,
            message.partition,
            message.offset,
            received_at,
            submission_digest(message.value),
        )
    return MessageMeta(
        f"kafka:{message.topic}:{message.partition}",
        message.offset,
        message.topic,
        message.partition,
        message.offset,
        received_at,
    )


@dataclass(slots=True)
class Classified:
    """A batch's decisions plus the duplicates that may be redeliveries of archived events."""

    batch: IntakeBatch = field(default_factory=IntakeBatch)
    suspects: list[Duplicate] = field(default_factory=list)


def _identity_of_raw(raw: bytes) -> dict[str, Any]:
    """Best-effort event_id / type / facility of a rejected line, for the operator's list."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(doc, dict):
        return {}
    return {
        key: value[:64]
        for key in ("event_id", "event_type", "facility_id")
        if isinstance(value := doc.get(key), str)
    }


def _record_json(decoded: Decoded) -> bytes:
    """A typed record the contract refused, as readable JSON for the operator's list."""
    return orjson.dumps(
        {key: value for key, value in decoded.record.items() if value is not None}, default=str
    )


def _decode_event(
    value: bytes | None, limits: IntakeLimits, arrival: datetime
) -> tuple[BaseEvent | None, bytes, str]:
    """(event, submitted line or record as JSON, rejection reason) for one message value
    that reached the platform at ``arrival``."""
    if value is None:
        return None, b"", "empty message (no value)"
    try:
        decoded = decode(value)
    except UndecodableMessage as exc:
        return None, value, f"undecodable message: {exc.reason}"
    if decoded.schema.schema_id == RAW_SUBMISSION_SCHEMA_ID:
        raw = bytes(decoded.record["raw"])
        too_long = limits.line_too_long(len(raw))
        if too_long:
            return None, raw[: limits.max_line_bytes], too_long
        try:
            return parse_event_line(raw, arrival=arrival, bounds=limits.bounds), raw, ""
        except EventRejected as exc:
            return None, raw, exc.reason
    too_long = limits.line_too_long(len(value))
    if too_long:
        return None, b"", too_long
    try:
        return event_from_decoded(decoded, arrival=arrival, bounds=limits.bounds), value, ""
    except EventRejected as exc:
        return None, _record_json(decoded), exc.reason


def _rejected(
    message: RawMessage,
    meta: MessageMeta,
    reason: str,
    raw: bytes,
    event: BaseEvent | None,
) -> Rejected:
    """A rejection as it may be kept: personal-looking values redacted from the line, and
    the dead-letter copy redacted too when anything had to be (then as a raw submission)."""
    reason = reason[:MAX_REASON_CHARS]
    if event is not None:
        raw = orjson.dumps(event.to_contract_dict())
    kept = redact_rejected_line(raw)
    original = message.value or b""
    if kept != raw or not original.startswith(b"\x00"):
        original = encode_raw_submission(kept, reason)
    identity = (
        _identity_of_raw(kept)
        if event is None
        else {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "facility_id": event.facility_id,
        }
    )
    return Rejected(
        meta,
        reason,
        kept,
        original,
        occurred_at=event.occurred_at_utc if event is not None else None,
        **identity,
    )


def classify(
    messages: Iterable[RawMessage],
    registry: RegistrySnapshot | None,
    seen_event_ids: Container[str],
    received_at: datetime,
    *,
    limits: IntakeLimits | None = None,
    rate: FacilityRateLimiter | None = None,
) -> Classified:
    """Decide every message of a batch: accepted, rejected (with a reason) or duplicate.

    ``seen_event_ids`` answers whether an event_id may already be archived (a set, or the
    worker's Bloom filter, which may answer yes wrongly but never no wrongly); it is not
    modified. Such an event becomes a *suspect*: the caller looks it up in the archive
    (``settle_suspects``): not there, it is new; archived under the same submission, a
    redelivery; otherwise a duplicate.
    ``rate`` (per-facility token buckets, kept by the caller across batches) is charged
    only for new events that would be accepted.
    """
    limits = limits or IntakeLimits()
    now = received_at.timestamp()
    result = Classified()
    accepted_here: dict[str, MessageMeta] = {}
    for message in expand(messages, limits):
        meta = message_meta(message, received_at)
        if message.refused:
            event, raw, reason = None, b"", message.refused
        else:
            arrival = arrival_of(message, received_at)
            event, raw, reason = _decode_event(message.value, limits, arrival)
        if event is not None:
            reason = _reference_reason(event, registry)
        if event is None or reason:
            result.batch.rejected.append(_rejected(message, meta, reason, raw, event))
            continue
        first = accepted_here.get(event.event_id)
        if first is not None:
            if (first.source, first.seq) == (meta.source, meta.seq):
                result.batch.redelivered.append(Accepted(event, meta))
            else:
                result.batch.duplicates.append(Duplicate(event, meta))
        elif event.event_id in seen_event_ids:
            result.suspects.append(Duplicate(event, meta))
        elif rate is not None and not rate.allow(event.facility_id, now):
            reason = limits.rate_exceeded(event.facility_id)
            result.batch.rejected.append(_rejected(message, meta, reason, raw, event))
        else:
            accepted_here[event.event_id] = meta
            result.batch.accepted.append(Accepted(event, meta))
    return result


def refused(
    message: RawMessage,
    reason: str,
    received_at: datetime,
    limits: IntakeLimits | None = None,
) -> Rejected:
    """One submission rejected for ``reason`` whatever it holds (the store refused to write
    it), kept like any rejected line: redacted, with what can be read of its identity."""
    limits = limits or IntakeLimits()
    meta = message_meta(message, received_at)
    event, raw, _ = _decode_event(message.value, limits, arrival_of(message, received_at))
    return _rejected(message, meta, reason, raw, event)


def _reference_reason(event: BaseEvent, registry: RegistrySnapshot | None) -> str:
    if registry is None:
        return f"facility_id: unknown facility '{event.facility_id}' (no registry loaded)"
    return reference_problem(event, registry) or ""


def settle_suspects(
    classified: Classified, archived_under: dict[str, tuple[str, int]]
) -> IntakeBatch:
    """Split suspects into redeliveries (same submission archived), real duplicates, and
    new events (not archived at all: the duplicate filter's false positives).

    A new event found this way is accepted without charging its facility's rate bucket
    (false positives are about one in ten thousand events).
    """
    batch = classified.batch
    accepted_here = {item.event.event_id: item.meta for item in batch.accepted}
    for suspect in classified.suspects:
        event_id = suspect.event.event_id
        origin = archived_under.get(event_id)
        if origin is None:
            first = accepted_here.get(event_id)
            if first is None:
                accepted_here[event_id] = suspect.meta
                batch.accepted.append(Accepted(suspect.event, suspect.meta))
                continue
            origin = (first.source, first.seq)
        if origin == (suspect.meta.source, suspect.meta.seq):
            batch.redelivered.append(Accepted(suspect.event, suspect.meta))
        else:
            batch.duplicates.append(suspect)
    return batch
