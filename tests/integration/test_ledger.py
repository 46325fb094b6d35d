"""The narcotics ledger against hand-worked figures and against `report stock`.

Events go through the real intake on the real engine: a month with receipts, observed and
take-home doses, every adjustment reason, two physical counts (one at the same instant as a
dose), a late receipt sent after the count that includes it, the month's first and last
millisecond, buprenorphine in tablets and test kits.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sinks.ledger import LINES, SUBTRACTED, Ledger, LedgerError
from tests.support.events import contract_event
from tests.support.intake import IntakeHarness

pytestmark = pytest.mark.integration


@pytest.fixture
def intake(chdb_dir: Path) -> Iterator[IntakeHarness]:
    harness = IntakeHarness(chdb_dir)
    yield harness
    harness.drop()


def at(text: str) -> str:
    """``MM-DD HH:MM`` in 2024, local time."""
    return f"2024-{text[:5]}T{text[6:]}:00+07:00"


def dose(when: str, mg: float, item: str = "MET10", days: int = 0) -> dict[str, Any]:
    mode: dict[str, Any] = (
        {"mode": "take_home", "take_home_days": days} if days else {"mode": "observed"}
    )
    return contract_event("dose.dispensed", when if "T" in when else at(when), "TF-01",
                          patient_ref="pat-ledger-01", item=item, dose_mg=mg, **mode)  # fmt: skip


def stock(kind: str, when: str, facility: str = "TF-01", **fields: Any) -> dict[str, Any]:
    return contract_event(f"stock.{kind}", at(when), facility, **fields)


def adjusted(when: str, delta: float, reason: str) -> dict[str, Any]:
    return stock("adjusted", when, item="MET10", quantity_delta=delta, reason=reason)


FEBRUARY = [
    stock("received", "02-10 09:00", item="MET10", quantity=1000),
    stock("counted", "02-20 07:00", item="MET10", quantity_on_hand=990),
    dose("02-25 08:00", 80),  # 8 ml → 982 at the end of February
]
MARCH = [
    dose("2024-03-01T00:00:00+07:00", 60),  # the month's first instant: 6 ml
    stock("received", "03-03 09:00", item="MET10", quantity=500),
    dose("03-05 08:00", 60),  # 6 ml
    dose("03-05 08:05", 50, days=3),  # take-home: 15 ml
    adjusted("03-06 10:00", -2.5, "spillage"),
    adjusted("03-07 10:00", -1, "breakage"),
    adjusted("03-08 10:00", -10, "expired"),
    adjusted("03-09 10:00", -0.5, "other"),
    adjusted("03-10 10:00", 100, "transfer_in"),
    adjusted("03-11 10:00", -50, "transfer_out"),
    adjusted("03-12 10:00", 1.5, "count_correction"),
    # computed before the count: 982 − 6 + 500 − 6 − 15 − 2.5 − 1 − 10 − 0.5 + 100 − 50
    # + 1.5 = 1492.5 (plus the late receipt below: 1512.5)
    stock("counted", "03-15 07:00", item="MET10", quantity_on_hand=1500),
    dose("03-18 08:00", 70),  # 7 ml
    dose("03-20 07:00", 40),  # 4 ml, at the very instant of the next count: already counted
    stock("counted", "03-20 07:00", item="MET10", quantity_on_hand=1490),  # computed 1489
    dose("2024-03-31T23:59:59.999+07:00", 30),  # the month's last millisecond: 3 ml
    stock("counted", "03-02 07:00", item="BUP2", quantity_on_hand=50),
    dose("03-02 08:00", 8, item="BUP2"),  # 4 tablets
    dose("03-02 08:05", 4, item="BUP2", days=7),  # 14 tablets
]
LATE = [stock("received", "03-14 09:00", item="MET10", quantity=20)]  # before the 15th count
APRIL = [dose("2024-04-01T00:00:00+07:00", 100)]


def stock_report(intake: IntakeHarness, item: str, as_of: str) -> float:
    rows = [
        row
        for row in intake.report("stock", datetime.fromisoformat(as_of))
        if row["facility_id"] == "TF-01" and row["item"] == item
    ]
    return float(rows[0]["on_hand"]) if rows else 0.0


def ledger(intake: IntakeHarness, month: str, item: str | None = None) -> dict[str, Any]:
    return Ledger(intake.db, intake.store.registry, intake.store.chain).month("TF-01", month, item)


def card(document: dict[str, Any], item: str) -> dict[str, Any]:
    [found] = [c for c in document["items"] if c["item"] == item]
    return found


def identity_holds(found: dict[str, Any]) -> bool:
    """opening + lines = closing, in decimals as printed."""
    total = Decimal(repr(found["opening_balance"]))
    for name in LINES:
        value = Decimal(repr(found[name]))
        total += -value if name in SUBTRACTED else value
    return total == Decimal(repr(found["closing_balance"]))


def test_a_month_with_every_kind_of_movement(intake: IntakeHarness) -> None:
    intake.feed(FEBRUARY + MARCH + APRIL, batch_sizes=[3, 10])
    intake.feed(LATE)
    document = ledger(intake, "2024-03")
    assert (document["facility_name"], document["month"]) == (
        "Cơ sở điều trị Methadone Lục Ngạn",
        "2024-03",
    )
    assert document["period_from"] == "2024-03-01T00:00:00+07:00"
    assert document["period_to"] == "2024-03-31T23:59:59.999+07:00"
    methadone = card(document, "MET10")
    expected = {
        "opening_balance": 982.0,
        "received": 520.0,
        "used_doses": 6 + 6 + 15 + 7 + 4 + 3,
        "used_tests": 0.0,
        "loss_spillage": -2.5,
        "loss_breakage": -1.0,
        "loss_expired": -10.0,
        "loss_other": -0.5,
        "transfer_in": 100.0,
        "transfer_out": -50.0,
        "count_corrections": 1.5,
        "count_differences": (1500 - 1512.5) + (1490 - 1489),
        "closing_balance": 1490 - 3,
    }
    assert {k: methadone[k] for k in expected} == expected
    assert (methadone["unit"], methadone["doses"], methadone["dose_mg"]) == ("ml", 6, 410.0)
    assert [
        (c["counted"], c["computed_on_hand"], c["difference"]) for c in methadone["counts"]
    ] == [
        (1500.0, 1512.5, -12.5),
        (1490.0, 1489.0, 1.0),
    ]
    assert methadone["counts"][0]["occurred_at"] == "2024-03-15T07:00:00+07:00"
    assert methadone["balanced"] and identity_holds(methadone)
    # The same figures as `report stock` at either end of the month.
    assert methadone["opening_balance"] == stock_report(
        intake, "MET10", "2024-02-29T23:59:59.999+07:00"
    )
    assert methadone["closing_balance"] == stock_report(
        intake, "MET10", "2024-03-31T23:59:59.999+07:00"
    )
    assert methadone["reconciles"] and methadone["stock_report_on_hand"] == 1487.0
    bup = card(document, "BUP2")
    assert (bup["unit"], bup["opening_balance"], bup["used_doses"], bup["closing_balance"]) == (
        "tablet",
        0.0,
        18.0,
        32.0,
    )
    assert bup["count_differences"] == 50.0 and bup["reconciles"] and identity_holds(bup)
    assert document["chain_head"]["position"] == len(FEBRUARY + MARCH + APRIL + LATE) - 1


def test_the_next_month_opens_where_this_one_closed(intake: IntakeHarness) -> None:
    intake.feed(FEBRUARY + MARCH + APRIL + LATE)
    march, april = (
        card(ledger(intake, "2024-03"), "MET10"),
        card(ledger(intake, "2024-04"), "MET10"),
    )
    assert april["opening_balance"] == march["closing_balance"]
    assert (april["used_doses"], april["closing_balance"]) == (10.0, 1477.0)
    assert april["reconciles"] and identity_holds(april)
    february = card(ledger(intake, "2024-02", item="MET10"), "MET10")
    assert (february["opening_balance"], february["closing_balance"]) == (0.0, 982.0)
    assert february["count_differences"] == -10.0  # 1000 received, 990 counted


def test_test_kits_are_used_one_per_test(intake: IntakeHarness) -> None:
    test = contract_event("test.performed", at("03-04 10:00"), "CHS-01", item="KIT-MOR",
                          purpose="screening", results={"opiates": "negative"})  # fmt: skip
    intake.feed([stock("received", "03-01 09:00", "CHS-01", item="KIT-MOR", quantity=20), test])
    document = Ledger(intake.db, intake.store.registry, None).month("CHS-01", "2024-03")
    kits = card(document, "KIT-MOR")
    assert (kits["unit"], kits["used_tests"], kits["tests"], kits["closing_balance"]) == (
        "kit",
        1.0,
        1,
        19.0,
    )
    assert kits["reconciles"] and document["chain_head"] is None


def test_bad_requests_are_refused(intake: IntakeHarness) -> None:
    with pytest.raises(LedgerError, match="YYYY-MM"):
        ledger(intake, "2024-13")
    with pytest.raises(LedgerError, match="unknown item"):
        ledger(intake, "2024-03", item="NOPE")
    with pytest.raises(LedgerError, match="unknown facility"):
        Ledger(intake.db, intake.store.registry).month("XX-99", "2024-03")
