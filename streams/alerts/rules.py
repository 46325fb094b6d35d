"""The patient rules of CONTRACT §4 as pure functions of facts: no database, no clock.

Each rule turns facts (here a patient's events, or a test of no patient) into ``Condition``s:
dispensing controls (double dosing, take-home violations, doses while not active) and the
notices a commune must receive. The stock rules are in ``streams.alerts.stock_rules``, the
deadline and supervision rules in ``streams.alerts.calendar_rules``. A condition's identity
(kind, facility, subject, occurrence) is chosen so that recomputing it from the same or later
facts gives the same ``alert_id``: that is what keeps alerts stable when a worker restarts, a
batch is redelivered, or a late event arrives. A condition that late events remove simply is
not produced any more; the engine then resolves the alert it had raised.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from ostwatch.settings import AlertSettings
from sinks.alert_store import PatientFact
from streams.alerts.condition import Condition, local_day, local_time

NOTIFIED_OUTCOMES = frozenset({"self_terminated", "completed"})
NOTIFIED_PURPOSES = frozenset({"addiction_determination", "screening"})
# What a commune is told of (a letter's lines, CONTRACT §4): the ``notice`` of a notification.
NOTICES = ("enrolled", "violation", "self_terminated", "completed", "positive_test")
PURPOSE_LABELS = {
    "addiction_determination": ("addiction determination", "xác định tình trạng nghiện"),
    "screening": ("screening", "sàng lọc"),
}
ANONYMOUS_TEST = "test/"  # the subject prefix of a notice for a test of no patient_ref
CROSS_FACILITY = ""  # the facility part of an id for conditions that span facilities


# -- patients: dispensing controls and commune notifications ------------------------------


class _StateLine:
    """A patient's state changes on one key, in the report's tie order; the state at T is the
    last change at or before T (a leave beats a join at the same instant, then event_id)."""

    def __init__(self) -> None:
        self._changes: list[tuple[datetime, int, str, int, int]] = []

    def add(self, at: datetime, value: int, event_id: str, extra: int = 0) -> None:
        self._changes.append((at, -value, event_id, value, extra))

    def freeze(self) -> None:
        self._changes.sort()
        self._times = [change[0] for change in self._changes]

    def at(self, instant: datetime) -> tuple[int, int]:
        """(value, extra) of the last change at or before ``instant``; (0, 0) if none."""
        index = bisect.bisect_right(self._times, instant)
        if index == 0:
            return 0, 0
        change = self._changes[index - 1]
        return change[3], change[4]


@dataclass
class PatientState:
    """Membership per facility and take-home approval, answerable at any instant."""

    membership: dict[str, _StateLine] = field(default_factory=lambda: defaultdict(_StateLine))
    take_home: _StateLine = field(default_factory=_StateLine)
    communes: list[tuple[datetime, str]] = field(default_factory=list)

    @classmethod
    def of(cls, facts: Sequence[PatientFact]) -> PatientState:
        state = cls()
        for fact in facts:
            kind, at, eid = fact.event_type, fact.occurred_at, fact.event_id
            if kind == "patient.enrolled":
                state.membership[fact.facility_id].add(at, 1, eid)
                state.communes.append((at, fact.residence_commune))
            elif kind == "patient.transferred":
                state.membership[fact.facility_id].add(at, -1, eid)
                state.membership[fact.to_facility_id].add(at, 1, eid)
            elif kind == "patient.discharged":
                state.membership[fact.facility_id].add(at, -1, eid)
                state.take_home.add(at, -1, eid)
            elif kind == "patient.take_home_approved":
                state.take_home.add(at, 1, eid, fact.max_days)
            elif kind == "patient.take_home_revoked":
                state.take_home.add(at, -1, eid)
        for line in state.membership.values():
            line.freeze()
        state.take_home.freeze()
        state.communes.sort()
        return state

    def active_at(self, facility_id: str, instant: datetime) -> bool:
        line = self.membership.get(facility_id)
        return line is not None and line.at(instant)[0] == 1

    def known_commune(self, instant: datetime) -> str | None:
        """Residence commune from the latest enrolment by then (else the first one known;
        None when the patient was never enrolled)."""
        known = [commune for at, commune in self.communes if at <= instant and commune]
        if known:
            return known[-1]
        later = [commune for _, commune in self.communes if commune]
        return later[0] if later else None


def patient_conditions(
    facts: Sequence[PatientFact],
    parents: Mapping[str, str],
    settings: AlertSettings,
    clock: datetime,
    acknowledged: Mapping[str, datetime] | None = None,
    *,
    live_from: Mapping[str, date] | None = None,
) -> list[Condition]:
    """Every dispensing-control and commune-notification condition of one patient.

    ``parents`` maps a dispensing point to the treatment facility its patients are enrolled
    at; ``clock`` is T (or now, live) for escalation; ``acknowledged`` maps alert_id to its
    acknowledgement, which stops escalation; ``live_from`` maps a facility to the first
    local day it sent events (what happened there before is history: no notice).
    """
    ordered = sorted(facts, key=lambda f: (f.occurred_at, f.event_id))
    state = PatientState.of(ordered)
    doses = [fact for fact in ordered if fact.event_type == "dose.dispensed"]
    found = _double_dosing(doses)
    found += _take_home_violations(doses, state, settings)
    found += _inactive_dosing(doses, state, parents)
    found += _commune_notifications(
        ordered, state, settings, clock, acknowledged or {}, live_from or {}
    )
    return found


def _double_dosing(doses: Sequence[PatientFact]) -> list[Condition]:
    by_day: dict[date, list[PatientFact]] = defaultdict(list)
    for dose in doses:
        by_day[dose.local_date].append(dose)
    handouts = [d for d in doses if d.mode == "take_home" and d.take_home_days > 1]
    found = []
    for day, todays in sorted(by_day.items()):
        covering = [
            h
            for h in handouts
            if h.local_date < day <= h.local_date + timedelta(days=h.take_home_days - 1)
        ]
        if len(todays) < 2 and not covering:
            continue
        offending = todays[0] if covering else todays[1]
        patient = offending.patient_ref
        where = sorted({d.facility_id for d in todays})
        if covering:
            first = covering[0]
            until = first.local_date + timedelta(days=first.take_home_days - 1)
            why = (
                f"dosed at {offending.facility_id} on {local_day(day)} while a "
                f"{first.take_home_days}-day take-home from {first.facility_id} "
                f"on {local_day(first.local_date)} covers it"
            )
            why_vi = (
                f"được cấp thuốc tại {offending.facility_id} ngày {local_day(day)} "
                f"trong khi còn thuốc mang về {first.take_home_days} ngày "
                f"cấp tại {first.facility_id} ngày {local_day(first.local_date)}"
            )
            extra: dict[str, Any] = {
                "covered_by": first.event_id,
                "covered_until": until.isoformat(),
            }
        else:
            why = f"dosed {len(todays)} times on {local_day(day)} at {', '.join(where)}"
            why_vi = (
                f"được cấp thuốc {len(todays)} lần ngày {local_day(day)} tại {', '.join(where)}"
            )
            extra = {}
        found.append(
            Condition(
                kind="double_dosing",
                severity="critical",
                facility_id=offending.facility_id,
                id_facility=CROSS_FACILITY,
                subject=patient,
                occurrence=day.isoformat(),
                raised_at=offending.occurred_at,
                message=f"Patient {patient} {why}",
                message_vi=f"Bệnh nhân {patient} {why_vi}",
                details={
                    "date": day.isoformat(),
                    "doses": len(todays),
                    "facilities": where,
                    "dose_event_ids": [d.event_id for d in todays],
                    **extra,
                },
            )
        )
    return found


def _take_home_violations(
    doses: Sequence[PatientFact], state: PatientState, settings: AlertSettings
) -> list[Condition]:
    found = []
    policy = settings.take_home_policy_max_days
    for dose in doses:
        if dose.mode != "take_home":
            continue
        approved, max_days = state.take_home.at(dose.occurred_at)
        days = dose.take_home_days
        problems: list[tuple[str, str, str]] = []
        if approved != 1:
            problems.append(("no_approval", "without a current approval", "khi chưa được duyệt"))
        elif days > max_days:
            problems.append(
                (
                    "beyond_approval",
                    f"beyond the approved {max_days} days",
                    f"vượt {max_days} ngày được duyệt",
                )
            )
        if days > policy:
            problems.append(
                (
                    "beyond_policy",
                    f"beyond the policy maximum of {policy} days",
                    f"vượt mức tối đa {policy} ngày",
                )
            )
        if not problems:
            continue
        found.append(
            Condition(
                kind="take_home_violation",
                severity="critical" if approved != 1 else "warning",
                facility_id=dose.facility_id,
                subject=dose.patient_ref,
                occurrence=dose.event_id,
                raised_at=dose.occurred_at,
                message=(
                    f"Take-home of {days} days for patient {dose.patient_ref} at "
                    f"{local_time(dose.occurred_at)} " + "; ".join(p[1] for p in problems)
                ),
                message_vi=(
                    f"Cấp thuốc mang về {days} ngày cho bệnh nhân {dose.patient_ref} lúc "
                    f"{local_time(dose.occurred_at)} " + "; ".join(p[2] for p in problems)
                ),
                details={
                    "event_id": dose.event_id,
                    "take_home_days": days,
                    "approved_max_days": max_days if approved == 1 else None,
                    "policy_max_days": policy,
                    "problems": [p[0] for p in problems],
                },
            )
        )
    return found


def _inactive_dosing(
    doses: Sequence[PatientFact], state: PatientState, parents: Mapping[str, str]
) -> list[Condition]:
    """One alert per run of doses at a facility while the patient is not active there (nor at
    the treatment facility a dispensing point belongs to); a valid dose ends the run."""
    found = []
    runs: dict[str, list[PatientFact]] = {}

    def close(facility_id: str) -> None:
        run = runs.pop(facility_id, None)
        if not run:
            return
        first, last = run[0], run[-1]
        patient = first.patient_ref
        found.append(
            Condition(
                kind="inactive_patient_dosed",
                severity="warning",
                facility_id=facility_id,
                subject=patient,
                occurrence=first.event_id,
                raised_at=first.occurred_at,
                message=(
                    f"Patient {patient} dosed {len(run)} time(s) at {facility_id} from "
                    f"{local_time(first.occurred_at)} while not active there"
                ),
                message_vi=(
                    f"Bệnh nhân {patient} được cấp thuốc {len(run)} lần tại {facility_id} từ "
                    f"{local_time(first.occurred_at)} khi không đang điều trị tại đây"
                ),
                details={"doses": len(run), "last_dose_at": last.occurred_at.isoformat()},
            )
        )

    for dose in doses:
        facility = dose.facility_id
        parent = parents.get(facility)
        active = state.active_at(facility, dose.occurred_at) or (
            parent is not None and state.active_at(parent, dose.occurred_at)
        )
        if active:
            close(facility)
        else:
            runs.setdefault(facility, []).append(dose)
    for facility in sorted(runs):
        close(facility)
    return found


def is_history(fact: PatientFact, live_from: Mapping[str, date]) -> bool:
    """Whether an event happened before its facility's ``live_from`` (CONTRACT §2): it
    counts in every report but raises no notice (the commune was told long ago)."""
    start = live_from.get(fact.facility_id)
    return start is not None and fact.local_date < start


def _trigger(fact: PatientFact) -> tuple[str, str, str] | None:
    """What a commune must be told of this event: (notice code, English, Vietnamese), or None.
    The codes are those of a letter to the commune (``NOTICES``)."""
    if fact.event_type == "patient.enrolled":
        return "enrolled", "started treatment", "bắt đầu điều trị"
    if fact.event_type == "patient.violation":
        return "violation", f"violated rules ({fact.reason})", f"vi phạm ({fact.reason})"
    if fact.event_type == "patient.discharged" and fact.outcome in NOTIFIED_OUTCOMES:
        if fact.outcome == "self_terminated":
            return "self_terminated", "self-terminated treatment", "tự ý chấm dứt điều trị"
        return "completed", "completed treatment", "hoàn thành điều trị"
    if fact.event_type == "test.performed" and fact.purpose in NOTIFIED_PURPOSES:
        positive = fact.positive
        if positive:
            english, vietnamese = PURPOSE_LABELS[fact.purpose]
            found = ", ".join(positive)
            return (
                "positive_test",
                f"tested positive for {found} ({english})",
                f"xét nghiệm dương tính với {found} ({vietnamese})",
            )
    return None


def _who(fact: PatientFact) -> tuple[str, str]:
    """The person an event is about, as a notice names them (never more than the reference)."""
    if fact.event_type != "test.performed":
        return f"patient {fact.patient_ref}", f"bệnh nhân {fact.patient_ref}"
    if fact.patient_ref:
        return f"person {fact.patient_ref}", f"người có mã {fact.patient_ref}"
    return "a person tested without a reference", "một người được xét nghiệm (không có mã)"


def notice_subject(fact: PatientFact) -> str:
    """A notice's subject: the patient_ref, or for a test of nobody known ``test/<event_id>``."""
    return fact.patient_ref or f"{ANONYMOUS_TEST}{fact.event_id}"


