"""Kafka values: Confluent wire format, round trips, and every way a value can be undecodable."""

from __future__ import annotations

import json
import random
import struct
from typing import Any

import pytest
from hypothesis import given, settings

from schemas.codec import (
    RAW_SUBMISSION_SCHEMA_ID,
    Decoded,
    SchemaCatalog,
    SchemaInfo,
    UndecodableMessage,
    decode,
    default_catalog,
    encode_event,
    encode_raw_submission,
    event_from_decoded,
    known_schemas,
    schema_by_id,
)
from schemas.models import EVENT_TYPES, EventRejected, parse_event_dict
from tests.fixtures.contract_cases import VALID_EVENTS
from tests.fixtures.strategies import valid_event_docs

_DOSE = parse_event_dict(VALID_EVENTS[6])
_DOSE_ID = 1


def _schema_id(value: bytes) -> int:
    return int(struct.unpack(">I", value[1:5])[0])


@pytest.mark.parametrize("doc", VALID_EVENTS, ids=lambda doc: doc["event_type"])
def test_every_valid_event_round_trips(doc: dict[str, Any]) -> None:
    event = parse_event_dict(doc)
    decoded = decode(encode_event(event))
    assert decoded.schema.event_type == event.event_type
    back = event_from_decoded(decoded)
    assert back == event
    assert back.to_contract_dict() == doc


@settings(max_examples=200, deadline=None)
@given(valid_event_docs())
def test_any_valid_event_round_trips(doc: dict[str, Any]) -> None:
    event = parse_event_dict(doc)
    assert event_from_decoded(decode(encode_event(event))) == event


def test_wire_format_header() -> None:
    value = encode_event(_DOSE)
    assert value[0] == 0
    assert value[1:5] == b"\x00\x00\x00\x01"
    assert value[5:6] == bytes([2 * 36])  # zig-zag length of the 36-character event_id
    assert value[6:42] == _DOSE.event_id.encode()


# Written with the newest version: test.performed's version 2 (residence_commune) is id 14.
NEWEST_IDS = {event_type: n for n, event_type in enumerate(EVENT_TYPES, start=1)} | {
    "test.performed": 14
}


@pytest.mark.parametrize(("event_type", "schema_id"), sorted(NEWEST_IDS.items()))
def test_each_event_type_is_written_with_its_stable_id(schema_id: int, event_type: str) -> None:
    doc = next(event for event in VALID_EVENTS if event["event_type"] == event_type)
    assert _schema_id(encode_event(parse_event_dict(doc))) == schema_id


def test_schema_lookup() -> None:
    assert schema_by_id(_DOSE_ID) == SchemaInfo(
        _DOSE_ID, "vn.ostwatch.events.v1.DoseDispensed", "dose.dispensed", 1
    )
    ids = [info.schema_id for info in known_schemas()]
    assert ids[:15] == [*range(1, 15), RAW_SUBMISSION_SCHEMA_ID]
    assert ids == sorted(ids)
    with pytest.raises(KeyError):
        schema_by_id(15)


def test_optional_fields_come_back_absent() -> None:
    doc = next(event for event in VALID_EVENTS if event["event_type"] == "stock.received")
    bare = {key: value for key, value in doc.items() if key not in ("lot", "expiry_date")}
    decoded = decode(encode_event(parse_event_dict(bare)))
    assert decoded.record["lot"] is None
    assert event_from_decoded(decoded).to_contract_dict() == bare


# --------------------------------------------------------------------------------------------
# Raw submissions: lines the sender could not validate.


def test_raw_submission_round_trip() -> None:
    value = encode_raw_submission(b"not json \xff", "not JSON: nope")
    assert _schema_id(value) == RAW_SUBMISSION_SCHEMA_ID
    decoded = decode(value)
    assert decoded.schema.event_type is None
    assert decoded.record == {"raw": b"not json \xff", "client_reason": "not JSON: nope"}


def test_raw_submission_is_judged_by_the_stream_not_the_sender() -> None:
    refused = decode(encode_raw_submission(b'{"event_type": "dose.given"}', "stale client"))
    with pytest.raises(EventRejected, match=r"^event_type: unknown type 'dose.given'$"):
        event_from_decoded(refused)
    line = VALID_EVENTS[6]
    accepted = decode(encode_raw_submission(json.dumps(line).encode(), "client was out of date"))
    assert event_from_decoded(accepted) == _DOSE


