"""Intake decisions as pure functions: decode, validate, check references, de-duplicate.

No I/O here, so every rule is tested directly. The agent adds the one lookup that needs
the store (telling a redelivered submission from a real duplicate) and the writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from schemas.codec import (
    HEADER_SIZE,
    RAW_SUBMISSION_SCHEMA_ID,
    SUBMISSION_BATCH_SCHEMA_ID,
    UndecodableMessage,
    decode,
    event_from_decoded,
)
from schemas.models import BaseEvent, EventRejected, parse_event_line
from schemas.reference import RegistrySnapshot, reference_problem
from sinks.records import Accepted, Duplicate, IntakeBatch, MessageMeta, Rejected

SOURCE_HEADER = "ostwatch-source"
SEQ_HEADER = "ostwatch-seq"
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


_BATCH_PREFIX = b"\x00" + SUBMISSION_BATCH_SCHEMA_ID.to_bytes(4, "big")


def expand(messages: Iterable[RawMessage]) -> Iterator[RawMessage]:
    """Unpack SubmissionBatch messages into one RawMessage per submission they carry.

    Items keep the container's Kafka coordinates and source; their seq comes from the item.
    A container that cannot be read passes through whole, to be rejected with its reason.
    """
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
        for item in items:
            yield RawMessage(
                value=item["value"],
                headers=[(SOURCE_HEADER, source), (SEQ_HEADER, str(item["seq"]).encode())],
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )


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


def _decode_event(value: bytes | None) -> tuple[BaseEvent | None, bytes, str]:
    """(event, original bytes, rejection reason) for one message value."""
    if value is None:
        return None, b"", "empty message (no value)"
    try:
        decoded = decode(value)
    except UndecodableMessage as exc:
        return None, value, f"undecodable message: {exc.reason}"
    if decoded.schema.schema_id == RAW_SUBMISSION_SCHEMA_ID:
        raw = bytes(decoded.record["raw"])
        try:
            return parse_event_line(raw), raw, ""
        except EventRejected as exc:
            return None, raw, exc.reason
    try:
        return event_from_decoded(decoded), value, ""
    except EventRejected as exc:
        return None, value, exc.reason


def classify(
    messages: Iterable[RawMessage],
    registry: RegistrySnapshot | None,
    seen_event_ids: set[str] | frozenset[str],
    received_at: datetime,
) -> Classified:
    """Decide every message of a batch: accepted, rejected (with a reason) or duplicate.

    ``seen_event_ids`` holds the event_ids already archived; it is not modified. A
    duplicate of an archived event becomes a *suspect*: the caller checks whether it is the
    same submission delivered again (then it is no duplicate, only a redelivery).
    """
    result = Classified()
    accepted_here: dict[str, MessageMeta] = {}
    for message in expand(messages):
        meta = message_meta(message, received_at)
        event, raw, reason = _decode_event(message.value)
        if event is not None:
            reason = _reference_reason(event, registry)
        if event is None or reason:
            if event is not None:
                raw = orjson.dumps(event.to_contract_dict())
            identity = (
                _identity_of_raw(raw)
                if event is None
                else {
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "facility_id": event.facility_id,
                }
            )
            result.batch.rejected.append(
                Rejected(
                    meta,
                    reason[:MAX_REASON_CHARS],
                    raw,
                    message.value or b"",
                    occurred_at=event.occurred_at_utc if event is not None else None,
                    **identity,
                )
            )
            continue
        first = accepted_here.get(event.event_id)
        if first is not None:
            if (first.source, first.seq) == (meta.source, meta.seq):
                result.batch.redelivered.append(Accepted(event, meta))
            else:
                result.batch.duplicates.append(Duplicate(event, meta))
        elif event.event_id in seen_event_ids:
            result.suspects.append(Duplicate(event, meta))
        else:
            accepted_here[event.event_id] = meta
            result.batch.accepted.append(Accepted(event, meta))
    return result


def _reference_reason(event: BaseEvent, registry: RegistrySnapshot | None) -> str:
    if registry is None:
        return f"facility_id: unknown facility '{event.facility_id}' (no registry loaded)"
    return reference_problem(event, registry) or ""


def settle_suspects(
    classified: Classified, archived_under: dict[str, tuple[str, int]]
) -> IntakeBatch:
    """Split suspects into redeliveries (same submission archived) and real duplicates."""
    batch = classified.batch
    for suspect in classified.suspects:
        origin = archived_under.get(suspect.event.event_id)
        if origin == (suspect.meta.source, suspect.meta.seq):
            batch.redelivered.append(Accepted(suspect.event, suspect.meta))
        else:
            batch.duplicates.append(suspect)
    return batch
