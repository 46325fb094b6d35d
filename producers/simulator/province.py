"""A synthetic but realistic Bắc Giang: facilities, items, targets, deadlines and patients.

Everything is derived from seed 001's per-unit numbers (``data/bac_giang_targets_2024.csv``)
so the simulated load matches what the province really runs. The model is a frozen dataclass
tree: the generator reads it and keeps its own mutable state, so one province can feed many
runs. Patients are pseudonymous from the start (HMAC over a synthetic clinic number, the way a
facility system would compute it); no name, ID number or address exists anywhere in here.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import random
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from schemas.models import Programme
from schemas.reference import DeadlineRow as Deadline
from schemas.reference import FacilityType
from schemas.reference import TargetRow as Target

PROVINCE_NAME = "Bắc Giang"
CAPITAL_DISTRICT = "thành phố Bắc Giang"
TARGET_YEAR = 2024
# The totals seed 001 prints under its 2024 targets (routine, take-home, community detox). They
# are not in the table of rows because they are not a unit's numbers; the take-home total (652)
# disagrees with its own rows (636), which the registry load reports (data/README.md).
SEED_PRINTED_TARGET_TOTALS: tuple[int, int, int] = (1450, 652, 150)
TOTAL_FACILITY_ID = "TOTAL"


METHADONE = "MET10"
BUPRENORPHINE = "BUP2"
KIT_MORPHINE = "KIT-MOR"
KIT_MULTI = "KIT-MULTI4"

_METHADONE_SHARE = 0.9
_SHARE_DOSED_AT_TF = 0.5
_UNIT_PREFIX = "TTYT "
_SITE_NOTE = re.compile(r"\s*\((?:[^()]*cơ sở cấp phát tại (?P<commune>xã [^()]+))?[^()]*\)\s*$")


@dataclass(frozen=True)
class Facility:
    """One row of ``facilities.csv``; ``parent_id`` is None at the top of the hierarchy."""

    facility_id: str
    name: str
    type: FacilityType
    parent_id: str | None
    district: str
    province: str = PROVINCE_NAME


@dataclass(frozen=True)
class Item:
    """One row of ``items.csv``; ``substances`` is what a test kit reports (not in the file)."""

    item: str
    name: str
    kind: Literal["medication", "test_kit"]
    unit: str
    mg_per_unit: float | None = None
    substances: tuple[str, ...] = ()


@dataclass(frozen=True)
class Patient:
    """A patient already in treatment when the simulation starts.

    ``enrolled_facility_id`` is where the patient is registered (a treatment facility, or a
    commune health station for community detox); ``dosing_facility_id`` is where the daily dose
    is taken (that treatment facility or one of its dispensing points; None for detox).
    """

    patient_ref: str
    unit_id: str
    enrolled_facility_id: str
    dosing_facility_id: str | None
    programme: Programme
    dose_mg: int | None
    take_home_max_days: int | None
    residence_commune: str


@dataclass(frozen=True)
class Unit:
    """A reporting unit of the seed (the CDC or a district health centre) and its sites."""

    unit_id: str
    name: str
    type: Literal["provincial_cdc", "district_health_centre"]
    district: str
    treatment_facility_id: str
    dispensing_point_ids: tuple[str, ...]
    commune_station_ids: tuple[str, ...]
    communes: tuple[str, ...]
    routine_2023: int
    take_home_2023: int
    community_detox_2023: int


@dataclass(frozen=True)
class PlantConfig:
    """The deliberate problems, chosen by rule and not by seed so checks can rely on them.

    Set a field to None to switch that problem off. Day numbers are 0-based offsets from the
    first simulated day.
    """

    starved_dispensing_point: str | None = "BG-DP-04-1"
    starve_from_day: int = 0
    starve_opening_days: float = 12.0
    double_dose_facility: str | None = "BG-TF-02"
    double_dose_second_facility: str = "BG-DP-01-1"
    double_dose_day: int = 2
    late_sync_facility: str | None = "BG-DP-03-1"
    late_report_unit: str | None = "BG-DHC-05"


@dataclass(frozen=True)
class Province:
    """The whole simulated province; the generator never mutates it."""

    name: str
    seed: int
    scale: float
    units: tuple[Unit, ...]
    facilities: tuple[Facility, ...]
    items: tuple[Item, ...]
    targets: tuple[Target, ...]
    deadlines: tuple[Deadline, ...]
    patients: tuple[Patient, ...]
    plants: PlantConfig
    double_dose_patient: str | None
    planted: tuple[str, ...]
    ref_key: bytes = field(repr=False)
    # The totals row(s) of targets.csv (facility_id TOTAL): what the seed printed, scaled.
    printed_totals: tuple[Target, ...] = ()

    def pseudonym(self, clinic_number: str) -> str:
        """The patient_ref a facility system would send for this clinic number."""
        return pseudonymise(self.ref_key, clinic_number)

    def facility(self, facility_id: str) -> Facility:
        """Look a facility up by id (raises KeyError for an unknown id)."""
        for facility in self.facilities:
            if facility.facility_id == facility_id:
                return facility
        raise KeyError(facility_id)


ITEMS: tuple[Item, ...] = (
    Item(METHADONE, "Methadone 10 mg/ml", "medication", "ml", 10.0),
    Item(BUPRENORPHINE, "Buprenorphine 2 mg", "medication", "tablet", 2.0),
    Item(KIT_MORPHINE, "Que thử Morphin (opiates)", "test_kit", "kit", None, ("opiates",)),
    Item(
        KIT_MULTI,
        "Que thử 4 chất (opiates, methamphetamine, MDMA, cannabis)",
        "test_kit",
        "kit",
        None,
        ("opiates", "methamphetamine", "mdma", "cannabis"),
    ),
)

CDC_ID = "BG-CDC"
DOH_ID = "BG-SYT"
# Seed 001 §III: districts send methadone results to the CDC and voluntary detox results to the
# Department of Health; the psychiatric hospital and the CDC report to the Department of
# Health. Ward stations report to their own district health centre, which one row cannot name.
DEADLINES: tuple[Deadline, ...] = (
    Deadline("methadone_monthly", "monthly", 25, "district_health_centre", CDC_ID),
    Deadline("voluntary_detox_monthly", "monthly", 25, "district_health_centre", DOH_ID),
    Deadline("psychiatric_monthly", "monthly", 25, "psychiatric_hospital", DOH_ID),
    Deadline("cdc_methadone_monthly", "monthly", 27, "provincial_cdc", DOH_ID),
    Deadline("ward_half_yearly", "half_yearly", 31, "commune_health_station"),
)


def pseudonymise(key: bytes, clinic_number: str) -> str:
    """Keyed hash of a clinic number: stable across facilities, useless without the key."""
    return hmac.new(key, clinic_number.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


@dataclass(frozen=True)
class _Row:
    """One CSV row, parsed."""

    unit: str
    unit_type: Literal["provincial_cdc", "district_health_centre"]
    routine_2023: int
    routine_target: int | None
    take_home_2023: int
    take_home_target: int | None
    community_detox_2023: int
    community_detox_target: int | None


def _int_or_none(cell: str) -> int | None:
    """Empty cells stay empty: the seed has no community-detox row for the CDC."""
    cell = cell.strip()
    return int(cell) if cell else None


def _read_rows(targets_csv: Path | None) -> list[_Row]:
    """Read the seed table, from the packaged copy unless a path is given."""
    if targets_csv is None:
        source = resources.files("producers.simulator").joinpath("data/bac_giang_targets_2024.csv")
        text = source.read_text(encoding="utf-8")
    else:
        text = targets_csv.read_text(encoding="utf-8")
    rows: list[_Row] = []
    for raw in csv.DictReader(text.splitlines()):
        unit_type = raw["unit_type"].strip()
        if unit_type not in ("provincial_cdc", "district_health_centre"):
            raise ValueError(f"unexpected unit_type {unit_type!r} in targets CSV")
        rows.append(
            _Row(
                unit=raw["unit"].strip(),
                unit_type="provincial_cdc"
                if unit_type == "provincial_cdc"
                else "district_health_centre",
                routine_2023=_int_or_none(raw["routine_2023"]) or 0,
                routine_target=_int_or_none(raw["routine_target_2024"]),
                take_home_2023=_int_or_none(raw["take_home_2023"]) or 0,
                take_home_target=_int_or_none(raw["take_home_target_2024"]),
                community_detox_2023=_int_or_none(raw["community_detox_2023"]) or 0,
                community_detox_target=_int_or_none(raw["community_detox_target_2024"]),
            )
        )
    if sum(row.unit_type == "provincial_cdc" for row in rows) != 1:
        raise ValueError("targets CSV must have exactly one provincial_cdc row")
    return rows


def _scaled(value: int | None, scale: float) -> int | None:
    """Targets grow with the caseload so a scaled province is judged on comparable numbers."""
    return None if value is None else round(value * scale)


def _district_of(unit_name: str) -> tuple[str, str | None]:
    """District name and, if the seed names one, the commune of an extra dispensing site."""
    name = unit_name.removeprefix(_UNIT_PREFIX)
    match = _SITE_NOTE.search(name)
    if match is None:
        return name, None
    return name[: match.start()].strip(), match.group("commune")


class _Builder:
    """Accumulates facilities and patients while walking the seed's units."""

    def __init__(self, rng: random.Random, ref_key: bytes, scale: float) -> None:
        self.rng = rng
        self.ref_key = ref_key
        self.scale = scale
        self.facilities: list[Facility] = []
        self.patients: list[Patient] = []
        self.serials: dict[str, int] = {}

    def clinic_ref(self, site_id: str) -> str:
        """Next synthetic clinic number at a site, turned into its patient_ref."""
        serial = self.serials.get(site_id, 0) + 1
        self.serials[site_id] = serial
        return pseudonymise(self.ref_key, f"{site_id}/{serial:05d}")

    def unit(self, index: int, row: _Row, all_communes: tuple[str, ...]) -> Unit:
        """Create a unit's facilities (with random site counts) and its existing patients."""
        rng = self.rng
        is_cdc = row.unit_type == "provincial_cdc"
        district, site_commune = (CAPITAL_DISTRICT, None) if is_cdc else _district_of(row.unit)
        unit_id = CDC_ID if is_cdc else f"BG-DHC-{index:02d}"
        unit_name = (
            f"Trung tâm Kiểm soát bệnh tật tỉnh {PROVINCE_NAME}"
            if is_cdc
            else _UNIT_PREFIX + district
        )
        self.facilities.append(Facility(unit_id, unit_name, row.unit_type, None, district))
        tf_id = f"BG-TF-{index:02d}"
        tf_label = f"CDC {PROVINCE_NAME}" if is_cdc else district
        self.facilities.append(
            Facility(
                tf_id,
                f"Cơ sở điều trị Methadone {tf_label}",
                "treatment_facility",
                unit_id,
                district,
            )
        )
        dp_ids: list[str] = []
        for k in range(1, rng.randint(1, 3) + 1):
            dp_id = f"BG-DP-{index:02d}-{k}"
            label = site_commune if (k == 1 and site_commune) else f"số {k} {tf_label}"
            name = f"Cơ sở cấp phát thuốc Methadone {label}"
            self.facilities.append(Facility(dp_id, name, "dispensing_point", tf_id, district))
            dp_ids.append(dp_id)
        chs_ids: list[str] = []
        if is_cdc:
            communes = all_communes
        else:
            communes = tuple(f"BG-C-{index:02d}{k:02d}" for k in range(1, rng.randint(12, 25) + 1))
            for k in range(1, rng.randint(2, 4) + 1):
                chs_id = f"BG-CHS-{index:02d}-{k}"
                name = f"Trạm Y tế xã số {k}, {district}"
                self.facilities.append(
                    Facility(chs_id, name, "commune_health_station", unit_id, district)
                )
                chs_ids.append(chs_id)
        unit = Unit(
            unit_id=unit_id,
            name=unit_name,
            type=row.unit_type,
            district=district,
            treatment_facility_id=tf_id,
            dispensing_point_ids=tuple(dp_ids),
            commune_station_ids=tuple(chs_ids),
            communes=communes,
            routine_2023=row.routine_2023,
            take_home_2023=row.take_home_2023,
            community_detox_2023=row.community_detox_2023,
        )
        self._patients(unit, row)
        return unit

    def _patients(self, unit: Unit, row: _Row) -> None:
        """The unit's 2023 register: routine and take-home patients, community detox people."""
        rng = self.rng
        sites = (unit.treatment_facility_id, *unit.dispensing_point_ids)
        counts = (
            (round(row.routine_2023 * self.scale), False),
            (round(row.take_home_2023 * self.scale), True),
        )
        for count, take_home in counts:
            for _ in range(count):
                programme, dose = random_regimen(rng)
                dosing = sites[0]
                if programme == "methadone" and rng.random() >= _SHARE_DOSED_AT_TF:
                    dosing = rng.choice(sites[1:])
                self.patients.append(
                    Patient(
                        patient_ref=self.clinic_ref(unit.treatment_facility_id),
                        unit_id=unit.unit_id,
                        enrolled_facility_id=unit.treatment_facility_id,
                        dosing_facility_id=dosing,
                        programme=programme,
                        dose_mg=dose,
                        take_home_max_days=rng.randint(2, 7) if take_home else None,
                        residence_commune=rng.choice(unit.communes),
                    )
                )
        for _ in range(round(row.community_detox_2023 * self.scale)):
            if not unit.commune_station_ids:
                break
            k = rng.randrange(len(unit.commune_station_ids))
            chs_id = unit.commune_station_ids[k]
            self.patients.append(
                Patient(
                    patient_ref=self.clinic_ref(chs_id),
                    unit_id=unit.unit_id,
                    enrolled_facility_id=chs_id,
                    dosing_facility_id=None,
                    programme="community_detox",
                    dose_mg=None,
                    take_home_max_days=None,
                    residence_commune=unit.communes[k % len(unit.communes)],
                )
            )


