"""A registry load against the real ClickHouse engine (chDB) reports printed-total mismatches
as warnings: returned, logged and kept with the version, also on an unchanged reload."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from producers.simulator import build_province, write_registry
from sinks.store import Store

pytestmark = pytest.mark.integration
REGISTRY_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "registry"
TAKE_HOME_2024 = {
    "year": 2024,
    "column": "take_home_target",
    "printed": 652,
    "derived": 636,
    "difference": 16,
}


def _simulated_registry(tmp_path: Path) -> dict[str, str]:
    write_registry(build_province(scale=1.0, seed=0), tmp_path)
    return {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.csv")}


def _stored_warnings(store: Store) -> list[tuple[int, list[str]]]:
    rows = store.db.query_rows("SELECT version, warnings FROM registry_versions ORDER BY version")
    return [(int(version), list(warnings)) for version, warnings in rows]


def test_simulated_registry_loads_with_the_seed_mismatch(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    texts = _simulated_registry(tmp_path)
    with caplog.at_level(logging.WARNING, logger="sinks.store"):
        first = store.load_registry(texts, "simulator")
    assert (first.version, first.unchanged, first.targets) == (1, False, 11)
    assert [{key: m[key] for key in TAKE_HOME_2024} for m in first.total_mismatches] == [
        TAKE_HOME_2024
    ]
    assert first.total_mismatches[0]["line"] == 13
    assert len(first.warnings) == 1 and "take_home_target" in first.warnings[0]
    assert [r.levelno for r in caplog.records if "take_home_target" in r.getMessage()] == [
        logging.WARNING
    ]
    assert _stored_warnings(store) == [(1, first.warnings)]
    # The rows are the truth: the totals row is no target.
    stored = store.db.query_rows("SELECT DISTINCT facility_id FROM registry_targets")
    assert "TOTAL" not in {facility_id for (facility_id,) in stored}
    _, snapshot = store.current_registry()
    assert snapshot is not None and len(snapshot.printed_totals) == 1

    again = store.load_registry(texts, "simulator again")
    assert (again.version, again.unchanged) == (1, True)
    assert again.total_mismatches == first.total_mismatches
    assert again.warnings == first.warnings
    assert _stored_warnings(store) == [(1, first.warnings)]


def test_agreeing_totals_store_no_warning(store: Store) -> None:
    texts = {p.name: p.read_text(encoding="utf-8") for p in REGISTRY_DIR.glob("*.csv")}
    texts["targets.csv"] += "TOTAL,2024,200,40,15\n"
    loaded = store.load_registry(texts, "fixture")
    assert (loaded.total_mismatches, loaded.warnings) == ([], [])
    texts["targets.csv"] += "Tổng,2025,3,,\n"
    changed = store.load_registry(texts, "fixture, with a 2025 total")
    assert changed.version == 2
    assert [(m["year"], m["printed"], m["derived"]) for m in changed.total_mismatches] == [
        (2025, 3, None)
    ]
    assert _stored_warnings(store) == [(1, []), (2, changed.warnings)]
