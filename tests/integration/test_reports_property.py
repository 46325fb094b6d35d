"""For random event streams — late, out of order, duplicated, split into random batches — the
live aggregates answer every report exactly as a plain recomputation from the events does,
and as the same reports recomputed from the archive alone, at any moment T."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.reference import parse_registry_dir
from tests.support.events import contract_event
from tests.support.intake import REGISTRY_DIR, IntakeHarness
from tests.support.oracle import recompute

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REGISTRY = parse_registry_dir(REGISTRY_DIR)
PATIENTS = ("pat-prop-0001", "pat-prop-0002", "pat-prop-0003")
DOSING = ("TF-01", "TF-01", "TF-02", "DP-01")
START = datetime(2024, 2, 27, 17, 0, tzinfo=UTC)  # local midnight, 28 February
# A few dozen instants over five local days, including local midnights and shared instants,
# so ties and day boundaries come up often.
INSTANTS = sorted(
    {START + timedelta(days=d) for d in range(4)}
    | {START + timedelta(days=d, hours=h) for d in range(3) for h in (1, 7, 16)}
    | {START + timedelta(days=d, hours=16, minutes=59, seconds=59) for d in range(3)}
)  # a few instants over three local days, with local midnights: ties and boundaries abound

VIETNAM = timezone(timedelta(hours=7))
_instants = st.sampled_from(INSTANTS)
_patients = st.sampled_from(PATIENTS)


def _doc(event_type: str, at: datetime, facility_id: str, **fields: Any) -> dict[str, Any]:
    # Both spellings of a moment: local time with its offset, and UTC with "Z".
    if at.hour % 2 == 0:
        text = at.astimezone(VIETNAM).isoformat()
    else:
        text = at.isoformat().replace("+00:00", "Z")
    return contract_event(event_type, text, facility_id, **fields)


@st.composite
def dose(draw: st.DrawFn) -> dict[str, Any]:
    take_home = draw(st.booleans())
    extra: dict[str, Any] = (
        {"mode": "take_home", "take_home_days": draw(st.integers(1, 5))}
        if take_home
        else {"mode": "observed"}
    )
    return _doc(
        "dose.dispensed",
        draw(_instants),
        draw(st.sampled_from(DOSING)),
        patient_ref=draw(_patients),
        item=draw(st.sampled_from(("MET10", "MET10", "BUP2"))),
        dose_mg=draw(st.sampled_from((20, 45.5, 80, 120))),
        **extra,
    )


@st.composite
def stock(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(("stock.received", "stock.adjusted", "stock.counted")))
    facility = draw(st.sampled_from((*DOSING, "CHS-01")))
    item = draw(st.sampled_from(("MET10", "MET10", "BUP2", "KIT-MOR")))
    at = draw(_instants)
    if kind == "stock.received":
        return _doc(kind, at, facility, item=item, quantity=draw(st.sampled_from((10, 250.5))))
    if kind == "stock.adjusted":
        return _doc(
            kind,
            at,
            facility,
            item=item,
            quantity_delta=draw(st.sampled_from((-5, 3.5, -20))),
            reason="count_correction",
        )
    return _doc(kind, at, facility, item=item, quantity_on_hand=draw(st.sampled_from((0, 500))))


@st.composite
def lifecycle(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            (
                "patient.enrolled",
                "patient.enrolled",
                "patient.transferred",
                "patient.discharged",
                "patient.take_home_approved",
                "patient.take_home_revoked",
            )
        )
    )
    facility = draw(st.sampled_from(("TF-01", "TF-01", "TF-02", "CHS-01")))
    fields: dict[str, Any] = {"patient_ref": draw(_patients)}
    if kind == "patient.enrolled":
        fields |= {
            "programme": draw(st.sampled_from(("methadone", "buprenorphine", "community_detox"))),
            "residence_commune": "C-01",
        }
    elif kind == "patient.transferred":
        fields["to_facility_id"] = draw(
            st.sampled_from([f for f in ("TF-01", "TF-02", "DP-01") if f != facility])
        )
    elif kind == "patient.discharged":
        fields["outcome"] = "completed"
    elif kind == "patient.take_home_approved":
        fields["max_days"] = draw(st.integers(1, 7))
    return _doc(kind, draw(_instants), facility, **fields)


@st.composite
def drug_test(draw: st.DrawFn) -> dict[str, Any]:
    outcome = st.sampled_from(("positive", "negative", "invalid"))
    results = draw(
        st.dictionaries(st.sampled_from(("opiates", "methamphetamine")), outcome, min_size=1)
    )
    return _doc(
        "test.performed",
        draw(_instants),
        draw(st.sampled_from(("CHS-01", "TF-01"))),
        item="KIT-MOR",
        purpose="screening",
        results=results,
    )


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[int]]:
    """Events in arrival order (shuffled, so many arrive late) with duplicates, and batches."""
    events = draw(
        st.lists(st.one_of(dose(), stock(), lifecycle(), drug_test()), min_size=20, max_size=60)
    )
    resent = draw(st.lists(st.sampled_from(events), max_size=5)) if events else []
    # A duplicate is the same event_id, maybe with other content: the first one counts.
    changed = [dict(doc, occurred_at=draw(_instants).isoformat()) for doc in resent[:2]]
    stream = draw(st.permutations(events + resent + changed))
    sizes = draw(st.lists(st.integers(1, 15), max_size=8))
    return stream, sizes


def assert_same(actual: Any, expected: Any, path: str = "") -> None:
    """Equal structure and values; floats within 1e-6 (sums in another order round apart)."""
    if isinstance(expected, float) and isinstance(actual, int | float):
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-6), (path, actual)
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), (path, actual)
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (path, actual)
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{index}]")
    else:
        assert actual == expected, (path, actual, expected)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(arrival=arrivals(), moments=st.lists(_instants, max_size=3))
def test_live_aggregates_answer_like_a_recomputation(
    chdb_dir: Path, arrival: tuple[list[dict[str, Any]], list[int]], moments: list[datetime]
) -> None:
    stream, sizes = arrival
    harness = IntakeHarness(chdb_dir)
    try:
        harness.feed(stream, sizes)
        for as_of in [None, *moments, *(m - timedelta(milliseconds=1) for m in moments)]:
            expected = recompute(stream, REGISTRY, as_of)
            assert_same(harness.reports("aggregates", as_of), expected, f"aggregates@{as_of}")
            assert_same(harness.reports("archive", as_of), expected, f"archive@{as_of}")
    finally:
        harness.drop()