# --------------------------------------------------------------------------------------------
# Records the Avro schema accepts but the contract does not.


def test_decoded_record_is_revalidated() -> None:
    record = _DOSE.to_contract_dict() | {"dose_mg": 5000.0, "patient_ref": "short"}
    decoded = decode(default_catalog().encode_record(_DOSE_ID, record))
    with pytest.raises(EventRejected, match=r"^patient_ref: .*\(\+1 more\)$"):
        event_from_decoded(decoded)


def test_event_type_must_match_the_schema() -> None:
    record = _DOSE.to_contract_dict() | {"event_type": "stock.counted"}
    decoded = decode(default_catalog().encode_record(_DOSE_ID, record))
    with pytest.raises(EventRejected, match=r"^event_type: 'stock.counted' does not match"):
        event_from_decoded(decoded)


def test_a_non_event_schema_is_not_an_event() -> None:
    info = SchemaInfo(2000, "vn.ostwatch.test.Other", None, 1)
    with pytest.raises(EventRejected, match="does not carry an event"):
        event_from_decoded(Decoded(info, {}))


# --------------------------------------------------------------------------------------------
# Undecodable values.

_GOOD = encode_event(_DOSE)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", r"^empty message$"),
        (b"\x01" + _GOOD[1:], r"^wrong magic byte 0x01"),
        (b"{" + _GOOD[1:], r"^wrong magic byte 0x7b"),
        (b"\x00\x00\x00", r"^truncated header: 3 bytes"),
        (b"\x00\x00\x00\x03\xe7" + _GOOD[5:], r"^unknown schema id 999$"),
        (b"\x00\xff\xff\xff\xff" + _GOOD[5:], r"^unknown schema id 4294967295$"),
        (_GOOD[:5], r"^corrupt body for schema id 1 .*EOFError"),
        (_GOOD[:-1], r"^corrupt body for schema id 1 .*EOFError"),
        (_GOOD[:30], r"^corrupt body for schema id 1"),
        (_GOOD + b"\x00", r"^corrupt body for schema id 1 .*1 trailing bytes$"),
        (_GOOD[:6] + b"\xff" * 36 + _GOOD[42:], r"^corrupt body for schema id 1 .*Unicode"),
        (_GOOD[:6] + b"z" * 36 + _GOOD[42:], r"^corrupt body for schema id 1 .*ValueError"),
        (_GOOD[:-3] + b"\x7e\x02\x06", r"^corrupt body for schema id 1 .*IndexError"),
    ],
    ids=[
        "empty",
        "magic-1",
        "json-line",
        "short-header",
        "unknown-id",
        "huge-id",
        "no-body",
        "truncated-end",
        "truncated-middle",
        "trailing-byte",
        "bad-utf8",
        "bad-uuid",
        "bad-enum-index",
    ],
)
def test_undecodable_values(value: bytes, reason: str) -> None:
    with pytest.raises(UndecodableMessage, match=reason) as caught:
        decode(value)
    assert caught.value.reason == str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_random_corruption_is_always_undecodable_or_a_record() -> None:
    """Whatever happens to the bytes, decode gives a record or UndecodableMessage, never a crash."""
    rng = random.Random(20240305)
    for _ in range(3000):
        value = bytearray(_GOOD)
        for _ in range(rng.randrange(1, 4)):
            value[rng.randrange(5, len(value))] = rng.randrange(256)
        try:
            decoded = decode(bytes(value))
        except UndecodableMessage:
            continue
        assert decoded.schema.schema_id == _DOSE_ID


# --------------------------------------------------------------------------------------------
# The catalog itself.


def test_catalog_refuses_duplicate_ids_and_mismatched_names() -> None:
    entry = default_catalog().entries()[0]
    with pytest.raises(ValueError, match="listed twice"):
        SchemaCatalog.from_entries([entry, entry])
    _, schema = entry
    renamed = (SchemaInfo(77, "vn.ostwatch.events.v1.Other", "dose.dispensed", 2), schema)
    with pytest.raises(ValueError, match="registry says"):
        SchemaCatalog.from_entries([renamed])


def test_default_catalog_is_parsed_once() -> None:
    assert default_catalog() is default_catalog()
