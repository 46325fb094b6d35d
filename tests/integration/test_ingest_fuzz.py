"""Fuzzing the ingest path: whatever arrives on the events topic, the real intake (classify,
archive, aggregates, alerts, submission rows on chDB) must not crash, and every submission
must come out exactly once as accepted, rejected (with a reason) or duplicate.

Inputs: random bytes, huge lines, deep nesting, wrong types, odd Unicode, valid contract
events with one field broken, raw Kafka values that are not ours at all (no framing, a
damaged SubmissionBatch, a tombstone), and events sent twice; and the shapes of issue 15's
poison pills (tests/fixtures/hostile.py): event times at and past every bound, magnitudes,
nesting around every limit, bytes that are not UTF-8.
"""

from __future__ import annotations

import copy
import math
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from ostwatch.settings import AlertSettings
from schemas.codec import encode_submission_batch
from schemas.models import EARLIEST_OCCURRED_AT, MAX_AHEAD, MAX_QUANTITY
from sinks.records import IntakeBatch
from streams.intake.classify import SEQ_HEADER, SOURCE_HEADER, RawMessage
from tests.fixtures.contract_cases import VALID_EVENTS
from tests.fixtures.hostile import DEPTHS, ENCODINGS, HOSTILE_LINES, MAGNITUDES, TIMES
from tests.support.events import FRAMINGS, Framing
from tests.support.intake import SOURCE, TOPIC, IntakeHarness, Payload

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

EXAMPLES = int(os.environ.get("OSTWATCH_FUZZ_EXAMPLES", "60"))

JUNK_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # what a JSON encoder can write
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(
        alphabet=st.sampled_from("\u0000\u200f\u202e\ufeff\U0001f48a\u0301Đđ\ud7ff"), max_size=20
    ),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(min_value=0, max_value=2**63 - 1), max_size=3),
)


@st.composite
def one_field_broken(draw: st.DrawFn) -> dict[str, Any]:
    """A valid contract event (fresh event_id) with one field replaced, removed or added."""
    doc = copy.deepcopy(draw(st.sampled_from(VALID_EVENTS)))
    doc["event_id"] = str(uuid.uuid4())
    field = draw(st.sampled_from([*sorted(doc), "unexpected_field"]))
    if draw(st.booleans()) and field in doc:
        del doc[field]
    else:
        doc[field] = draw(JUNK_VALUES)
    return doc


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


PAYLOADS: st.SearchStrategy[Payload] = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.integers(min_value=1, max_value=3000).map(nested),
    st.integers(min_value=1, max_value=3000).map(lambda depth: b"[" * depth),
    st.integers(min_value=100_000, max_value=2_000_000).map(lambda size: b'{"x":"' + b"y" * size),
    one_field_broken(),
    st.sampled_from(VALID_EVENTS).map(lambda e: dict(e, event_id=str(uuid.uuid4()))),
    st.integers(min_value=2**64, max_value=2**90).map(
        lambda n: b'{"event_type":"dose.dispensed","dose_mg":%d,"take_home_days":-%d}' % (n, n)
    ),
    st.sampled_from([b"", b"null", b"[]", b"{}", b'"text"', b"1e999", b"\xff\xfe\x00"]),
    HOSTILE_LINES,
)

# Kafka values that did not come from our producer library at all.
FOREIGN_VALUES = st.one_of(
    st.none(),
    st.binary(max_size=200),
    st.binary(max_size=60).map(lambda tail: b"\x00\x00\x00\x00\x03" + tail),
    st.lists(st.binary(max_size=40), min_size=1, max_size=3).map(
        lambda items: encode_submission_batch(list(enumerate(items)))[:-3]
    ),
)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IntakeHarness]:
    chdb_dir: Path = tmp_path_factory.mktemp("fuzz")
    instance = IntakeHarness(chdb_dir, alert_settings=AlertSettings())
    yield instance
    instance.drop()


def decided_seqs(batch: IntakeBatch) -> list[int]:
    items: list[Any] = [*batch.accepted, *batch.rejected, *batch.duplicates, *batch.redelivered]
    return sorted(item.meta.seq for item in items)


