"""Personal-looking data is refused in any field, never quoted, and redacted from what is kept;
codes that merely contain digits (UUIDs, lots, communes, dates) still pass."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.models import (
    CODE_FIELDS,
    EventRejected,
    parse_event_dict,
    parse_event_line,
    redact_rejected_line,
)
from schemas.privacy import personal_data_problem
from tests.fixtures.contract_cases import VALID_EVENTS, event_id

DOSE = next(doc for doc in VALID_EVENTS if doc["event_type"] == "dose.dispensed")
ENROL = next(doc for doc in VALID_EVENTS if doc["event_type"] == "patient.enrolled")
RECEIPT = next(doc for doc in VALID_EVENTS if doc["event_type"] == "stock.received")
TEST = next(doc for doc in VALID_EVENTS if doc["event_type"] == "test.performed")


def reason_of(doc: dict[str, Any]) -> str:
    with pytest.raises(EventRejected) as caught:
        parse_event_line(orjson.dumps(doc))
    return caught.value.reason


PLANTED = [
    # (base event, field, value, kind of reason)
    (DOSE, "patient_ref", "001085012345", "national ID"),  # CCCD as the reference
    (DOSE, "patient_ref", "079123456789", "national ID"),
    (DOSE, "patient_ref", "123456789", "national ID"),  # old CMND, 9 digits
    (DOSE, "patient_ref", "0901234567", "phone number"),
    (DOSE, "patient_ref", "84901234567", "phone number"),
    (DOSE, "patient_ref", "31415926535", "only digits"),
    (DOSE, "item", "nguyen.van.an@gmail.com", "e-mail"),
    (DOSE, "facility_id", "TF-0901234567", "phone number"),
    (ENROL, "residence_commune", "0912 345 678", "phone number"),
    (ENROL, "residence_commune", "+84 912.345.678", "phone number"),
    (ENROL, "residence_commune", "Thôn 3, xã Tân Sơn, gần chợ", "free text"),
    (RECEIPT, "lot", "CCCD-001085012345", "national ID"),
    (RECEIPT, "lot", "024 3825 1234", "phone number"),  # Hà Nội landline
    (RECEIPT, "quantity", 1085012345, "not a quantity"),  # a CCCD that lost its leading 0
    (DOSE, "mode", "Nguyễn Văn An", "free text"),
    (DOSE, "event_type", "an@example.vn", "e-mail"),  # even before the type is known
    (DOSE, "phone", "0901234567", "phone number"),  # an unknown field
    (DOSE, "note", "call an@example.vn", "e-mail"),
]


@pytest.mark.parametrize(("base", "field", "value", "kind"), PLANTED)
def test_personal_data_is_refused_without_quoting_it(
    base: dict[str, Any], field: str, value: Any, kind: str
) -> None:
    reason = reason_of({**base, field: value})
    assert reason.startswith(f"{field}: looks like") and kind in reason
    assert "value not shown" in reason
    assert str(value) not in reason


def test_personal_data_inside_results_is_refused() -> None:
    reason = reason_of({**TEST, "results": {"0901234567": "positive"}})
    assert reason == "results: a field name looks like personal data (not shown)"
    reason = reason_of({**TEST, "results": {"opiates": "0901234567"}})
    assert reason.startswith("results.opiates: looks like a phone number")


def test_a_name_in_an_unknown_field_is_refused_and_not_quoted() -> None:
    # A name has no recognisable shape; it is refused as an unknown field, and never echoed.
    reason = reason_of({**DOSE, "patient_name": "Nguyễn Văn An"})
    assert reason == "unknown field: patient_name"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "Nguyễn Văn An"),
        ("expiry_date", "Nguyen Van An"),
        ("event_id", "Nguyen Van An"),
        ("period", "ông Nguyễn Văn An"),
    ],
)
def test_reasons_describe_rather_than_quote_words(field: str, value: str) -> None:
    base = RECEIPT if field == "expiry_date" else DOSE
    if field == "period":
        base = next(doc for doc in VALID_EVENTS if doc["event_type"] == "report.submitted")
    reason = reason_of({**base, field: value})
    assert "Nguy" not in reason and "An" not in reason.split(":", 1)[1]


# --- the other side: codes with digits that must still pass --------------------------------


@pytest.mark.parametrize(
    ("base", "field", "value"),
    [
        (DOSE, "event_id", "123e4567-e89b-12d3-a456-426614174000"),  # CONTRACT's own example
        (DOSE, "event_id", event_id(1085012345)),  # last group all digits, leading zeros
        (DOSE, "event_id", "00000000-0000-4000-8000-090123456789"),
        (DOSE, "patient_ref", "p1_7h456eayzcwpisjbd2a5sqdijbfh2aze"),  # our pseudonyms
        (DOSE, "patient_ref", "p2026_cddkkw3o4jdmjhyqjdqfjdco7i33yw3n"),
        (DOSE, "patient_ref", "BN-2024-000123"),
        (DOSE, "patient_ref", "a1b2c3d4e5f60718"),
        (RECEIPT, "lot", "LOT-2024-0315"),
        (RECEIPT, "lot", "A2301"),
        (RECEIPT, "lot", "240315"),
        (RECEIPT, "lot", "MTD24031501"),
        (RECEIPT, "lot", "B240315001"),
        (RECEIPT, "lot", "2403150012"),
        (RECEIPT, "lot", "10523-01"),
        (RECEIPT, "quantity", 60000),  # a year of methadone for a district, in ml
        (RECEIPT, "quantity", 10_000_000),  # the most CONTRACT §1 allows
        (RECEIPT, "expiry_date", "2026-12-31"),
        (ENROL, "residence_commune", "07216"),  # Vietnamese commune codes: 5 digits
        (ENROL, "residence_commune", "24-213-07216"),
        (ENROL, "residence_commune", "BG-LN-XA-TANSON"),
    ],
)
def test_codes_that_contain_digits_still_pass(base: dict[str, Any], field: str, value: Any) -> None:
    event = parse_event_line(orjson.dumps({**base, field: value}))
    assert getattr(event, field) == value


@pytest.mark.parametrize("doc", VALID_EVENTS, ids=lambda doc: doc["event_type"])
def test_every_valid_contract_case_still_passes(doc: dict[str, Any]) -> None:
    assert parse_event_dict(doc).event_id == doc["event_id"]


# --- what is kept of a refused line ---------------------------------------------------------


@pytest.mark.parametrize(("base", "field", "value", "kind"), PLANTED)
def test_kept_line_hides_the_value_and_gives_the_same_reason(
    base: dict[str, Any], field: str, value: Any, kind: str
) -> None:
    line = orjson.dumps({**base, field: value})
    kept = redact_rejected_line(line)
    assert str(value).encode() not in kept
    assert reason_of(orjson.loads(kept)) == reason_of(orjson.loads(line))
    assert redact_rejected_line(kept) == kept  # redacting twice changes nothing more
    # what is harmless stays readable for the operator
    assert orjson.loads(kept)["event_id"] == base["event_id"]


def test_kept_line_drops_the_values_of_unknown_fields() -> None:
    line = orjson.dumps({**DOSE, "patient_name": "Nguyễn Văn An", "age": 31})
    kept = orjson.loads(redact_rejected_line(line))
    assert kept["patient_name"] == "[redacted]" and kept["age"] == 31
    assert reason_of(kept) == "unknown field: patient_name (+1 more)"


def test_a_line_that_is_not_json_keeps_only_its_punctuation() -> None:
    line = "Nguyễn Văn An,0901234567,12 Lê Lợi".encode()
    kept = redact_rejected_line(line)
    assert kept == b"xxxxxx xxx xx,0000000000,10 xx xxx"
    with pytest.raises(EventRejected, match="not JSON"):
        parse_event_line(kept)


def test_a_clean_refused_line_is_kept_as_sent() -> None:
    line = orjson.dumps({**DOSE, "dose_mg": 5000})
    assert redact_rejected_line(line) == line


_STRING_FIELDS = [
    (DOSE, "patient_ref"),
    (DOSE, "item"),
    (DOSE, "facility_id"),
    (ENROL, "residence_commune"),
    (RECEIPT, "lot"),
    (DOSE, "mode"),
]
_planted_values = st.one_of(
    st.from_regex(r"0[35789][0-9]{8}", fullmatch=True),  # mobiles
    st.from_regex(r"0[0-9]{2}[0-9]{9}", fullmatch=True),  # CCCD
    st.from_regex(r"[a-z]{3,10}\.[a-z]{2,8}@(gmail|yahoo)\.(com|vn)", fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(
    where=st.sampled_from(_STRING_FIELDS),
    value=_planted_values,
    prefix=st.sampled_from(["", "BN-", "x "]),
)
def test_planted_identifiers_never_survive(
    where: tuple[dict[str, Any], str], value: str, prefix: str
) -> None:
    base, field = where
    line = orjson.dumps({**base, field: prefix + value})
    reason = reason_of(orjson.loads(line))
    assert value not in reason
    assert value.encode() not in redact_rejected_line(line)


def test_hex_digests_used_as_pseudonyms_are_never_flagged() -> None:
    # Facilities may already send HMAC hex digests (the simulator does): digit runs inside
    # them must not read as IDs or phones. 20,000 digests of a fixed key, checked all.
    import hashlib
    import hmac

    flagged = [
        ref
        for n in range(20_000)
        if (ref := hmac.new(b"k", str(n).encode(), hashlib.sha256).hexdigest()[:24])
        and personal_data_problem({"patient_ref": ref}, CODE_FIELDS)
    ]
    assert flagged == []
    # while the same digits standing alone, or after a separator, still are
    assert personal_data_problem({"patient_ref": "bn-0901234567"}, CODE_FIELDS)
