"""Schema evolution: old messages stay readable with a new reader, and a breaking change shows.

Fixtures in tests/fixtures/avro_evolution: a compatible version 2 of DoseDispensed (optional
fields with defaults) and an incompatible one (a required field without a default).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.codec import (
    Decoded,
    SchemaCatalog,
    SchemaInfo,
    UndecodableMessage,
    default_catalog,
    event_from_decoded,
)
from schemas.models import DoseDispensed, parse_event_dict
from tests.fixtures.contract_cases import AVRO_EVOLUTION_DIR, VALID_EVENTS

V1_ID = 1
V2_ID = 9001  # a test-only id; real version 2 schemas get the next free id in registry.json
_V2_INFO = SchemaInfo(V2_ID, "vn.ostwatch.events.v1.DoseDispensed", "dose.dispensed", 2)
_V1_FIELDS = set(DoseDispensed.model_fields)
_DOSE = parse_event_dict(next(e for e in VALID_EVENTS if e["event_type"] == "dose.dispensed"))


def _with_v2(fixture: str) -> SchemaCatalog:
    schema: dict[str, Any] = json.loads((AVRO_EVOLUTION_DIR / fixture).read_text(encoding="utf-8"))
    return default_catalog().extended([(_V2_INFO, schema)])


@pytest.fixture
def compatible() -> SchemaCatalog:
    return _with_v2("dose_dispensed_v2_compatible.avsc")


@pytest.fixture
def incompatible() -> SchemaCatalog:
    return _with_v2("dose_dispensed_v2_incompatible.avsc")


def test_new_events_are_written_with_the_newest_version(compatible: SchemaCatalog) -> None:
    assert compatible.newest_for("dose.dispensed") == _V2_INFO
    value = compatible.encode_event(_DOSE)
    assert value[1:5] == V2_ID.to_bytes(4, "big")


def test_v1_message_decodes_with_the_v2_reader(compatible: SchemaCatalog) -> None:
    old_message = default_catalog().encode_event(_DOSE)
    decoded = compatible.decode(old_message)
    assert decoded.schema.schema_id == V1_ID  # the writer, as named in the message
    assert decoded.record["witness_id"] is None  # defaults fill the fields v1 did not have
    assert decoded.record["dispensing_station"] == "main"
    v1_part = {key: value for key, value in decoded.record.items() if key in _V1_FIELDS}
    assert event_from_decoded(Decoded(decoded.schema, v1_part)) == _DOSE


def test_v2_message_decodes_with_the_v1_reader(compatible: SchemaCatalog) -> None:
    record = _DOSE.to_contract_dict() | {"witness_id": "staff-7", "dispensing_station": "B"}
    new_message = compatible.encode_record(V2_ID, record)
    decoded = compatible.decode(new_message, reader_id=V1_ID)
    assert decoded.schema == _V2_INFO
    assert "witness_id" not in decoded.record  # the v1 reader skips what it does not know
    assert set(decoded.record) == _V1_FIELDS
    assert event_from_decoded(decoded).model_dump() == _DOSE.model_dump()


def test_v2_message_decodes_with_the_v2_reader(compatible: SchemaCatalog) -> None:
    record = _DOSE.to_contract_dict() | {"witness_id": "staff-7", "dispensing_station": "B"}
    decoded = compatible.decode(compatible.encode_record(V2_ID, record))
    assert decoded.record["witness_id"] == "staff-7"


def test_reader_must_be_a_version_of_the_same_record(compatible: SchemaCatalog) -> None:
    with pytest.raises(ValueError, match="not a version of"):
        compatible.decode(compatible.encode_event(_DOSE), reader_id=2)


def test_required_field_without_default_breaks_old_messages(incompatible: SchemaCatalog) -> None:
    old_message = default_catalog().encode_event(_DOSE)
    with pytest.raises(UndecodableMessage, match=r"cannot be read as schema id 9001.*witness_id"):
        incompatible.decode(old_message)


def test_incompatible_v2_messages_still_read_with_the_v1_reader(
    incompatible: SchemaCatalog,
) -> None:
    """Forward compatibility holds even here: an old consumer just skips the new field."""
    record = _DOSE.to_contract_dict() | {"witness_id": "staff-7"}
    decoded = incompatible.decode(incompatible.encode_record(V2_ID, record), reader_id=V1_ID)
    assert "witness_id" not in decoded.record


def test_two_schemas_of_one_version_are_refused() -> None:
    schema = default_catalog().schema_json(V1_ID)
    duplicate = SchemaInfo(9002, "vn.ostwatch.events.v1.DoseDispensed", "dose.dispensed", 1)
    with pytest.raises(ValueError, match="version 1 listed twice"):
        default_catalog().extended([(duplicate, schema)])