def assert_accounted(batch: IntakeBatch, sent: int) -> None:
    assert len(batch) == sent
    assert all(item.reason.strip() for item in batch.rejected)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    payloads=st.lists(PAYLOADS, min_size=1, max_size=12),
    resend=st.booleans(),
    framing=st.sampled_from(FRAMINGS),
)
def test_every_submission_is_decided_once_and_nothing_crashes(
    harness: IntakeHarness, payloads: list[Payload], resend: bool, framing: Framing
) -> None:
    harness.reset()
    sizes = [len(p) if isinstance(p, bytes) else len(orjson.dumps(p)) for p in payloads]
    note(f"{len(payloads)} payloads, sizes {sizes}, framing {framing}")
    first_seq = harness._seq + 1
    batch = harness.send(payloads, framing=framing)
    assert_accounted(batch, len(payloads))
    assert decided_seqs(batch) == list(range(first_seq, first_seq + len(payloads)))
    accepted = {item.event.event_id for item in batch.accepted}
    if resend:
        # The same events again, as new submissions: nothing accepted twice.
        again = harness.send(payloads, framing=framing)
        assert_accounted(again, len(payloads))
        assert not again.accepted or not accepted & {i.event.event_id for i in again.accepted}
        assert len(again.duplicates) >= len(batch.accepted)
        # The same Kafka records redelivered: decided again, counted once.
        redelivered = harness.redeliver(0)
        assert len(redelivered) == len(payloads) and not redelivered.accepted
    totals = harness.store.submission_counts("test:intake-harness")
    assert totals["accepted"] == len(accepted)
    assert sum(totals.values()) == len(payloads) * (2 if resend else 1)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(FOREIGN_VALUES, min_size=1, max_size=8), with_headers=st.booleans())
def test_foreign_kafka_values_are_rejected_not_fatal(
    harness: IntakeHarness, values: list[bytes | None], with_headers: bool
) -> None:
    harness.reset()
    messages = [
        RawMessage(
            value=value,
            headers=[(SOURCE_HEADER, b"fuzz:foreign"), (SEQ_HEADER, str(n).encode())]
            if with_headers
            else [],
            topic=TOPIC,
            partition=0,
            offset=n,
        )
        for n, value in enumerate(values)
    ]
    batch = harness.process(messages)
    assert len(batch.accepted) == 0
    assert len(batch) >= len(values)  # a damaged batch may still name several items
    assert all(item.reason.strip() for item in batch.rejected)


def assert_within_bounds(batch: IntakeBatch, decided_at: datetime) -> None:
    """What was accepted obeys CONTRACT §1: an event time from the earliest bound to a day
    after arrival, finite quantities of at most 10,000,000."""
    for item in batch.accepted:
        event = item.event
        assert EARLIEST_OCCURRED_AT <= event.occurred_at <= decided_at + MAX_AHEAD
        for name in ("quantity", "quantity_delta", "quantity_on_hand", "dose_mg"):
            value = getattr(event, name, None)
            assert value is None or (math.isfinite(value) and abs(value) <= MAX_QUANTITY)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    lines=st.lists(
        st.one_of(TIMES, MAGNITUDES, DEPTHS, ENCODINGS, st.sampled_from(VALID_EVENTS).map(
            lambda e: dict(e, event_id=str(uuid.uuid4())))),
        min_size=1,
        max_size=12,
    ),
    framing=st.sampled_from(FRAMINGS),
)  # fmt: skip
def test_hostile_times_magnitudes_depths_and_encodings_are_decided_once(
    harness: IntakeHarness, lines: list[Payload], framing: Framing
) -> None:
    """Every line decided exactly once, by validation (the store never had to refuse one:
    nothing quarantined), the service never raising (in the worker, a restart), and the
    figures still computable."""
    harness.reset()
    service = harness.service
    first_seq = harness._seq + 1
    batch = harness.send(lines, framing=framing)
    assert harness.service is service and service.stats.quarantined == 0
    assert_accounted(batch, len(lines))
    assert decided_seqs(batch) == list(range(first_seq, first_seq + len(lines)))
    assert_within_bounds(batch, datetime.now(UTC))
    assert sum(harness.store.submission_counts(SOURCE).values()) == len(lines)
    for row in harness.report("stock"):
        assert math.isfinite(row["on_hand"])
