"""A facility offline for three days keeps its events in the outbox and syncs them in one
burst; the platform then reports and alerts in event time, as if they had arrived live."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer

from infra.broker import free_port
from infra.gateway import HttpGateway, StackInfo
from producers.outbox import Outbox
from tests.integration.conftest import RunningStack
from tests.support.events import contract_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

FACILITY = "TF-02"
DAYS = ("2024-03-04", "2024-03-05", "2024-03-06")
P1, P2, P3 = "pat-offline-01", "pat-offline-02", "pat-offline-03"


def dose(day: str, clock: str, patient: str, mg: int) -> dict[str, Any]:
    return contract_event(
        "dose.dispensed", f"{day}T{clock}:00+07:00", FACILITY,
        patient_ref=patient, item="MET10", dose_mg=mg, mode="observed",
    )  # fmt: skip


def three_days() -> list[list[dict[str, Any]]]:
    """Per day, what the facility recorded while its link was down."""
    first, second, third = DAYS
    return [
        [
            contract_event("stock.counted", f"{first}T06:00:00+07:00", FACILITY, item="MET10",
                           quantity_on_hand=500),
            *(contract_event("patient.enrolled", f"{first}T07:00:00+07:00", FACILITY,
                             patient_ref=p, programme="methadone", residence_commune="C-09")
              for p in (P1, P2)),
            dose(first, "08:00", P1, 80),
            dose(first, "08:10", P2, 60),
        ],
        [dose(second, "08:00", P1, 80), dose(second, "08:10", P2, 60),
         dose(second, "15:00", P1, 80)],  # P1 twice on one day
        [dose(third, "08:00", P1, 80), dose(third, "08:10", P2, 60),
         dose(third, "09:00", P3, 50)],  # P3 was never enrolled here
    ]  # fmt: skip


def test_three_days_offline_then_one_burst(stack: RunningStack, tmp_path: Path) -> None:
    """On the session's stack: this facility (TF-02), its patients, its days and its outbox's
    source are this test's own, and every figure read below is filtered to them."""
    days = three_days()
    total = sum(len(day) for day in days)
    outbox_dir = tmp_path / "facility-outbox"
    link_down = f"127.0.0.1:{free_port()}"
    for day in days:  # each evening the facility tries, and the link is down
        with Outbox(outbox_dir, link_down, "ostwatch.events") as outbox:
            for event in day:
                outbox.add(event)
            assert outbox.deliver(timeout=2) == 0
    info = StackInfo.read(stack.data_dir)
    assert info is not None
    with Outbox(outbox_dir, info.bootstrap, info.events_topic) as outbox:
        assert outbox.pending() == total
        assert outbox.deliver() == total
        assert outbox.pending() == 0
        source = outbox.source
    gateway = HttpGateway.of(info)
    deadline = time.monotonic() + 120
    while sum((counts := gateway.call("submission_counts", source=source)).values()) < total:
        assert time.monotonic() < deadline, f"not all decided: {counts}"
        time.sleep(0.2)
    assert counts == {"accepted": total, "rejected": 0, "duplicates": 0}

    # Delivered in the order they were recorded (one facility: one partition).
    consumer = KafkaConsumer(
        info.events_topic, bootstrap_servers=info.bootstrap,
        auto_offset_reset="earliest", consumer_timeout_ms=3000,
    )  # fmt: skip
    headers = [dict(m.headers) for m in consumer]
    seqs = [int(h["ostwatch-seq"]) for h in headers if h["ostwatch-source"] == source.encode()]
    consumer.close()
    assert seqs == list(range(1, total + 1))

    # Reports in event time: one row per day the doses happened, not the sync day.
    dispensing = [r for r in stack.json("report", "dispensing") if r["facility_id"] == FACILITY]
    assert [(r["date"], r["patients_dosed"], r["observed_doses"]) for r in dispensing] == [
        (DAYS[0], 2, 2), (DAYS[1], 2, 3), (DAYS[2], 3, 3),
    ]  # fmt: skip
    stock = {r["item"]: r for r in stack.json("report", "stock") if r["facility_id"] == FACILITY}
    used_ml = (80 + 60 + 80 + 60 + 80 + 80 + 60 + 50) / 10
    assert stock["MET10"]["on_hand"] == pytest.approx(500 - used_ml)
    # As of the end of the first day, only that day counts.
    first_day = stack.json("report", "dispensing", "--as-of", f"{DAYS[0]}T23:59:59+07:00")
    assert [r["date"] for r in first_day if r["facility_id"] == FACILITY] == [DAYS[0]]

    # Alerts carry the event time at which each condition began.
    alerts = {(r["kind"], r["subject"]): r for r in stack.json("report", "alerts")}
    assert alerts[("double_dosing", P1)]["raised_at"] == "2024-03-05T08:00:00Z"
    assert alerts[("inactive_patient_dosed", P3)]["raised_at"] == "2024-03-06T02:00:00Z"
    notices = {s for k, s in alerts if k == "commune_notification"}
    assert {P1, P2} <= notices

    # After a broker restart lost what it had acknowledged, the facility sends the last
    # days again: the same submissions, recognised as redeliveries and counted once.
    redelivered = info.api("/api/status")[1]["intake"]["redelivered"]
    with Outbox(outbox_dir, info.bootstrap, info.events_topic) as outbox:
        assert outbox.resend_since(datetime(2000, 1, 1, tzinfo=UTC)) == total
        assert outbox.deliver() == total
    deadline = time.monotonic() + 120
    while info.api("/api/status")[1]["intake"]["redelivered"] < redelivered + total:
        assert time.monotonic() < deadline, "the re-sent events were not decided"
        time.sleep(0.2)
    assert gateway.call("submission_counts", source=source) == counts
    again = [r for r in stack.json("report", "dispensing") if r["facility_id"] == FACILITY]
    assert again == dispensing
