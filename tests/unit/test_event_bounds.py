"""CONTRACT §1's bounds on every event: event time, quantities, nesting, UTF-8 — checked by
the models that the publisher and the stream processor share, and the walks over untrusted
JSON bounded and iterative (issue 15, poison pills 1–3)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ostwatch.settings import StreamSettings, load
from schemas.codec import encode_event, encode_raw_submission
from schemas.models import (
    CODE_FIELDS,
    CONTRACT_FIELDS,
    EARLIEST_OCCURRED_AT,
    EventBounds,
    EventRejected,
    parse_event_dict,
    parse_event_line,
    redact_rejected_line,
)
from schemas.privacy import personal_data_problem, redact_document
from schemas.reference import parse_registry_dir
from schemas.untrusted import document_too_deep, mask_text, text_too_deep
from streams.intake.classify import SEQ_HEADER, SOURCE_HEADER, RawMessage, arrival_of, classify
from streams.intake.limits import IntakeLimits
from tests.fixtures.contract_cases import VALID_EVENTS

RECEIPT = next(doc for doc in VALID_EVENTS if doc["event_type"] == "stock.received")
ADJUSTED = next(doc for doc in VALID_EVENTS if doc["event_type"] == "stock.adjusted")
COUNTED = next(doc for doc in VALID_EVENTS if doc["event_type"] == "stock.counted")
ARRIVAL = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
REGISTRY = parse_registry_dir(Path(__file__).resolve().parent.parent / "fixtures" / "registry")


def reason(doc: dict[str, Any], arrival: datetime = ARRIVAL, **kwargs: Any) -> str | None:
    try:
        parse_event_line(orjson.dumps(doc), arrival=arrival, **kwargs)
    except EventRejected as exc:
        return exc.reason
    return None


def line_reason(line: bytes) -> str:
    with pytest.raises(EventRejected) as caught:
        parse_event_line(line, arrival=ARRIVAL)
    return caught.value.reason


# -- event time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        ("9999-12-31T23:59:59+00:00", "occurred_at: more than 1 day after the platform received"),
        ("2100-01-01T00:00:00+07:00", "occurred_at: more than 1 day after the platform received"),
        ("0001-01-01T00:00:00+00:00", "occurred_at: before 2008-01-01T00:00:00+07:00"),
        ("1971-06-01T08:00:00+07:00", "occurred_at: before 2008-01-01T00:00:00+07:00"),
        ("2007-12-31T16:59:59.999+00:00", "occurred_at: before 2008-01-01T00:00:00+07:00"),
        ("2024-03-11T12:00:01Z", "occurred_at: more than 1 day after the platform received"),
    ],
)
def test_event_times_out_of_bounds_are_rejected_with_a_reason(
    occurred_at: str, expected: str
) -> None:
    found = reason({**RECEIPT, "occurred_at": occurred_at})
    assert found is not None and found.startswith(expected), found
    assert occurred_at[:10] in found  # the reason names what was sent


@pytest.mark.parametrize(
    "occurred_at",
    ["2008-01-01T00:00:00+07:00", "2007-12-31T17:00:00Z", "2024-03-11T12:00:00Z", "2024-03-10"
     "T19:00:00+07:00"],
)  # fmt: skip
def test_event_times_at_the_bounds_are_accepted(occurred_at: str) -> None:
    assert reason({**RECEIPT, "occurred_at": occurred_at}) is None


def test_both_time_bounds_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTWATCH_STREAM_OCCURRED_AT_EARLIEST", "2020-01-01T00:00:00+07:00")
    monkeypatch.setenv("OSTWATCH_STREAM_OCCURRED_AT_MAX_AHEAD_S", "3600")
    bounds = load(StreamSettings).event_bounds()
    assert bounds == EventBounds(
        datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=7))), timedelta(hours=1)
    )
    assert IntakeLimits.from_settings(load(StreamSettings)).bounds == bounds
    early = {**RECEIPT, "occurred_at": "2019-12-31T23:00:00+07:00"}
    ahead = {**RECEIPT, "occurred_at": "2024-03-10T13:30:00Z"}
    assert reason(early) is None and reason(ahead) is None  # under the defaults
    assert str(reason(early, bounds=bounds)).startswith("occurred_at: before 2020-01-01")
    assert str(reason(ahead, bounds=bounds)).startswith("occurred_at: more than 1 hour after")


def test_an_event_built_without_an_arrival_is_judged_as_arriving_now() -> None:
    tomorrow = datetime.now(UTC) + timedelta(days=2)
    with pytest.raises(EventRejected, match="cannot happen in the future"):
        parse_event_dict({**RECEIPT, "occurred_at": tomorrow.isoformat()})
    seven = timezone(timedelta(hours=7))
    assert datetime(2008, 1, 1, tzinfo=seven) == EARLIEST_OCCURRED_AT


# -- arrival in the stream -------------------------------------------------------------------


def _message(value: bytes, seq: int, timestamp: float | None) -> RawMessage:
    headers = [(SOURCE_HEADER, b"producer:x"), (SEQ_HEADER, str(seq).encode())]
    return RawMessage(value, headers, "ostwatch.events", 0, seq, timestamp=timestamp)


def test_arrival_is_the_kafka_timestamp_capped_by_the_intake_clock() -> None:
    sent = datetime(2024, 3, 10, 8, 0, tzinfo=UTC)
    later = sent + timedelta(days=30)
    assert arrival_of(_message(b"", 1, sent.timestamp()), later) == sent  # a replay
    assert arrival_of(_message(b"", 1, later.timestamp()), sent) == sent  # a clock ahead
    assert arrival_of(_message(b"", 1, None), sent) == sent
    assert arrival_of(_message(b"", 1, 1e300), sent) == sent


def test_a_topic_read_again_later_decides_every_event_as_the_first_time() -> None:
    """An event 20 h ahead of its sending is accepted, and still is when the worker reads
    the topic again a month later; one 25 h ahead is refused then as it was at first."""
    sent = datetime(2024, 3, 10, 8, 0, tzinfo=UTC)
    ahead = [
        {**RECEIPT, "event_id": f"00000000-0000-4000-8000-0000000001{h:02d}",
         "occurred_at": (sent + timedelta(hours=h)).isoformat()}
        for h in (20, 25)
    ]  # fmt: skip
    messages = [
        _message(encode_raw_submission(orjson.dumps(doc), ""), n, sent.timestamp())
        for n, doc in enumerate(ahead)
    ]
    for received_at in (sent + timedelta(seconds=1), sent + timedelta(days=30)):
        batch = classify(messages, REGISTRY, set(), received_at).batch
        assert [a.event.event_id for a in batch.accepted] == [ahead[0]["event_id"]]
        assert "more than 1 day after" in batch.rejected[0].reason


def test_typed_avro_events_are_bounded_too() -> None:
    """A typed event (the publisher's own encoding) carries values JSON cannot: inf, nan,
    and a time the sender's clock allowed; the stream judges them again."""
    at = "2024-03-10T09:00:00+07:00"
    ok = parse_event_dict({**RECEIPT, "occurred_at": at}, arrival=ARRIVAL)
    value = encode_event(ok)
    assert classify([_message(value, 1, None)], REGISTRY, set(), ARRIVAL).batch.accepted
    early = classify([_message(value, 1, None)], REGISTRY, set(), datetime(2024, 3, 8, tzinfo=UTC))
    assert "more than 1 day after" in early.batch.rejected[0].reason


# -- quantities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "field", "value", "expected"),
    [
        (RECEIPT, "quantity", 1e308, "quantity: must be greater than 0 and at most 10,000,000"),
        (RECEIPT, "quantity", 10_000_000.5, "quantity: must be greater than 0 and at most"),
        (RECEIPT, "quantity", 2**63 - 1, "quantity: must be greater than 0 and at most"),
        (RECEIPT, "quantity", -0.0, "quantity: must be greater than 0"),
        (ADJUSTED, "quantity_delta", -10_000_000.5, "quantity_delta: must not be 0, and at"),
        (ADJUSTED, "quantity_delta", 1e15, "quantity_delta: must not be 0, and at most"),
        (COUNTED, "quantity_on_hand", 2e7, "quantity_on_hand: must be 0 or more and at most"),
    ],
)
def test_quantities_beyond_ten_million_are_rejected(
    base: dict[str, Any], field: str, value: float, expected: str
) -> None:
    found = reason({**base, field: value})
    assert found is not None and found.startswith(expected), found


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_quantities_must_be_finite(value: float) -> None:
    # JSON has no infinity (orjson refuses 1e999), but a decoded Avro double or a Python
    # caller can hold one.
    with pytest.raises(EventRejected, match=r"^quantity: must be a finite number"):
        parse_event_dict({**RECEIPT, "quantity": value}, arrival=ARRIVAL)


