"""Turn a Province into a stream of contract §1 events, day by day, in the order they are sent.

Pure and deterministic: the same province, seed, start and length give the same events with
the same ids, and a longer run starts with exactly the events of a shorter one. Nothing here
touches Kafka; a feeder publishes what this yields.

Baseline: the facility's existing register is sent on the first simulated day between 00:00
and 04:45 local (a migration), each enrolment dated on its own day in the years before: those
are history, before every facility's ``live_from`` (the first simulated day, see
``registry_files``), so they count in reports but notify no commune. Take-home approvals follow
minutes later, opening stock counts at 05:00–06:00, before the first dose at 06:00.

Local time is Asia/Ho_Chi_Minh, which has had no daylight saving since 1975, so a local day is
exactly 86,400 s; ``occurred_at`` is written with the zone's offset (``+07:00``).

Here: the day's order of things, the patients (lifecycle, doses, tests) and the reports and
supervision visits. The run's state and how an event is emitted are in ``world``, the stock
flows (opening stock, losses, deliveries, counts) in ``supplies``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

from producers.simulator.province import (
    KIT_MORPHINE,
    KIT_MULTI,
    Patient,
    Province,
    Unit,
    random_regimen,
)
from producers.simulator.supplies import MONITORING_KIT_SHARE, Supplies
from producers.simulator.world import (
    DAY,
    HOUR,
    Behaviour,
    Entry,
    SimulatedEvent,
    TreatedPatient,
    poisson,
)
from schemas.calendar import LOCAL_TZ, periods_due_in

_SCREENING_KIT_SHARE = {KIT_MORPHINE: 0.6, KIT_MULTI: 0.4}
_POSITIVE = {
    "treatment_monitoring": {
        "opiates": 0.12,
        "methamphetamine": 0.07,
        "mdma": 0.01,
        "cannabis": 0.02,
    },
    "addiction_determination": {
        "opiates": 0.45,
        "methamphetamine": 0.55,
        "mdma": 0.08,
        "cannabis": 0.1,
    },
    "screening": {"opiates": 0.03, "methamphetamine": 0.04, "mdma": 0.005, "cannabis": 0.01},
}
_INVALID = 0.004
_DISCHARGE_OUTCOMES = (
    ("self_terminated", 45),
    ("completed", 25),
    ("incarcerated", 10),
    ("compulsory_rehab", 8),
    ("deceased", 5),
    ("other", 7),
)
_DETOX_OUTCOMES = (("completed", 60), ("self_terminated", 30), ("other", 10))
# How long before the first simulated day a patient of the opening register was enrolled.
_REGISTER_AGE_DAYS = (14, 3 * 365)
_VIOLATIONS = (("missed_doses", 45), ("behaviour", 25), ("diversion", 15), ("other", 15))


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    """Pick by integer weights (outcomes, violation reasons)."""
    total = sum(weight for _, weight in choices)
    pick = rng.random() * total
    for value, weight in choices:
        pick -= weight
        if pick < 0:
            return value
    return choices[-1][0]


def _share(rng: random.Random, shares: dict[str, float]) -> str:
    """Pick by shares that add up to 1 (which kit a test uses)."""
    pick = rng.random()
    for value, share in shares.items():
        pick -= share
        if pick < 0:
            return value
    return next(reversed(shares))


def _observed(p: TreatedPatient) -> bool:
    """Only observed patients can be transferred or newly approved for take-home."""
    return p.take_home_max is None


def _take_home(p: TreatedPatient) -> bool:
    """Only take-home patients can have the approval revoked."""
    return p.take_home_max is not None


class _Simulation(Supplies):
    """One run: ``day(d)`` returns that local day's events as heap entries."""

    def day(self, d: int) -> list[Entry]:
        """Simulate local day ``d`` (0-based) and hand back its events, unsorted."""
        today = self.start + timedelta(days=d)
        self.day_index = d
        self.day_epoch = self.origin_epoch + d * DAY
        midnight = datetime(today.year, today.month, today.day, tzinfo=LOCAL_TZ)
        self.prefix = f"{today.isoformat()}T"
        self.offset = midnight.isoformat()[-6:]
        self.out = []
        self.busy = set()
        if d == 0:
            self.baseline()
        weekday = today.weekday() < 5
        for unit in self.province.units:
            self.lifecycle(unit)
        self.doses()
        if weekday:
            self.tests()
        self.adjustments()
        self.deliveries(today)
        if (today + timedelta(days=1)).day == 1:
            self.counts(16.5, 17.5, discrepancies=True)
        for stock in self.stocks():
            stock.daily_use = 0.85 * stock.daily_use + 0.15 * stock.used_today
            stock.used_today = 0.0
        self.submit_reports(today)
        self.supervise(today)
        return self.out

    # ---- baseline ---------------------------------------------------------------------------

    def baseline(self) -> None:
        """Existing register and opening stock, before the first dose of day 0."""
        rng = self.rng
        for patient in self.province.patients:
            sec = self.secs(0, 4.75)
            days_back = self.history.randint(*_REGISTER_AGE_DAYS)
            enrolled = (days_back, self.history.randrange(7 * HOUR, 16 * HOUR))
            self.emit(
                patient.enrolled_facility_id,
                sec,
                "patient.enrolled",
                {
                    "patient_ref": patient.patient_ref,
                    "programme": patient.programme,
                    "residence_commune": patient.residence_commune,
                },
                past=enrolled,
            )
            if patient.dosing_facility_id is None or patient.dose_mg is None:
                self.detox[patient.unit_id][patient.patient_ref] = patient.enrolled_facility_id
                continue
            state = self.admit(patient, start_day=0)
            if patient.take_home_max_days is not None:
                state.take_home_max = patient.take_home_max_days
                state.next_handout = rng.randrange(patient.take_home_max_days)
                self.emit(
                    patient.enrolled_facility_id,
                    sec + rng.randrange(60, 900),
                    "patient.take_home_approved",
                    {"patient_ref": patient.patient_ref, "max_days": patient.take_home_max_days},
                )
        if self.victim is not None:
            self.on_treatment[self.victim].protected = True
        self.open_stock()
        self.counts(5, 6, discrepancies=False)

    def lifecycle(self, unit: Unit) -> None:
        """Discharges, transfers, violations, take-home changes and new patients of one unit."""
        b = self.behaviour
        roster = self.roster[unit.treatment_facility_id]
        candidates = list(roster.values())
        for _ in range(self.rate(b.discharge_per_unit_day)):
            if (p := self.pick(candidates)) is not None:
                self.discharge(p, _weighted(self.rng, _DISCHARGE_OUTCOMES))
        for _ in range(self.rate(b.transfer_per_unit_day)):
            if (p := self.pick(candidates, _observed)) is not None:
                self.transfer(p, unit)
        for _ in range(self.rate(b.violation_per_unit_day)):
            if (p := self.pick(candidates)) is not None:
                self.violation(p, _weighted(self.rng, _VIOLATIONS))
        for _ in range(self.rate(b.approve_per_unit_day)):
            if (p := self.pick(candidates, _observed)) is not None:
                self.approve(p)
        for _ in range(self.rate(b.revoke_per_unit_day)):
            if (p := self.pick(candidates, _take_home)) is not None:
                self.revoke(p, self.secs(9, 16))
        for _ in range(self.rate(b.enrol_per_unit_day)):
            self.enrol(unit)
        if unit.commune_station_ids:
            self.detox_lifecycle(unit)

    def pick(
        self,
        candidates: list[TreatedPatient],
        wanted: Callable[[TreatedPatient], bool] = lambda _: True,
    ) -> TreatedPatient | None:
        """A random patient that fits and nobody touched today (a few tries, then skip)."""
        for _ in range(8):
            if not candidates:
                return None
            p = self.rng.choice(candidates)
            usable = not p.protected and p.ref not in self.busy and p.ref in self.on_treatment
            if usable and wanted(p):
                self.busy.add(p.ref)
                return p
        return None

    def discharge(self, p: TreatedPatient, outcome: str) -> None:
        """Leave treatment; the patient gets no dose on the discharge day."""
        self.emit(
            p.enrolled_at,
            self.secs(9, 16),
            "patient.discharged",
            {"patient_ref": p.ref, "outcome": outcome},
        )
        del self.on_treatment[p.ref]
        del self.roster[p.enrolled_at][p.ref]

    def transfer(self, p: TreatedPatient, unit: Unit) -> None:
        """Move an observed patient to another unit's facility; first dose there tomorrow."""
        others = [u for u in self.province.units if u.unit_id != unit.unit_id]
        target = self.rng.choice(others).treatment_facility_id
        self.emit(
            p.enrolled_at,
            self.secs(9, 15),
            "patient.transferred",
            {"patient_ref": p.ref, "to_facility_id": target},
        )
        del self.roster[p.enrolled_at][p.ref]
        p.enrolled_at = p.dosing_at = target
        p.start_day = self.day_index + 1
        self.roster[target][p.ref] = p

    def violation(self, p: TreatedPatient, reason: str, sec: int | None = None) -> None:
        """A rule violation; diversion or missed doses may cost the take-home privilege."""
        sec = self.secs(10, 16) if sec is None else sec
        self.emit(p.enrolled_at, sec, "patient.violation", {"patient_ref": p.ref, "reason": reason})
        if (
            p.take_home_max is not None
            and reason in ("diversion", "missed_doses")
            and self.rng.random() < 0.5
        ):
            self.revoke(p, min(sec + self.rng.randrange(300, 3600), DAY - 1))

    def approve(self, p: TreatedPatient) -> None:
        """Stable patient earns take-home doses, first handout tomorrow."""
        max_days = self.rng.randint(2, 7)
        self.emit(
            p.enrolled_at,
            self.secs(9, 16),
            "patient.take_home_approved",
            {"patient_ref": p.ref, "max_days": max_days},
        )
        p.take_home_max = max_days
        p.next_handout = self.day_index + 1

    def revoke(self, p: TreatedPatient, sec: int) -> None:
        """Back to observed dosing once the doses already handed out are used up."""
        self.emit(p.enrolled_at, sec, "patient.take_home_revoked", {"patient_ref": p.ref})
        p.take_home_max = None

    def enrol(self, unit: Unit) -> None:
        """A new patient at the unit's treatment facility; dosing starts the next day."""
        rng = self.rng
        tf = unit.treatment_facility_id
        programme, dose = random_regimen(rng)
        dosing = tf
        if programme == "methadone" and unit.dispensing_point_ids and rng.random() < 0.5:
            dosing = rng.choice(unit.dispensing_point_ids)
        patient = Patient(
            patient_ref=self.new_ref(tf),
            unit_id=unit.unit_id,
            enrolled_facility_id=tf,
            dosing_facility_id=dosing,
            programme=programme,
            dose_mg=dose,
            take_home_max_days=None,
            residence_commune=rng.choice(unit.communes),
        )
        self.emit(
            tf,
            self.secs(8, 11),
            "patient.enrolled",
            {
                "patient_ref": patient.patient_ref,
                "programme": programme,
                "residence_commune": patient.residence_commune,
            },
        )
        self.busy.add(patient.patient_ref)
        self.admit(patient, start_day=self.day_index + 1)

    def new_ref(self, site_id: str) -> str:
        """patient_ref of the next clinic number at a site, continuing the province's serials."""
        serial = self.serials.get(site_id, 0) + 1
        self.serials[site_id] = serial
        return self.province.pseudonym(f"{site_id}/{serial:05d}")

    def detox_lifecycle(self, unit: Unit) -> None:
        """Voluntary community detox: people join and leave at commune health stations."""
        b = self.behaviour
        rng = self.rng
        people = self.detox[unit.unit_id]
        for _ in range(self.rate(b.detox_enrol_per_unit_day)):
            k = rng.randrange(len(unit.commune_station_ids))
            chs = unit.commune_station_ids[k]
            ref = self.new_ref(chs)
            self.emit(
                chs,
                self.secs(8, 16),
                "patient.enrolled",
                {
                    "patient_ref": ref,
                    "programme": "community_detox",
                    "residence_commune": unit.communes[k % len(unit.communes)],
                },
            )
            people[ref] = chs
        for _ in range(self.rate(b.detox_discharge_per_unit_day)):
            if not people:
                break
            ref = rng.choice(list(people))
            chs = people.pop(ref)
            self.emit(
                chs,
                self.secs(8, 16),
                "patient.discharged",
                {"patient_ref": ref, "outcome": _weighted(rng, _DETOX_OUTCOMES)},
            )

    # ---- dispensing -------------------------------------------------------------------------

    def doses(self) -> None:
        """Every patient's dose or take-home handout of the day, misses included."""
        d = self.day_index
        rng = self.rng
        b = self.behaviour
        for p in self.on_treatment.values():
            if p.start_day > d:
                continue
            if p.take_home_max is not None:
                if d < p.next_handout or rng.random() < b.miss_rate:
                    continue
                days = p.take_home_max
                if days > 2 and rng.random() >= b.full_take_home_share:
                    days = rng.randint(2, days - 1)
                if self.dispense(p, p.dosing_at, self.dose_time(), days):
                    p.next_handout = d + days
                    p.covered_until = d + days - 1
            elif d > p.covered_until and (p.protected or rng.random() >= b.miss_rate):
                self.dispense(p, p.dosing_at, self.dose_time(), 1)
        plants = self.province.plants
        if self.victim in self.on_treatment and d == plants.double_dose_day:
            victim = self.on_treatment[self.victim]
            self.dispense(
                victim, plants.double_dose_second_facility, self.secs(13, 15), 1, fallback=False
            )

    def dispense(
        self, p: TreatedPatient, facility_id: str, sec: int, days: int, *, fallback: bool = True
    ) -> bool:
        """Dose from the facility's stock; an empty dispensing point sends to its parent."""
        units = p.units * days
        stock = self.stock.get(facility_id, {}).get(p.item)
        if stock is None or stock.on_hand < units:
            parent = self.facilities[facility_id].parent_id
            if not fallback or facility_id == p.enrolled_at or parent is None:
                return False
            return self.dispense(p, parent, sec, days, fallback=False)
        stock.on_hand -= units
        stock.used_today += units
        fields: dict[str, Any] = {"patient_ref": p.ref, "item": p.item, "dose_mg": p.dose_mg}
        if days > 1:
            fields["mode"] = "take_home"
            fields["take_home_days"] = days
        else:
            fields["mode"] = "observed"
        self.emit(facility_id, sec, "dose.dispensed", fields)
        return True

    # ---- tests --------------------------------------------------------------------------------

    def tests(self) -> None:
        """Treatment monitoring at treatment facilities, determination/screening at stations."""
        b = self.behaviour
        rng = self.rng
        for unit in self.province.units:
            tf = unit.treatment_facility_id
            patients = [p for p in self.roster[tf].values() if p.ref not in self.busy]
            count = min(poisson(rng, b.monitoring_share * len(patients)), len(patients))
            for p in rng.sample(patients, count):
                kit = _share(rng, MONITORING_KIT_SHARE)
                sec = self.secs(7, 11)
                positive = self.test(tf, kit, "treatment_monitoring", sec, p.ref)
                if positive and not p.protected and rng.random() < b.positive_test_violation:
                    self.violation(p, "positive_test", sec + rng.randrange(600, 7200))
            for k, chs in enumerate(unit.commune_station_ids):
                # A station tests the residents of its commune (as detox patients, below).
                commune = unit.communes[k % len(unit.communes)]
                for _ in range(self.rate(b.determination_per_station_day)):
                    ref = self.new_ref(f"{chs}/XN")
                    sec = self.secs(8, 16)
                    self.test(chs, KIT_MULTI, "addiction_determination", sec, ref, commune)
                for _ in range(self.rate(b.screening_per_station_day)):
                    kit = _share(rng, _SCREENING_KIT_SHARE)
                    self.test(chs, kit, "screening", self.secs(8, 16), None, commune)

    def test(
        self,
        facility_id: str,
        kit: str,
        purpose: str,
        sec: int,
        ref: str | None,
        commune: str | None = None,
    ) -> bool:
        """Use one kit if there is one; True when any substance came out positive."""
        stock = self.stock[facility_id][kit]
        if stock.on_hand < 1:
            return False
        stock.on_hand -= 1
        stock.used_today += 1
        rng = self.rng
        odds = _POSITIVE[purpose]
        results: dict[str, str] = {}
        for substance in self.substances[kit]:
            r = rng.random()
            results[substance] = (
                "invalid" if r < _INVALID else "positive" if r < odds[substance] else "negative"
            )
        fields: dict[str, Any] = {"item": kit, "purpose": purpose}
        if ref is not None:
            fields["patient_ref"] = ref
        fields["results"] = results
        if commune is not None:
            fields["residence_commune"] = commune
        self.emit(facility_id, sec, "test.performed", fields)
        return "positive" in results.values()

    # ---- reports and supervision -----------------------------------------------------------

    def submit_reports(self, today: date) -> None:
        """Monthly reports for last month, mostly on the 18th–24th; half-yearly in Jan/Jul."""
        schedule = self.reports.get((today.year, today.month))
        if schedule is None:
            schedule = self.report_schedule(today.year, today.month)
            self.reports = {(today.year, today.month): schedule}
        for reporter, report_type, period in schedule.get(today.day, ()):
            self.emit(
                reporter,
                self.secs(8, 16.5),
                "report.submitted",
                {"report_type": report_type, "period": period},
            )

    def report_schedule(self, year: int, month: int) -> dict[int, list[tuple[str, str, str]]]:
        """Who submits what on which day of this month (independent of where the run starts):
        every report whose period ended with last month, whatever its frequency."""
        by_type: dict[str, list[str]] = {}
        for facility in self.province.facilities:
            by_type.setdefault(facility.type, []).append(facility.facility_id)
        plan: list[tuple[str, str, str, tuple[int, int]]] = []
        for deadline in self.province.deadlines:
            for period in periods_due_in(deadline.frequency, year, month):
                for reporter in by_type.get(deadline.reporter_type, []):
                    if deadline.frequency != "monthly":
                        window = (10, min(28, deadline.due_day - 1))
                    elif reporter == self.late_reporter:
                        window = (deadline.due_day + 1, deadline.due_day + 3)
                    elif deadline.due_day > 25:
                        window = (deadline.due_day - 2, deadline.due_day - 1)
                    else:
                        window = (18, 24)
                    plan.append((reporter, deadline.report_type, period, window))
        schedule: dict[int, list[tuple[str, str, str]]] = {}
        for reporter, report_type, when, (low, high) in plan:
            rng = random.Random(f"report|{self.seed}|{reporter}|{report_type}|{when}")
            schedule.setdefault(rng.randint(low, high), []).append((reporter, report_type, when))
        return schedule

    def supervise(self, today: date) -> None:
        """District health centres visit each of their sites 2–3 times a year."""
        visits = self.supervision.get(today.year)
        if visits is None:
            visits = self.supervision_schedule(today.year)
            self.supervision = {today.year: visits}
        for supervisor, facility_id in visits.get(today, ()):
            self.emit(
                facility_id,
                self.secs(8, 16),
                "supervision.visited",
                {"supervisor_id": supervisor},
            )

    def supervision_schedule(self, year: int) -> dict[date, list[tuple[str, str]]]:
        """Visits spread over the year: one weekday in each of 2–3 equal slices of it."""
        first = date(year, 1, 1)
        length = (date(year + 1, 1, 1) - first).days
        schedule: dict[date, list[tuple[str, str]]] = {}
        for facility in self.province.facilities:
            unit = self.unit_of.get(facility.facility_id)
            if facility.type == "psychiatric_hospital":
                supervisor = facility.parent_id
            elif unit is None or unit.unit_id == facility.facility_id:
                continue
            else:
                supervisor = unit.unit_id
            if supervisor is None:
                continue
            rng = random.Random(f"supervision|{self.seed}|{facility.facility_id}|{year}")
            visits = rng.randint(2, 3)
            for k in range(visits):
                day = first + timedelta(
                    days=rng.randrange(k * length // visits, (k + 1) * length // visits)
                )
                while day.weekday() >= 5:
                    day -= timedelta(days=1)
                schedule.setdefault(day, []).append((supervisor, facility.facility_id))
        return schedule


def generate(
    province: Province,
    *,
    start: date,
    days: int,
    seed: int = 0,
    behaviour: Behaviour | None = None,
) -> Iterator[SimulatedEvent]:
    """Yield ``days`` local days of events from ``start``, in the order they are sent.

    Streams one day at a time: a day's events go on a heap keyed by (emit_at, occurred_at,
    sequence) and everything due before the next local midnight is yielded; a late-syncing
    facility's events wait on the heap until their upload the next day. Memory stays at about
    two days of events whatever the run length.
    """
    if isinstance(start, datetime) or not isinstance(start, date):
        raise TypeError("start must be a date (a local calendar day), not a datetime")
    if days < 0:
        raise ValueError("days must be >= 0")
    sim = _Simulation(province, start, seed, behaviour or Behaviour())
    heap: list[Entry] = []
    for d in range(days):
        for entry in sim.day(d):
            heapq.heappush(heap, entry)
        horizon = sim.origin_epoch + (d + 1) * DAY
        while heap and heap[0][0] < horizon:
            yield sim.to_event(heapq.heappop(heap))
    while heap:
        yield sim.to_event(heapq.heappop(heap))
