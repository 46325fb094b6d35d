"""Letters to communes (`ostwatch notices`): one per commune and month, every event it must be
told of, judged from the events as the alerts are — through the real intake and store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.application.alerts import NoticesRequest
from infra.application.common import OperationError, build
from infra.application.operations import LocalOperations
from infra.letters import letters_csv, letters_html, read_letter
from ostwatch.settings import AlertSettings
from sinks.store import Store
from tests.support.intake import IntakeHarness, registry_live_from

pytestmark = pytest.mark.integration


@pytest.fixture
def intake(chdb_dir: Path) -> Iterator[IntakeHarness]:
    harness = IntakeHarness(chdb_dir, alert_settings=AlertSettings())
    yield harness
    harness.drop()


def notices(store: Store, **fields: Any) -> dict[str, Any]:
    """The notices operation, as the CLI asks for it with no stack running."""
    return LocalOperations(store, AlertSettings()).notices(build(NoticesRequest, **fields)).root


def at(day: str, clock: str, month: str = "03") -> str:
    return f"2024-{month}-{day}T{clock}:00+07:00"


def event(event_type: str, when: str, facility: str = "TF-01", **fields: Any) -> dict[str, Any]:
    from tests.support.events import contract_event

    return contract_event(event_type, when, facility, **fields)


def enrol(when: str, patient: str, commune: str, facility: str = "TF-01") -> dict[str, Any]:
    return event("patient.enrolled", when, facility, patient_ref=patient, programme="methadone",
                 residence_commune=commune)  # fmt: skip


def test_a_month_of_letters(intake: IntakeHarness) -> None:
    positive = {"opiates": "positive", "methamphetamine": "negative"}
    intake.feed([
        enrol(at("29", "07:00", "02"), "pat-letter-0001", "C-07"),  # February: not in March
        enrol(at("01", "00:30"), "pat-letter-0002", "C-07"),  # 29 Feb 17:30 UTC: March locally
        enrol(at("03", "08:00"), "pat-letter-0003", "C-08", facility="TF-02"),
        event("patient.violation", at("10", "09:00"), patient_ref="pat-letter-0001",
              reason="diversion"),
        event("patient.discharged", at("20", "09:00"), patient_ref="pat-letter-0002",
              outcome="self_terminated"),
        event("patient.discharged", at("21", "09:00"), "TF-02", patient_ref="pat-letter-0003",
              outcome="deceased"),  # not something a commune is told of
        event("test.performed", at("12", "10:00"), "CHS-01", item="KIT-MOR", purpose="screening",
              results=positive, residence_commune="C-07"),  # nobody known: no reference
        event("test.performed", at("13", "10:00"), "TF-01", item="KIT-MOR",
              purpose="treatment_monitoring", results=positive, patient_ref="pat-letter-0001"),
        enrol(at("01", "07:00", "04"), "pat-letter-0004", "C-07"),  # April
    ])  # fmt: skip
    engine = intake.service.alerts
    assert engine is not None
    (enrolled,) = [a for _, a in engine.table.stored().values() if a.subject == "pat-letter-0002"
                   and a.details.get("notice") == "enrolled"]  # fmt: skip
    engine.acknowledge(enrolled.alert_id, "đã gửi")  # acknowledged: still in the month's letter

    document = notices(intake.store, month="2024-03")
    assert (document["document"], document["month"]) == ("ostwatch.commune_letters", "2024-03")
    letters = {letter["commune"]: letter["lines"] for letter in document["letters"]}
    assert sorted(letters) == ["C-07", "C-08"]
    c07 = [(line["date"], line["notice"], line["patient_ref"]) for line in letters["C-07"]]
    assert c07 == [
        ("2024-03-01", "enrolled", "pat-letter-0002"),
        ("2024-03-10", "violation", "pat-letter-0001"),
        ("2024-03-12", "positive_test", ""),
        ("2024-03-20", "self_terminated", "pat-letter-0002"),
    ]
    violation, test = letters["C-07"][1], letters["C-07"][2]
    assert violation["reason"] == "diversion"
    assert (test["purpose"], test["positive"], test["facility_name"]) == (
        "screening",
        ["opiates"],
        "Trạm Y tế xã Biển Động",
    )
    assert [line["notice"] for line in letters["C-08"]] == ["enrolled"]
    # One commune, one facility.
    only = notices(intake.store, month="2024-03", communes=["C-08"])
    assert [letter["commune"] for letter in only["letters"]] == ["C-08"]
    tf01 = notices(intake.store, month="2024-03", facilities=["TF-01"])
    assert len(tf01["letters"][0]["lines"]) == 3
    # The CSV reads back as the same letters; the HTML names every line.
    back = read_letter(letters_csv(document))
    assert [letter["lines"] for letter in back["letters"]] == list(letters.values())
    page = letters_html(document)
    assert page.count("<section class=letter>") == 2 and "pat-letter-0003" in page
    with pytest.raises(OperationError, match="--month"):
        notices(intake.store, month="March")


def test_history_before_live_from_is_in_no_letter(chdb_dir: Path, tmp_path: Path) -> None:
    registry = registry_live_from(tmp_path, {"TF-02": "2024-03-10"})
    intake = IntakeHarness(chdb_dir, registry_dir=registry, alert_settings=AlertSettings())
    try:
        intake.feed([
            enrol(at("03", "08:00"), "pat-letter-0005", "C-08", facility="TF-02"),  # history
            enrol(at("10", "08:00"), "pat-letter-0006", "C-08", facility="TF-02"),
        ])  # fmt: skip
        document = notices(intake.store, month="2024-03")
        (letter,) = document["letters"]
        assert [line["patient_ref"] for line in letter["lines"]] == ["pat-letter-0006"]
    finally:
        intake.drop()
