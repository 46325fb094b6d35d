"""Ingest limits and privacy in the intake's decisions: every refusal is a rejection with a
reason (never a silent drop), and nothing kept of it holds personal data."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from ostwatch.settings import StreamSettings
from schemas.codec import decode, encode_event, encode_raw_submission, encode_submission_batch
from schemas.models import parse_event_dict
from schemas.reference import RegistrySnapshot, parse_registry_dir
from streams.intake.classify import classify, settle_suspects
from streams.intake.limits import FacilityRateLimiter, IntakeLimits
from tests.fixtures.contract_cases import VALID_EVENTS, event_id
from tests.unit.test_classify import NOW, REGISTRY_DIR, message


@pytest.fixture(scope="module")
def registry() -> RegistrySnapshot:
    return parse_registry_dir(REGISTRY_DIR)


DOSE = next(doc for doc in VALID_EVENTS if doc["event_type"] == "dose.dispensed")


def dose(n: int, **changes: object) -> dict[str, object]:
    return {**DOSE, "event_id": event_id(n), **changes}


def raw(doc: dict[str, object] | bytes, seq: int) -> object:
    line = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return message(encode_raw_submission(line, ""), seq)


def test_limits_mirror_the_settings_defaults() -> None:
    assert IntakeLimits() == IntakeLimits.from_settings(StreamSettings())


def test_a_line_over_the_limit_is_rejected_and_kept_short(registry: RegistrySnapshot) -> None:
    limits = IntakeLimits(max_line_bytes=1024)
    line = orjson.dumps(dose(1, item="M" * 2000))
    result = classify([raw(line, 1)], registry, set(), NOW, limits=limits)
    (rejected,) = result.batch.rejected
    assert rejected.reason.startswith("line too long: more than 1024 bytes")
    assert "OSTWATCH_STREAM_MAX_LINE_BYTES" in rejected.reason
    assert len(rejected.raw) <= 1024 and rejected.meta.line == 1


def test_every_submission_of_an_oversize_batch_is_rejected(registry: RegistrySnapshot) -> None:
    items = [(seq, encode_event(parse_event_dict(dose(seq)))) for seq in range(1, 6)]
    container = message(encode_submission_batch(items), 1)
    result = classify([container], registry, set(), NOW, limits=IntakeLimits(max_batch_items=4))
    assert [r.meta.seq for r in result.batch.rejected] == [1, 2, 3, 4, 5]
    assert all(r.reason.startswith("batch too large: 5 submissions") for r in result.batch.rejected)
    within = classify([container], registry, set(), NOW, limits=IntakeLimits(max_batch_items=5))
    assert len(within.batch.accepted) == 5


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = FacilityRateLimiter(rate_per_s=2.0, burst=3)
    assert [bucket.allow("TF-01", 0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.allow("TF-02", 0.0)  # per facility
    assert not bucket.allow("TF-01", 0.4)
    assert bucket.allow("TF-01", 0.6)  # 0.6 s × 2/s ≥ one token
    assert FacilityRateLimiter(rate_per_s=0, burst=1).allow("TF-01", 0.0)


def test_rate_limited_events_are_rejected_with_a_reason_not_dropped(
    registry: RegistrySnapshot,
) -> None:
    limits = IntakeLimits(facility_rate_per_s=1.0, facility_burst=2)
    bucket = FacilityRateLimiter(limits.facility_rate_per_s, limits.facility_burst)
    messages = [raw(dose(n), n) for n in range(1, 5)]
    result = classify(messages, registry, set(), NOW, limits=limits, rate=bucket)
    batch = result.batch
    assert len(batch) == 4  # every submission is decided
    assert [a.meta.seq for a in batch.accepted] == [1, 2]
    assert [r.meta.seq for r in batch.rejected] == [3, 4]
    assert batch.rejected[0].reason.startswith("rate limit: facility TF-01")
    assert batch.rejected[0].event_id == event_id(3)
    # a later resend of the refused events is accepted (they were never archived)
    later = NOW + timedelta(seconds=5)
    again = classify(
        messages[2:], registry, {event_id(1), event_id(2)}, later, limits=limits, rate=bucket
    )
    assert [a.meta.seq for a in again.batch.accepted] == [3, 4]


def test_redeliveries_and_duplicates_cost_no_tokens(registry: RegistrySnapshot) -> None:
    limits = IntakeLimits(facility_rate_per_s=0.001, facility_burst=1)
    bucket = FacilityRateLimiter(limits.facility_rate_per_s, limits.facility_burst)
    archived = {event_id(1)}
    result = classify(
        [raw(dose(1), 1), raw(dose(1), 2)], registry, archived, NOW, limits=limits, rate=bucket
    )
    batch = settle_suspects(result, {event_id(1): ("ingest:run:f.jsonl", 1)})
    assert len(batch.redelivered) == 1 and len(batch.duplicates) == 1 and not batch.rejected
    assert bucket.allow("TF-01", NOW.timestamp())  # the one token is still there


@pytest.mark.parametrize(
    "planted",
    [
        {"patient_ref": "001085012345"},
        {"patient_ref": "0901234567", "patient_name": "Nguyễn Văn An"},
        {"item": "an.nguyen@gmail.com"},
        {"facility_id": "0912345678"},
    ],
)
def test_what_is_kept_of_a_refused_event_holds_no_personal_data(
    registry: RegistrySnapshot, planted: dict[str, str]
) -> None:
    for value in (raw(dose(7, **planted), 7), message(b"\x00junk " + orjson.dumps(planted), 8)):
        result = classify([value], registry, set(), NOW)
        (rejected,) = result.batch.rejected
        kept = b"|".join(
            [
                rejected.raw,
                rejected.original,
                rejected.reason.encode(),
                rejected.facility_id.encode(),
                rejected.event_id.encode(),
            ]
        )
        for secret in planted.values():
            assert secret.encode() not in kept, (secret, kept)
        # the dead-letter copy is still a decodable raw submission
        assert decode(rejected.original).schema.name.endswith("RawSubmission")
