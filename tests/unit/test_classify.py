"""Intake decisions, tested as the pure functions they are."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from schemas.codec import encode_event, encode_raw_submission, encode_submission_batch
from schemas.models import parse_event_dict
from schemas.reference import RegistrySnapshot, parse_registry_dir
from streams.intake.classify import (
    SEQ_HEADER,
    SOURCE_HEADER,
    RawMessage,
    classify,
    message_meta,
    settle_suspects,
)
from streams.intake.seen import SeenEventIds, filter_key
from tests.fixtures.contract_cases import UNKNOWN_REFERENCE_EVENTS, VALID_EVENTS

# After every contract case: CONTRACT §1 refuses events from the future.
NOW = datetime(2024, 3, 31, tzinfo=UTC)
REGISTRY_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "registry"


@pytest.fixture(scope="module")
def registry() -> RegistrySnapshot:
    return parse_registry_dir(REGISTRY_DIR)


def message(value: bytes | None, seq: int, source: str = "ingest:run:f.jsonl") -> RawMessage:
    headers = [(SOURCE_HEADER, source.encode()), (SEQ_HEADER, str(seq).encode())]
    return RawMessage(value, headers, "ostwatch.events", 0, 100 + seq)


def typed(doc: dict, seq: int, source: str = "ingest:run:f.jsonl") -> RawMessage:
    return message(encode_event(parse_event_dict(doc)), seq, source)


def test_every_valid_event_is_accepted_once(registry: RegistrySnapshot) -> None:
    result = classify([typed(doc, n) for n, doc in enumerate(VALID_EVENTS)], registry, set(), NOW)
    assert len(result.batch.accepted) == len(VALID_EVENTS)
    assert not result.batch.rejected and not result.batch.duplicates and not result.suspects


def test_unknown_references_are_rejected_with_their_reason(registry: RegistrySnapshot) -> None:
    result = classify(
        [typed(doc, n) for n, doc in enumerate(UNKNOWN_REFERENCE_EVENTS)], registry, set(), NOW
    )
    assert len(result.batch.rejected) == len(UNKNOWN_REFERENCE_EVENTS)
    for rejected in result.batch.rejected:
        field, _, explanation = rejected.reason.partition(": ")
        assert field in {"facility_id", "item", "report_type", "to_facility_id", "supervisor_id"}
        assert explanation
        # the operator sees readable JSON; the dead-letter topic gets the original bytes
        assert orjson.loads(rejected.raw)["event_id"] == rejected.event_id
        assert rejected.original.startswith(b"\x00")


def test_without_a_registry_everything_is_rejected_and_says_so() -> None:
    result = classify([typed(VALID_EVENTS[0], 1)], None, set(), NOW)
    assert "no registry loaded" in result.batch.rejected[0].reason


def test_raw_submission_gets_the_authoritative_reason(registry: RegistrySnapshot) -> None:
    line = b'{"event_type": "dose.dispensed"}'
    result = classify(
        [message(encode_raw_submission(line, "client says no"), 7)], registry, set(), NOW
    )
    (rejected,) = result.batch.rejected
    assert rejected.raw == line
    assert rejected.meta.line == 7
    assert rejected.reason != "client says no"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty message"),
        (b"", "undecodable message: empty message"),
        (b"\x01\x00\x00\x00\x01", "undecodable message: wrong magic byte"),
        (b"\x00\x00\x00\x99\x99abc", "undecodable message: unknown schema id"),
    ],
)
def test_unreadable_messages_are_rejected_not_raised(
    registry: RegistrySnapshot, value: bytes | None, reason: str
) -> None:
    result = classify([message(value, 1)], registry, set(), NOW)
    assert result.batch.rejected[0].reason.startswith(reason)


def test_same_event_id_twice_in_a_batch_is_a_duplicate(registry: RegistrySnapshot) -> None:
    doc = VALID_EVENTS[0]
    result = classify([typed(doc, 1), typed(doc, 2)], registry, set(), NOW)
    assert [a.meta.seq for a in result.batch.accepted] == [1]
    assert [d.meta.seq for d in result.batch.duplicates] == [2]


def test_same_submission_twice_in_a_batch_is_a_redelivery(registry: RegistrySnapshot) -> None:
    doc = VALID_EVENTS[0]
    result = classify([typed(doc, 1), typed(doc, 1)], registry, set(), NOW)
    assert len(result.batch.accepted) == 1
    assert len(result.batch.redelivered) == 1
    assert not result.batch.duplicates


def test_archived_event_id_is_a_suspect_until_settled(registry: RegistrySnapshot) -> None:
    doc = VALID_EVENTS[0]
    event_id = parse_event_dict(doc).event_id
    again = classify(
        [typed(doc, 5, "ingest:a"), typed(doc, 6, "ingest:b")], registry, {event_id}, NOW
    )
    assert len(again.suspects) == 2
    batch = settle_suspects(again, {event_id: ("ingest:a", 5)})
    assert [r.meta.source for r in batch.redelivered] == ["ingest:a"]
    assert [d.meta.source for d in batch.duplicates] == ["ingest:b"]


def test_a_suspect_the_archive_does_not_know_is_new(registry: RegistrySnapshot) -> None:
    """The duplicate filter's false positive: "maybe seen", but nowhere in the archive. It
    is accepted once; the same event again in the batch is a duplicate or a redelivery."""
    doc = VALID_EVENTS[0]
    event_id = parse_event_dict(doc).event_id
    suspects = classify(
        [typed(doc, 5, "ingest:a"), typed(doc, 5, "ingest:a"), typed(doc, 6, "ingest:b")],
        registry,
        {event_id},
        NOW,
    )
    batch = settle_suspects(suspects, {})
    assert [(a.meta.source, a.meta.seq) for a in batch.accepted] == [("ingest:a", 5)]
    assert [(r.meta.source, r.meta.seq) for r in batch.redelivered] == [("ingest:a", 5)]
    assert [(d.meta.source, d.meta.seq) for d in batch.duplicates] == [("ingest:b", 6)]


def test_the_bloom_filter_never_forgets_an_archived_id() -> None:
    seen = SeenEventIds.for_archive(0, capacity=2000, error_rate=1e-3)
    archived = [str(uuid.UUID(int=n)) for n in range(1500)]
    seen.update(archived)
    assert all(event_id in seen for event_id in archived)
    others = [str(uuid.UUID(int=n)) for n in range(10_000, 30_000)]
    false_positives = sum(event_id in seen for event_id in others)
    assert false_positives < len(others) * 1e-3 * 3  # within three times the rate asked for
    assert seen.summary()["ids"] == 1500
    assert SeenEventIds.for_archive(5000, 2000, 1e-3).capacity == 10_000


def test_the_filter_keys_an_event_id_by_its_uuid_bits() -> None:
    """The key is what ClickHouse computes from the UUID column (tests/integration/test_store.py),
    so the text's case does not matter, and a text that is no UUID is never seen."""
    event_id = "0123abcd-4567-4890-abcd-ef0123456789"
    assert (
        filter_key(event_id)
        == filter_key(event_id.upper())
        == (0x0123ABCD45674890 ^ 0xABCDEF0123456789)
    )
    seen = SeenEventIds.for_archive(0, capacity=2000, error_rate=1e-3)
    seen.update([event_id, "not-a-uuid"])
    assert event_id.upper() in seen and "not-a-uuid" not in seen
    assert seen.summary()["ids"] == 1


def test_a_submission_batch_is_expanded_item_by_item(registry: RegistrySnapshot) -> None:
    framed = [
        (10, encode_event(parse_event_dict(VALID_EVENTS[0]))),
        (11, encode_raw_submission(b"not json", "not JSON")),
        (12, encode_event(parse_event_dict(VALID_EVENTS[1]))),
    ]
    result = classify([message(encode_submission_batch(framed), 10)], registry, set(), NOW)
    assert [a.meta.seq for a in result.batch.accepted] == [10, 12]
    assert [r.meta.seq for r in result.batch.rejected] == [11]
    assert {a.meta.source for a in result.batch.accepted} == {"ingest:run:f.jsonl"}


def test_messages_without_headers_are_named_by_their_kafka_coordinates() -> None:
    meta = message_meta(RawMessage(b"x", [], "ostwatch.events", 3, 42), NOW)
    assert (meta.source, meta.seq, meta.line) == ("kafka:ostwatch.events:3", 42, None)
