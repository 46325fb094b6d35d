"""The mutable state of one simulated run and how it emits events: the send clock, the
event ids drawn from their own random stream, and the books (patients on treatment, stock
lines) that ``producers.simulator.supplies`` and ``producers.simulator.generator`` act on.

Local time is Asia/Ho_Chi_Minh (``schemas.calendar.LOCAL_TZ``), which has had no daylight
saving since 1975, so a local day is exactly 86,400 s.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from producers.simulator.province import BUPRENORPHINE, METHADONE, Facility, Patient, Province, Unit
from schemas.calendar import LOCAL_TZ

HOUR = 3600
DAY = 86400
_UUID_MASK = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID_BITS = (0x4 << 76) | (0x2 << 62)


@dataclass(frozen=True, slots=True)
class SimulatedEvent:
    """One contract event and the moment the facility's system sends it (aware datetime)."""

    emit_at: datetime
    event: dict[str, Any]


@dataclass(frozen=True)
class Behaviour:
    """How often things happen; per-unit rates are per day at scale 1 and grow with scale."""

    miss_rate: float = 0.03
    full_take_home_share: float = 0.8
    enrol_per_unit_day: float = 0.45
    discharge_per_unit_day: float = 0.35
    transfer_per_unit_day: float = 0.03
    violation_per_unit_day: float = 0.1
    approve_per_unit_day: float = 0.12
    revoke_per_unit_day: float = 0.02
    detox_enrol_per_unit_day: float = 0.03
    detox_discharge_per_unit_day: float = 0.015
    monitoring_share: float = 0.03
    positive_test_violation: float = 0.25
    determination_per_station_day: float = 0.15
    screening_per_station_day: float = 0.25
    spill_chance: float = 0.02
    breakage_chance: float = 0.003
    kit_loss_chance: float = 0.004
    count_discrepancy_chance: float = 0.2
    delivery_delay_chance: float = 0.1
    cover_days: tuple[float, float] = (30.0, 36.0)
    opening_days: tuple[float, float] = (21.0, 35.0)