def test_integers_beyond_64_bits_are_read_as_floats_and_refused() -> None:
    line = orjson.dumps(RECEIPT).replace(b'"quantity":5000', b'"quantity":%d' % 2**90)
    assert line_reason(line).startswith("quantity: must be greater than 0 and at most")


def test_the_largest_quantities_pass_and_minus_zero_counts_as_zero() -> None:
    assert reason({**RECEIPT, "quantity": 10_000_000}) is None
    assert reason({**ADJUSTED, "quantity_delta": -10_000_000}) is None
    counted = parse_event_dict({**COUNTED, "quantity_on_hand": -0.0}, arrival=ARRIVAL)
    assert str(getattr(counted, "quantity_on_hand")) == "0.0"  # noqa: B009


# -- nesting ---------------------------------------------------------------------------------


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b'{"a":' * depth + inner + b"}" * depth


def nested_doc(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        doc = {"a": doc}
    return doc


@pytest.mark.parametrize("depth", [33, 500, 1000, 5000])
def test_lines_nested_deeper_than_32_levels_are_rejected_before_any_walk(depth: int) -> None:
    expected = "nested too deep: more than 32 levels of objects and arrays (CONTRACT §1)"
    assert line_reason(nested(depth)) == expected
    assert line_reason(b"[" * depth) == expected
    # inside an otherwise valid event, in an unknown field: still the depth first
    event = orjson.dumps({**RECEIPT, "extra": 0})[:-2] + b":" + nested(depth) + b"}"
    assert line_reason(event) == expected


def test_thirty_two_levels_are_within_the_limit() -> None:
    event = {**RECEIPT, "extra": nested_doc(31)}  # the event itself is the 32nd level
    assert not document_too_deep(event) and not text_too_deep(orjson.dumps(event))
    assert reason(event) == "unknown field: extra"
    assert document_too_deep({**RECEIPT, "extra": nested_doc(32)})


def test_brackets_inside_strings_do_not_count() -> None:
    text = orjson.dumps({**RECEIPT, "lot": "[[[[{{{{" * 10})
    assert not text_too_deep(text)
    assert not text_too_deep(b'"\\"' + b"[" * 40)  # an escaped quote does not end a string
    assert text_too_deep(b'"\\"[["' + b"[" * 40)  # …and the next quote does


@pytest.mark.parametrize("depth", [500, 5000, 100_000])
def test_walks_over_deep_documents_do_not_recurse(depth: int) -> None:
    """A Python caller's document (publisher.publish, the outbox) is never parsed from
    text; the walks over it must not fail with RecursionError at any depth, and take time
    in proportion to it (100,000 levels, a hundred times the recursion limit)."""
    assert depth > sys.getrecursionlimit() // 2 or depth == 500
    doc = nested_doc(depth)
    with pytest.raises(EventRejected, match=r"^nested too deep"):
        parse_event_dict({**RECEIPT, "extra": doc})
    assert document_too_deep(doc)
    assert personal_data_problem({"a": nested_doc(depth)}, CODE_FIELDS) is None
    kept = redact_document({"x": doc}, CONTRACT_FIELDS, CODE_FIELDS)
    assert kept["x"]["a"]["a"]["a"] is not None


@pytest.mark.parametrize("depth", [500, 990, 5000])
def test_a_deep_refused_line_is_kept_as_its_structure(depth: int) -> None:
    line = nested(depth, b'"0912345678"')
    kept = redact_rejected_line(line)
    assert kept == nested(depth, b'"0000000000"').replace(b'"a"', b'"x"')
    assert line_reason(kept) == line_reason(line)


# -- encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"\xff\xfe\x00",
        orjson.dumps(RECEIPT)[:-2] + b'\xc3"}',  # a lone lead byte before the closing quote
        orjson.dumps(RECEIPT).replace(b"MET10", b"MET\xe910"),  # Latin-1 é
        orjson.dumps(RECEIPT).replace(b"MET10", b"MET\xed\xa0\x80"),  # an encoded surrogate
        orjson.dumps(RECEIPT).replace(b"MET10", b"MET\xc0\xaf"),  # an overlong '/'
    ],
)
def test_invalid_utf8_is_rejected_as_such_and_so_is_its_kept_form(line: bytes) -> None:
    found = line_reason(line)
    assert found.startswith("not valid UTF-8: an undecodable byte after "), found
    kept = redact_rejected_line(line)
    assert line_reason(kept) == found  # it used to read "leading zero" here


