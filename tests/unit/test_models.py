"""The pydantic models enforce every rule of CONTRACT.md section 1, with readable reasons."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from pydantic import TypeAdapter, ValidationError

from schemas.models import (
    EVENT_TYPES,
    MODEL_BY_TYPE,
    DoseDispensed,
    Event,
    EventRejected,
    parse_event_dict,
    parse_event_line,
)
from tests.fixtures.contract_cases import (
    INVALID_LINES,
    UNKNOWN_REFERENCE_EVENTS,
    VALID_EVENTS,
)
from tests.fixtures.strategies import valid_event_docs

_EVENT_ID_RE = re.compile(r'"event_id": "([^"]+)"')
_DOSE = next(event for event in VALID_EVENTS if event["event_type"] == "dose.dispensed")
_BY_TYPE = {event["event_type"]: event for event in VALID_EVENTS}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def _reason(doc: dict[str, Any]) -> str:
    with pytest.raises(EventRejected) as caught:
        parse_event_dict(doc)
    return caught.value.reason


# --------------------------------------------------------------------------------------------
# The shared contract cases.


def test_every_event_type_has_a_valid_case() -> None:
    assert {event["event_type"] for event in VALID_EVENTS} == set(EVENT_TYPES)


@pytest.mark.parametrize("doc", VALID_EVENTS, ids=lambda doc: f"{doc['event_type']}")
def test_valid_events_parse_from_a_line(doc: dict[str, Any]) -> None:
    event = parse_event_line(json.dumps(doc, ensure_ascii=False).encode())
    assert isinstance(event, MODEL_BY_TYPE[doc["event_type"]])
    assert event.to_contract_dict() == doc


@pytest.mark.parametrize(("line", "rule"), INVALID_LINES, ids=[rule for _, rule in INVALID_LINES])
def test_invalid_lines_are_rejected_naming_the_rule(line: str, rule: str) -> None:
    with pytest.raises(EventRejected) as caught:
        parse_event_line(line)
    reason = caught.value.reason
    assert rule.split(":")[0] in reason
    assert "\n" not in reason
    assert len(reason) < 300


def test_case_event_ids_never_clash() -> None:
    """The end-to-end test ingests all cases together; a shared id would count as a duplicate."""
    ids = [event["event_id"] for event in VALID_EVENTS + UNKNOWN_REFERENCE_EVENTS]
    ids += [m.group(1) for line, _ in INVALID_LINES if (m := _EVENT_ID_RE.search(line))]
    assert len(set(ids)) == len(ids)
    lines = [line for line, _ in INVALID_LINES]
    assert len(set(lines)) == len(lines)


# --------------------------------------------------------------------------------------------
# Passing sides of the rules (the failing sides are INVALID_LINES).


@pytest.mark.parametrize(
    "changes",
    [
        {"dose_mg": 1000},
        {"dose_mg": 0.001},
        {"dose_mg": 60.5},
        {"mode": "observed", "take_home_days": 1},
        {"mode": "take_home", "take_home_days": 1},
        {"mode": "take_home", "take_home_days": 30},
        {"mode": "take_home", "take_home_days": 7.0},
        {"patient_ref": "A" * 8},
        {"patient_ref": "a_B-9" * 12 + "abcd"},
        {"facility_id": "F" * 64},
        {"facility_id": "TF.01/Lục-Ngạn"},
        {"event_id": "0B3F2C1A-1111-4222-8333-444455556666"},
        {"occurred_at": "2024-03-05T00:42:10Z"},
        {"occurred_at": "2024-03-05t00:42:10z"},
        {"occurred_at": "2024-03-05T07:42:10.123456789+07:00"},
        {"occurred_at": "2024-03-05T07:42:10.5+07:00"},
        {"occurred_at": "2024-03-04T19:42:10-05:00"},
        {"occurred_at": "2024-03-05T00:42:10-00:00"},
        {"occurred_at": "2024-02-29T07:42:10+07:00"},
        {"schema_version": 1.0},
    ],
    ids=repr,
)
def test_dose_boundaries_that_pass(changes: dict[str, Any]) -> None:
    event = parse_event_dict(_with(_DOSE, **changes))
    assert isinstance(event, DoseDispensed)


@pytest.mark.parametrize(
    ("event_type", "changes"),
    [
        ("stock.received", {"quantity": 0.01}),
        ("stock.received", {"expiry_date": "2028-02-29"}),
        ("stock.adjusted", {"quantity_delta": -0.5}),
        ("stock.adjusted", {"quantity_delta": 1e6}),
        ("stock.counted", {"quantity_on_hand": 0}),
        ("patient.take_home_approved", {"max_days": 1}),
        ("patient.take_home_approved", {"max_days": 30}),
        ("report.submitted", {"period": "2024-01"}),
        ("report.submitted", {"period": "2024-12"}),
        ("report.submitted", {"period": "2024-Q1"}),
        ("report.submitted", {"period": "2024-Q4"}),
        ("report.submitted", {"period": "2024-H1"}),
        ("report.submitted", {"period": "2024-H2"}),
        ("report.submitted", {"period": "2024"}),
        ("test.performed", {"results": {"s" * 40: "positive"}}),
        (
            "test.performed",
            {"results": {"6-MAM": "negative", "THC/COOH": "invalid", "x.y_z": "positive"}},
        ),
    ],
    ids=repr,
)
def test_other_boundaries_that_pass(event_type: str, changes: dict[str, Any]) -> None:
    parse_event_dict(_with(_BY_TYPE[event_type], **changes))


@pytest.mark.parametrize(
    ("event_type", "optional"),
    [
        ("stock.received", "lot"),
        ("stock.received", "expiry_date"),
        ("stock.adjusted", "lot"),
        ("test.performed", "patient_ref"),
        ("dose.dispensed", "take_home_days"),
    ],
)
def test_optional_fields_may_be_absent(event_type: str, optional: str) -> None:
    doc = next(
        event for event in VALID_EVENTS if event["event_type"] == event_type and optional in event
    )
    doc = {key: value for key, value in doc.items() if key != optional}
    if event_type == "dose.dispensed":
        doc["mode"] = "observed"
    event = parse_event_dict(doc)
    assert getattr(event, optional) is None
    assert optional not in event.to_contract_dict()


# --------------------------------------------------------------------------------------------
# Reasons.


def test_reason_counts_further_problems() -> None:
    reason = _reason(_with(_DOSE, dose_mg=0, mode="daily", patient_ref="x"))
    assert reason.startswith("patient_ref: ")
    assert reason.endswith("(+2 more)")


def test_unknown_field_is_named_first() -> None:
    doc = {key: value for key, value in _DOSE.items() if key != "dose_mg"} | {"dose_mgg": 80}
    assert _reason(doc) == "unknown field: dose_mgg (+1 more)"


def test_reason_quotes_at_most_a_short_excerpt() -> None:
    reason = _reason(_with(_DOSE, patient_ref="x" * 7))
    assert len(reason) < 200
    assert reason.startswith("patient_ref: must be 8–64 characters")
    # Longer than any code: refused as free text, and not quoted at all (schemas/privacy.py).
    reason = _reason(_with(_DOSE, patient_ref="x" * 100_000))
    assert reason.startswith("patient_ref: looks like free text") and "xxx" not in reason


def test_unknown_event_type_is_named() -> None:
    assert _reason(_with(_DOSE, event_type="dose.given")) == "event_type: unknown type 'dose.given'"


def test_reason_for_a_range_names_both_bounds() -> None:
    assert _reason(_with(_DOSE, dose_mg=1500)) == (
        "dose_mg: must be greater than 0 and at most 1000 (got 1500.0)"
    )


def test_null_optional_field_reason() -> None:
    reason = _reason(_with(_BY_TYPE["stock.received"], lot=None))
    assert reason == "lot: must be a string, not null"


def test_not_json_reason() -> None:
    with pytest.raises(EventRejected, match=r"^not JSON: "):
        parse_event_line(b'{"event_type": nope}')


def test_invalid_utf8_is_named_as_such() -> None:
    # orjson calls every undecodable byte "surrogates not allowed"; the kept (masked) line
    # used to be re-read as digits and refused for "leading zeros".
    with pytest.raises(EventRejected, match=r"^not valid UTF-8: an undecodable byte after 0 "):
        parse_event_line(b"\xff\xfe")


def test_rejection_is_a_value_error_with_reason() -> None:
    exc = EventRejected("x: y")
    assert isinstance(exc, ValueError)
    assert exc.reason == str(exc) == "x: y"


# --------------------------------------------------------------------------------------------
# Model behaviour.


def test_event_id_is_canonical_lowercase() -> None:
    event = parse_event_dict(_with(_DOSE, event_id="0B3F2C1A-1111-4222-8333-444455556666"))
    assert event.event_id == "0b3f2c1a-1111-4222-8333-444455556666"


def test_occurred_at_keeps_original_text_and_gives_utc() -> None:
    event = parse_event_dict(_with(_DOSE, occurred_at="2024-03-05T07:42:10.50+07:00"))
    assert event.occurred_at == datetime(
        2024, 3, 5, 7, 42, 10, 500_000, tzinfo=timezone(timedelta(hours=7))
    )
    assert event.occurred_at_utc == datetime(2024, 3, 5, 0, 42, 10, 500_000, tzinfo=UTC)
    assert event.occurred_at_utc.tzinfo is UTC
    assert event.to_contract_dict()["occurred_at"] == "2024-03-05T07:42:10.50+07:00"


def test_models_are_frozen() -> None:
    event = parse_event_dict(_DOSE)
    with pytest.raises(ValidationError):
        event.facility_id = "TF-02"  # type: ignore[misc]


def test_event_built_in_python_needs_an_aware_time() -> None:
    fields = {key: value for key, value in _DOSE.items() if key != "occurred_at"}
    aware = datetime(2024, 3, 5, 7, 0, tzinfo=timezone(timedelta(hours=7)))
    event = DoseDispensed(**fields, occurred_at=aware)
    assert event.to_contract_dict()["occurred_at"] == "2024-03-05T07:00:00+07:00"
    with pytest.raises(ValidationError):
        DoseDispensed(**fields, occurred_at=aware.replace(tzinfo=None))


def test_model_registry_matches_the_union() -> None:
    union_members = get_args(get_args(Event)[0])
    assert tuple(MODEL_BY_TYPE.values()) == union_members
    assert len(EVENT_TYPES) == 13
    adapter: TypeAdapter[Any] = TypeAdapter(Event)
    for doc in VALID_EVENTS:
        assert adapter.validate_python(doc) == parse_event_dict(doc)


def test_events_are_equal_by_value() -> None:
    assert parse_event_dict(_DOSE) == parse_event_line(json.dumps(_DOSE))
    assert parse_event_dict(_DOSE) != parse_event_dict(_with(_DOSE, dose_mg=81))


# --------------------------------------------------------------------------------------------
# Property: any valid event survives to_contract_dict -> parse_event_dict unchanged.


@settings(max_examples=300, deadline=None)
@given(valid_event_docs())
def test_contract_dict_round_trips(doc: dict[str, Any]) -> None:
    event = parse_event_dict(doc)
    again = parse_event_dict(event.to_contract_dict())
    assert again == event
    assert again.to_contract_dict() == event.to_contract_dict()
    assert parse_event_line(json.dumps(event.to_contract_dict())) == event