@cache
def _clock() -> tuple[str, ...]:
    """``HH:MM:SS`` for every second of a day: formatting is the generator's hottest path."""
    return tuple(f"{s // HOUR:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY))


def poisson(rng: random.Random, lam: float) -> int:
    """Event counts per day; normal approximation once the rate is large (scale 30)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class TreatedPatient:
    """Mutable treatment state of one patient during a run."""

    __slots__ = (
        "commune",
        "covered_until",
        "dose_mg",
        "dosing_at",
        "enrolled_at",
        "item",
        "next_handout",
        "protected",
        "ref",
        "start_day",
        "take_home_max",
        "units",
    )

    def __init__(
        self,
        ref: str,
        enrolled_at: str,
        dosing_at: str,
        item: str,
        dose_mg: int,
        mg_per_unit: float,
        commune: str,
        start_day: int,
    ) -> None:
        self.ref = ref
        self.enrolled_at = enrolled_at
        self.dosing_at = dosing_at
        self.item = item
        self.dose_mg = dose_mg
        self.units = dose_mg / mg_per_unit
        self.commune = commune
        self.start_day = start_day
        self.take_home_max: int | None = None
        self.next_handout = 0
        self.covered_until = -1
        self.protected = False


class StockLine:
    """What the simulator believes one facility holds of one item (mirrors contract §3)."""

    __slots__ = ("daily_use", "floor", "item", "on_hand", "used_today")

    def __init__(self, item: str, daily_use: float, floor: float) -> None:
        self.item = item
        self.daily_use = daily_use
        self.floor = floor
        self.on_hand = 0.0
        self.used_today = 0.0


Entry = tuple[int, int, int, dict[str, Any]]


class World:
    """All mutable state of one run, and how an event is emitted into the current local day."""

    def __init__(self, province: Province, start: date, seed: int, behaviour: Behaviour) -> None:
        self.province = province
        self.behaviour = behaviour
        self.scale = province.scale
        self.seed = seed
        self.start = start
        self.rng = random.Random(f"ostwatch-sim|{seed}|{start.isoformat()}")
        # A stream of its own for the register's past dates, so the run itself stays the same.
        self.history = random.Random(f"ostwatch-history|{seed}|{start.isoformat()}")
        self.ids = random.Random(f"ostwatch-ids|{seed}|{start.isoformat()}")
        self.origin = datetime(start.year, start.month, start.day, tzinfo=LOCAL_TZ)
        self.origin_epoch = int(self.origin.timestamp())
        self.clock = _clock()
        self.mg_per_unit = {i.item: i.mg_per_unit or 1.0 for i in province.items}
        self.substances = {i.item: i.substances for i in province.items}
        self.facilities: dict[str, Facility] = {f.facility_id: f for f in province.facilities}
        self.unit_of: dict[str, Unit] = {}
        for unit in province.units:
            for fid in (unit.unit_id, unit.treatment_facility_id, *unit.dispensing_point_ids):
                self.unit_of[fid] = unit
            for fid in unit.commune_station_ids:
                self.unit_of[fid] = unit
        plants = province.plants
        self.late = {plants.late_sync_facility} if plants.late_sync_facility else set()
        self.starved = plants.starved_dispensing_point
        self.late_reporter = plants.late_report_unit
        self.victim = province.double_dose_patient
        self.serials: dict[str, int] = {}
        for patient in province.patients:
            self.serials[patient.enrolled_facility_id] = (
                self.serials.get(patient.enrolled_facility_id, 0) + 1
            )
        self.on_treatment: dict[str, TreatedPatient] = {}
        self.roster: dict[str, dict[str, TreatedPatient]] = {
            u.treatment_facility_id: {} for u in province.units
        }
        self.detox: dict[str, dict[str, str]] = {u.unit_id: {} for u in province.units}
        self.stock: dict[str, dict[str, StockLine]] = {}
        self.delivery_weekday: dict[str, int] = {}
        self.delayed: set[str] = set()
        self.supervision: dict[int, dict[date, list[tuple[str, str]]]] = {}
        self.reports: dict[tuple[int, int], dict[int, list[tuple[str, str, str]]]] = {}
        # per-day context
        self.out: list[Entry] = []
        self.seq = 0
        self.day_index = 0
        self.day_epoch = self.origin_epoch
        self.prefix = ""
        self.offset = ""
        self.busy: set[str] = set()

    # ---- emission -------------------------------------------------------------------------

    def emit(
        self,
        facility_id: str,
        sec: int,
        event_type: str,
        fields: dict[str, Any],
        *,
        past: tuple[int, int] | None = None,
    ) -> None:
        """Queue one event that happened ``sec`` seconds into the current local day, or, with
        ``past`` = (days back, second of that day), on an earlier day and sent at ``sec``."""
        r = (self.ids.getrandbits(128) & _UUID_MASK) | _UUID_BITS
        h = f"{r:032x}"
        prefix, occurred = self.prefix, self.day_epoch + sec
        clock = self.clock[sec]
        if past is not None:
            days_back, second = past
            prefix = f"{self.start + timedelta(days=self.day_index - days_back)}T"
            occurred, clock = self.day_epoch - days_back * DAY + second, self.clock[second]
        event: dict[str, Any] = {
            "event_id": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": f"{prefix}{clock}{self.offset}",
            "facility_id": facility_id,
        }
        event.update(fields)
        emit = self.day_epoch + sec
        if facility_id in self.late:
            emit = self.day_epoch + DAY + 12 * HOUR + sec // 20
        self.seq += 1
        self.out.append((emit, occurred, self.seq, event))

    def to_event(self, entry: Entry) -> SimulatedEvent:
        """Attach the aware send time to a popped heap entry."""
        return SimulatedEvent(
            self.origin + timedelta(seconds=entry[0] - self.origin_epoch), entry[3]
        )

    def secs(self, first_hour: float, last_hour: float) -> int:
        """A uniform time of day between two local hours."""
        return self.rng.randrange(int(first_hour * HOUR), int(last_hour * HOUR))

    def dose_time(self) -> int:
        """The morning burst: 90 % in 06:00–10:00 peaking at 07:30, stragglers until 16:00."""
        rng = self.rng
        if rng.random() < 0.9:
            return int(rng.triangular(6 * HOUR, 10 * HOUR, 7.5 * HOUR))
        return rng.randrange(10 * HOUR, 16 * HOUR)

    def rate(self, per_day: float) -> int:
        """How many times a per-unit daily rate fires today, at this province's scale."""
        return poisson(self.rng, per_day * self.scale)

    def stocks(self) -> Iterator[StockLine]:
        """Every stock line, in a stable order."""
        for lines in self.stock.values():
            yield from lines.values()

    def admit(self, patient: Patient, start_day: int) -> TreatedPatient:
        """Put a medication patient on the books of the run."""
        if patient.dosing_facility_id is None or patient.dose_mg is None:
            raise ValueError(f"{patient.patient_ref} has no dosing site or dose")
        item = METHADONE if patient.programme == "methadone" else BUPRENORPHINE
        state = TreatedPatient(
            patient.patient_ref,
            patient.enrolled_facility_id,
            patient.dosing_facility_id,
            item,
            patient.dose_mg,
            self.mg_per_unit[item],
            patient.residence_commune,
            start_day,
        )
        self.on_treatment[state.ref] = state
        self.roster[state.enrolled_at][state.ref] = state
        return state