def test_a_bom_or_a_lone_surrogate_escape_is_not_json() -> None:
    assert line_reason(b"\xef\xbb\xbf" + orjson.dumps(RECEIPT)).startswith(
        "not JSON: UTF-8 byte order mark"
    )
    lone = orjson.dumps(RECEIPT).replace(b"MET10", b"MET\\ud800")
    assert line_reason(lone).startswith("not JSON: ")
    assert line_reason(redact_rejected_line(lone)).startswith("not JSON: ")


_JUNK = st.sampled_from(
    [*'{}[]":,\\ \t0123456789.eE-+', "true", "null", "Nguyễn", "đ", "\\u00e9", "\\ud800", "0912"]
)
_LINES = st.one_of(
    st.binary(max_size=60),
    st.lists(st.one_of(_JUNK.map(str.encode), st.binary(max_size=2)), max_size=40).map(b"".join),
)


@settings(max_examples=400, deadline=None)
@given(_LINES)
def test_a_masked_line_is_refused_for_the_same_kind_of_reason(line: bytes) -> None:
    try:
        parse_event_line(line, arrival=ARRIVAL)
    except EventRejected as exc:
        original = exc.reason
    else:
        return
    if not original.startswith(("not JSON", "not valid UTF-8", "nested too deep")):
        return
    kept = mask_text(line)
    escaped = "surrogateescape"  # one character per undecodable byte
    assert len(kept.decode("utf-8", escaped)) == len(line.decode("utf-8", escaped))
    again = line_reason(kept)
    assert again.split(":")[0] == original.split(":")[0]
    if not original.startswith("not JSON"):
        assert again == original