def random_regimen(rng: random.Random) -> tuple[Literal["methadone", "buprenorphine"], int]:
    """A programme and a usual daily dose: methadone 40–160 mg, buprenorphine 4–16 mg."""
    if rng.random() < _METHADONE_SHARE:
        return "methadone", 5 * round(rng.triangular(40, 160, 80) / 5)
    return "buprenorphine", 2 * rng.randint(2, 8)


def _double_dose_patient(patients: list[Patient], plants: PlantConfig) -> str | None:
    """The rule-chosen victim: first observed methadone patient dosed at the plant facility."""
    for patient in patients:
        if (
            patient.dosing_facility_id == plants.double_dose_facility
            and patient.programme == "methadone"
            and patient.take_home_max_days is None
        ):
            return patient.patient_ref
    return None


def _describe(plants: PlantConfig, names: dict[str, str], victim: str | None) -> tuple[str, ...]:
    """Plain-language list of the planted problems, for whoever checks the platform."""
    planted: list[str] = []
    if plants.starved_dispensing_point:
        dp = plants.starved_dispensing_point
        planted.append(
            f"stock: {dp} ({names[dp]}) receives no deliveries from simulated day "
            f"{plants.starve_from_day + 1} on and opens with about "
            f"{plants.starve_opening_days:g} days of methadone, so its days of supply fall "
            "under 7 within one to two weeks; once it is empty its patients are dosed at the "
            "parent treatment facility"
        )
    if plants.double_dose_facility and victim:
        second = plants.double_dose_second_facility
        planted.append(
            f"double dosing: patient {victim} is dosed at {plants.double_dose_facility} in "
            f"the morning and again at {second} ({names[second]}) in the afternoon of "
            f"simulated day {plants.double_dose_day + 1}"
        )
    if plants.late_sync_facility:
        late = plants.late_sync_facility
        planted.append(
            f"late sync: {late} ({names[late]}) is offline and uploads each local day's "
            "events the next day from 12:00, so emit_at is 12–36 h after occurred_at"
        )
    if plants.late_report_unit:
        unit = plants.late_report_unit
        planted.append(
            f"late reports: {unit} ({names[unit]}) submits its monthly reports on the "
            "26th–28th, after the deadline of the 25th"
        )
    return tuple(planted)