def _commune_notifications(
    ordered: Sequence[PatientFact],
    state: PatientState,
    settings: AlertSettings,
    clock: datetime,
    acknowledged: Mapping[str, datetime],
    live_from: Mapping[str, date],
) -> list[Condition]:
    found = []
    escalate_after = timedelta(days=settings.commune_escalation_days)
    for fact in ordered:
        trigger = _trigger(fact)
        if trigger is None or is_history(fact, live_from):
            continue
        commune = fact.residence_commune or state.known_commune(fact.occurred_at)
        if commune is None and fact.event_type == "test.performed":
            found.append(_commune_unknown(fact, trigger))
            continue
        commune = commune or "unknown"
        (notice, trigger_en, trigger_vi), (who, who_vi) = trigger, _who(fact)
        condition = Condition(
            kind="commune_notification",
            severity="info",
            **_about(fact),
            message=(
                f"Notify commune {commune}: {who} {trigger_en} at "
                f"{fact.facility_id} on {local_time(fact.occurred_at)}"
            ),
            message_vi=(
                f"Thông báo UBND xã {commune}: {who_vi} {trigger_vi} tại "
                f"{fact.facility_id} lúc {local_time(fact.occurred_at)}"
            ),
            details={
                "commune": commune,
                "trigger": fact.event_type,
                "notice": notice,
                "event_id": fact.event_id,
                "escalate_after_days": settings.commune_escalation_days,
                **({"reason": fact.reason} if notice == "violation" else {}),
                **_test_details(fact),
            },
        )
        acked = acknowledged.get(condition.alert_id)
        if (acked is None or acked > clock) and clock - fact.occurred_at > escalate_after:
            condition = _escalated(condition)
        found.append(condition)
    return found


