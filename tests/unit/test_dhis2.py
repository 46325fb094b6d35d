"""The DHIS2 export (infra/dhis2.py): the mapping file, the dataValueSet's shape, nothing
guessed, and the sample mapping shipped for the simulated province."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import pytest

from infra.dhis2 import UID, Dhis2Error, data_value_set, parse_mapping
from producers.simulator.province import build_province

PERIOD_RE = re.compile(r"^\d{4}(0[1-9]|1[0-2])$")
NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
MAPPING = """kind,code,uid,category_option_combo
org_unit,TF-01,Ab3456789Cd,
org_unit,DHC-01,Dh3456789Cd,
data_element,patients.methadone.active_end,DeActiveEnd,CocMethadon
data_element,patients.methadone.discharged.completed,DeDischComp,CocMethadon
data_element,stock.MET10.closing,DeStockClos,
data_element,stock.MET10.count_difference,DeStockDiff,
"""


def document() -> dict[str, Any]:
    return {
        "period": "2024-03",
        "unit": None,
        "from": "2024-03-01T00:00:00+07:00",
        "to": "2024-04-01T00:00:00+07:00",
        "as_of": "2024-03-31T23:59:59.999+07:00",
        "units": [
            {"facility_id": "DHC-01", "parent_id": None, "depth": 0, "name": "TTYT"},
            {"facility_id": "TF-01", "parent_id": "DHC-01", "depth": 1, "name": "CSĐT"},
            {"facility_id": "CHS-01", "parent_id": "DHC-01", "depth": 1, "name": "TYT"},
        ],
        "patients": [
            {
                "facility_id": "TF-01",
                "programme": "methadone",
                "active_start": 10,
                "enrolled": 2,
                "transferred_in": 0,
                "transferred_out": 1,
                "discharged": {"self_terminated": 1},
                "active_end": 10,
                "take_home_end": 3,
                "enrolled_year": 5,
                "completed_year": 0,
            },
            {
                "facility_id": "CHS-01",
                "programme": "community_detox",
                "active_start": 1,
                "enrolled": 0,
                "transferred_in": 0,
                "transferred_out": 0,
                "discharged": {},
                "active_end": 1,
                "take_home_end": 0,
                "enrolled_year": 1,
                "completed_year": 0,
            },
        ],
        "dispensing": [],
        "stock": [
            {
                "facility_id": "TF-01",
                "item": "MET10",
                "unit": "ml",
                "opening": 1000.0,
                "received": 0.0,
                "adjusted": -0.25,
                "used": 8.0,
                "count_difference": -1e-6,
                "closing": 991.749999,
            }
        ],
        "tests": [],
        "timeliness": [{"facility_id": "DHC-01", "report_type": "m", "on_time": True}],
    }


def test_a_data_value_set_through_the_mapping() -> None:
    values, unmapped = data_value_set(document(), parse_mapping(MAPPING))
    assert values == {
        "dataValues": [
            {
                "dataElement": "DeActiveEnd",
                "period": "202403",
                "orgUnit": "Ab3456789Cd",
                "categoryOptionCombo": "CocMethadon",
                "value": "10",
            },
            {
                "dataElement": "DeDischComp",
                "period": "202403",
                "orgUnit": "Ab3456789Cd",
                "categoryOptionCombo": "CocMethadon",
                "value": "0",  # mapped, and absent from the object: none completed
            },
            {"dataElement": "DeStockClos", "period": "202403", "orgUnit": "Ab3456789Cd",
             "value": "991.749999"},
            {"dataElement": "DeStockDiff", "period": "202403", "orgUnit": "Ab3456789Cd",
             "value": "-0.000001"},
        ]
    }  # fmt: skip
    # Nothing guessed: every other figure of the mapped rows, and the unmapped facility.
    figures = {f["figure"] for f in unmapped.as_dict()["figures"]}
    assert "patients.methadone.discharged.self_terminated" in figures
    assert "stock.MET10.opening" in figures
    assert "patients.methadone.active_end" not in figures
    assert unmapped.facilities == [
        {"facility_id": "CHS-01", "mapped_above": "DHC-01", "mapped_below": []}
    ]


def test_unmapped_units_name_the_mapped_facilities_below() -> None:
    mapping = parse_mapping(MAPPING.replace("org_unit,DHC-01,Dh3456789Cd,\n", ""))
    doc = document()
    doc["patients"].append(dict(doc["patients"][0], facility_id="DHC-01"))
    _, unmapped = data_value_set(doc, mapping)
    assert {"facility_id": "DHC-01", "mapped_above": None, "mapped_below": ["TF-01"]} in (
        unmapped.facilities
    )


def test_two_figures_onto_one_value_is_refused() -> None:
    clash = MAPPING + "data_element,patients.methadone.active_start,DeActiveEnd,CocMethadon\n"
    with pytest.raises(Dhis2Error, match="both map to data element DeActiveEnd"):
        data_value_set(document(), parse_mapping(clash))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("kind,code,uid\n", "header must be kind,code,uid,category_option_combo"),
        (MAPPING + "org_unit,TF-02,1bc456789Cd,\n", "'1bc456789Cd' is not a DHIS2 uid"),
        (MAPPING + "org_unit,TF-02,Abc,\n", "'Abc' is not a DHIS2 uid"),
        (MAPPING + "data_element,x.y.z,Abc456789Cd,bad-combo00\n", "'bad-combo00' is not a"),
        (MAPPING + "org_unit,TF-01,Zz3456789Cd,\n", "org_unit 'TF-01' mapped twice"),
        (MAPPING + "indicator,x,Abc456789Cd,\n", "kind must be org_unit or data_element"),
        (MAPPING + "org_unit,TF-03,Abc456789Cd,Abc456789Cd\n", "takes no category_option_combo"),
    ],
)
def test_mapping_problems_are_named_with_their_line(text: str, problem: str) -> None:
    with pytest.raises(Dhis2Error, match=problem):
        parse_mapping(text, "m.csv")


def test_the_sample_mapping_covers_the_simulated_province() -> None:
    text = (
        resources.files("producers.simulator")
        .joinpath("data/dhis2_mapping_bac_giang.csv")
        .read_text(encoding="utf-8")
    )
    mapping = parse_mapping(text)
    province = build_province(seed=1, target_year=2024)
    sites = {
        f.facility_id
        for f in province.facilities
        if f.type not in ("provincial_cdc", "district_health_centre", "department_of_health")
    }
    assert set(mapping.org_units) == sites
    uids = [*mapping.org_units.values(), *(de for de, _ in mapping.data_elements.values())]
    assert all(UID.match(uid) for uid in uids)
    assert len(set(mapping.org_units.values())) == len(mapping.org_units)
    targets = {(de, coc) for de, coc in mapping.data_elements.values()}
    assert len(targets) == len(mapping.data_elements)  # no two figures onto one value
    assert "patients.methadone.active_end" in mapping.data_elements
    assert "stock.MET10.closing" in mapping.data_elements


def test_every_value_has_the_dhis2_shape() -> None:
    values, _ = data_value_set(document(), parse_mapping(MAPPING))
    for value in values["dataValues"]:
        assert set(value) <= {"dataElement", "period", "orgUnit", "categoryOptionCombo", "value"}
        assert UID.match(value["dataElement"]) and UID.match(value["orgUnit"])
        assert PERIOD_RE.match(value["period"])
        assert isinstance(value["value"], str) and NUMBER_RE.match(value["value"])
