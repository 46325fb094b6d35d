"""Short builders of the events alert tests feed: March 2024, local time 'DD HH:MM'."""

from __future__ import annotations

from typing import Any

from tests.support.events import contract_event

PATIENT = "pat-alert-0001"


def ev(event_type: str, at: str, facility_id: str = "TF-01", **fields: Any) -> dict[str, Any]:
    """An event at local time 'DD HH:MM' in March 2024."""
    day, clock = at.split()
    return contract_event(event_type, f"2024-03-{day}T{clock}:00+07:00", facility_id, **fields)


def dose(at: str, patient: str = PATIENT, facility_id: str = "TF-01", mg: float = 80,
         days: int = 0) -> dict[str, Any]:  # fmt: skip
    """A methadone dose, observed, or taken home for ``days``."""
    mode: dict[str, Any] = (
        {"mode": "take_home", "take_home_days": days} if days else {"mode": "observed"}
    )
    return ev("dose.dispensed", at, facility_id, patient_ref=patient, item="MET10", dose_mg=mg,
              **mode)  # fmt: skip


def enrol(at: str, patient: str = PATIENT, facility_id: str = "TF-01") -> dict[str, Any]:
    return ev("patient.enrolled", at, facility_id, patient_ref=patient, programme="methadone",
              residence_commune="C-01")  # fmt: skip