def build_province(
    targets_csv: Path | None = None,
    *,
    scale: float = 1.0,
    seed: int = 0,
    plants: PlantConfig | None = None,
    target_year: int = TARGET_YEAR,
) -> Province:
    """Build Bắc Giang from the seed table; ``scale`` multiplies patients and targets.

    ``target_year`` is the year the seed's 2024 targets are set for: the simulated year, so
    that a simulation of today has targets to measure against.

    ``scale=1`` reproduces the province's 2023 caseload (1,351 routine, 273 take-home and 53
    community-detox patients); ``scale=30`` is roughly the national load.
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    plants = plants or PlantConfig()
    rows = _read_rows(targets_csv)
    rows.sort(key=lambda row: row.unit_type != "provincial_cdc")  # the CDC is unit 00
    rng = random.Random(f"ostwatch-province|{seed}")
    builder = _Builder(rng, f"ostwatch-simulator-key|{seed}".encode(), scale)
    all_communes = tuple(
        f"BG-C-{index:02d}{k:02d}" for index in range(1, len(rows)) for k in range(1, 13)
    )
    units = tuple(builder.unit(index, row, all_communes) for index, row in enumerate(rows))
    builder.facilities.append(
        Facility(
            "BG-PSY",
            f"Bệnh viện Tâm thần tỉnh {PROVINCE_NAME}",
            "psychiatric_hospital",
            CDC_ID,
            CAPITAL_DISTRICT,
        )
    )
    # The Department of Health receives reports (deadlines.csv recipient_id); it sends none.
    builder.facilities.append(
        Facility(
            DOH_ID, f"Sở Y tế tỉnh {PROVINCE_NAME}", "department_of_health", None, CAPITAL_DISTRICT
        )
    )
    targets = tuple(
        Target(
            unit.unit_id,
            target_year,
            _scaled(row.routine_target, scale),
            _scaled(row.take_home_target, scale),
            _scaled(row.community_detox_target, scale),
        )
        for unit, row in zip(units, rows, strict=True)
    )
    # Only the packaged seed table comes with the totals the seed printed under it.
    printed_totals = (
        ()
        if targets_csv is not None
        else (
            Target(
                TOTAL_FACILITY_ID,
                target_year,
                *(_scaled(total, scale) for total in SEED_PRINTED_TARGET_TOTALS),
            ),
        )
    )
    names = {facility.facility_id: facility.name for facility in builder.facilities}
    for planted_id in (
        plants.starved_dispensing_point,
        plants.double_dose_facility,
        plants.double_dose_second_facility if plants.double_dose_facility else None,
        plants.late_sync_facility,
        plants.late_report_unit,
    ):
        if planted_id is not None and planted_id not in names:
            raise ValueError(f"planted problem names unknown facility {planted_id!r}")
    victim = _double_dose_patient(builder.patients, plants) if plants.double_dose_facility else None
    return Province(
        name=PROVINCE_NAME,
        seed=seed,
        scale=scale,
        units=units,
        facilities=tuple(builder.facilities),
        items=ITEMS,
        targets=targets,
        deadlines=DEADLINES,
        patients=tuple(builder.patients),
        plants=plants,
        double_dose_patient=victim,
        planted=_describe(plants, names, victim),
        ref_key=builder.ref_key,
        printed_totals=printed_totals,
    )