def _about(fact: PatientFact) -> dict[str, Any]:
    """What identifies a notice (or its missing commune): the event, where and when."""
    return {
        "facility_id": fact.facility_id,
        "subject": notice_subject(fact),
        "occurrence": fact.event_id,
        "raised_at": fact.occurred_at,
    }


def _test_details(fact: PatientFact) -> dict[str, Any]:
    if fact.event_type != "test.performed":
        return {}
    return {"purpose": fact.purpose, "positive": fact.positive, "item": fact.item}


def _commune_unknown(fact: PatientFact, trigger: tuple[str, str, str]) -> Condition:
    """A positive test whose commune nobody knows: no event field, no enrolment. The law's
    notice cannot be sent, so a person must find out where the tested person lives."""
    (who, who_vi), (_, trigger_en, trigger_vi) = _who(fact), trigger
    return Condition(
        kind="commune_unknown",
        severity="warning",
        **_about(fact),
        message=(
            f"{who.capitalize()} {trigger_en} at {fact.facility_id} on "
            f"{local_time(fact.occurred_at)}: commune of residence unknown, "
            "no commune can be notified"
        ),
        message_vi=(
            f"{who_vi.capitalize()} {trigger_vi} tại {fact.facility_id} lúc "
            f"{local_time(fact.occurred_at)}: không rõ xã cư trú, chưa thể thông báo UBND xã"
        ),
        details={"trigger": fact.event_type, "event_id": fact.event_id, **_test_details(fact)},
    )


def anonymous_test_conditions(
    tests: Sequence[PatientFact],
    settings: AlertSettings,
    clock: datetime,
    acknowledged: Mapping[str, datetime] | None = None,
    *,
    live_from: Mapping[str, date] | None = None,
) -> list[Condition]:
    """Notices (or commune_unknown) for tests of no patient_ref: each stands alone, and only
    the test's own ``residence_commune`` can say where the person lives."""
    ordered = sorted(tests, key=lambda f: (f.occurred_at, f.event_id))
    return _commune_notifications(
        ordered, PatientState(), settings, clock, acknowledged or {}, live_from or {}
    )


def escalation(message: str, message_vi: str, days: float) -> dict[str, Any]:
    """What escalating an unacknowledged commune notification changes, for a condition
    judged afresh and for a stored alert alike."""
    return {
        "severity": "warning",
        "escalated": True,
        "message": f"{message} — not acknowledged after {days:g} days",
        "message_vi": f"{message_vi} — chưa xác nhận sau {days:g} ngày",
    }


def _escalated(condition: Condition) -> Condition:
    days = condition.details["escalate_after_days"]
    return replace(condition, **escalation(condition.message, condition.message_vi, days))
