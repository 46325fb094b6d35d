"""Report latency over a year of national-scale data on the embedded engine.

Generates a year (~18 million doses, 50,000 patients, 300 facilities, stock and tests) straight
into ``events_archive`` with ClickHouse's own ``numbers()`` (Python rows would take an hour),
rebuilds the live aggregates from it (the replay cost), then times every report answered from
the aggregates against the baseline measured in the same run: the same report recomputed
from the archive alone. Each answer is also compared between the two.

    python -m bench.report_latency [--patients 50000] [--facilities 300] [--runs 20]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ostwatch.settings import ClickHouseSettings
from ostwatch.timeutil import LOCAL_TZ
from sinks.clickhouse import ClickHouse
from sinks.reports import Scope
from sinks.store import Store

YEAR = 2024
PROVINCES = 63
RESULTS = Path(__file__).parent / "results" / "report_latency.json"


def registry_files(facilities: int) -> dict[str, str]:
    """63 provincial CDCs, each with its treatment facilities, and a target per CDC."""
    rows = ["facility_id,name,type,parent_id,district,province"]
    rows += [
        f"CDC-{p:02d},CDC tỉnh {p:02d},provincial_cdc,,,Tỉnh {p:02d}" for p in range(PROVINCES)
    ]
    rows += [
        f"TF-{f:03d},Cơ sở điều trị {f:03d},treatment_facility,CDC-{f % PROVINCES:02d},"
        f"Huyện {f:03d},Tỉnh {f % PROVINCES:02d}"
        for f in range(facilities)
    ]
    targets = ["facility_id,year,routine_target,take_home_target,community_detox_target"]
    targets += [f"CDC-{p:02d},{YEAR},700,150,40" for p in range(PROVINCES)]
    return {
        "facilities.csv": "\n".join(rows) + "\n",
        "items.csv": "item,name,kind,unit,mg_per_unit\n"
        "MET10,Methadone 10 mg/ml,medication,ml,10\n"
        "BUP2,Buprenorphine 2 mg,medication,tablet,2\n"
        "KIT-MOR,Que thử morphin,test_kit,kit,\n",
        "targets.csv": "\n".join(targets) + "\n",
        "deadlines.csv": "report_type,frequency,due_day,reporter_type\n"
        "methadone_monthly,monthly,25,provincial_cdc\n",
    }


def _local_morning(day: str, seconds: str) -> str:
    """SQL for an instant between 06:00 and 10:00 local time on local day ``day``."""
    return f"toDateTime64(toDateTime({day}, 'Asia/Ho_Chi_Minh') + 21600 + ({seconds}) % 14400, 3)"


def _facility(index: str) -> str:
    return f"concat('TF-', leftPad(toString({index}), 3, '0'))"


def _patient(index: str) -> str:
    return f"concat('pat-bench-', leftPad(toString({index}), 6, '0'))"


def generate(db: ClickHouse, patients: int, facilities: int, days: int) -> dict[str, int]:
    """Fill events_archive with a year of synthetic but shaped data; returns rows per type."""
    day0 = f"toDate('{YEAR}-01-01')"

    def insert(
        event_type: str, rows: int, facility: str, at: str, fields: dict[str, str], where: str
    ) -> None:
        columns = {
            "event_id": "generateUUIDv4(number)",
            "event_type": f"'{event_type}'",
            "schema_version": "1",
            "facility_id": facility,
            "occurred_at": at,
            "occurred_at_text": "toString(occurred_at)",
            "local_date": "toDate(occurred_at, 'Asia/Ho_Chi_Minh')",
            "received_at": "occurred_at",
            "source": "'bench'",
            "seq": "number",
            **fields,
        }
        select = ", ".join(f"{expression} AS {name}" for name, expression in columns.items())
        db.command(
            f"INSERT INTO events_archive ({', '.join(columns)}) "  # noqa: S608 - our own SQL
            f"SELECT {select} FROM numbers({rows}) WHERE {where}"
        )

    # Doses: patient p (at facility p mod F) on day d, 98 % of days; one in five take-home.
    p, d = f"intDiv(number, {days})", f"number % {days}"
    insert(
        "dose.dispensed", patients * days, _facility(f"{p} % {facilities}"),
        _local_morning(f"{day0} + {d}", "cityHash64(number)"),
        {
            "patient_ref": _patient(p),
            "item": f"if({p} % 25 = 0, 'BUP2', 'MET10')",
            "dose_mg": "toFloat64(if(item = 'BUP2', 2 * (1 + cityHash64(number, 1) % 8), "
            "20 + cityHash64(number, 1) % 180))",
            "mode": "if(cityHash64(number, 2) % 5 = 0, 'take_home', 'observed')",
            "take_home_days": "toUInt8(if(mode = 'take_home', 2 + cityHash64(number, 3) % 6, 1))",
        },
        "cityHash64(number, 4) % 100 < 98",
    )  # fmt: skip
    at_random_morning = _local_morning(f"{day0} + cityHash64(number) % {days}", "number")
    lifecycle = [
        ("patient.enrolled", "toDateTime64('2023-12-01 01:00:00', 3) + number", "1", {
            "programme": "if(number % 25 = 0, 'buprenorphine', "
            "if(number % 40 = 1, 'community_detox', 'methadone'))",
            "residence_commune": "'C-01'"}),
        ("patient.take_home_approved", at_random_morning, "number % 5 = 2",
         {"max_days": "toUInt8(7)"}),
        ("patient.discharged", at_random_morning, "number % 10 = 3",
         {"outcome": "'completed'"}),
        ("patient.transferred", at_random_morning, "number % 25 = 7",
         {"to_facility_id": _facility(f"(number + 1) % {facilities}")}),
    ]  # fmt: skip
    for event_type, at, where, fields in lifecycle:
        insert(
            event_type, patients, _facility(f"number % {facilities}"), at,
            {"patient_ref": _patient("number"), **fields}, where,
        )  # fmt: skip
    item = "arrayElement(['MET10', 'BUP2', 'KIT-MOR'], 1 + number % 3)"
    per_item = _facility(f"intDiv(number, 3) % {facilities}")
    batch = 3 * facilities
    insert(
        "stock.received", batch * (days // 7), per_item,
        _local_morning(f"{day0} + 7 * intDiv(number, {batch})", "number"),
        {"item": item, "quantity": "toFloat64(if(item = 'MET10', 20000, 500))"}, "1",
    )  # fmt: skip
    insert(
        "stock.counted", batch * 12, per_item,
        _local_morning(f"addMonths({day0}, intDiv(number, {batch}))", "number"),
        {"item": item, "quantity_on_hand": "toFloat64(cityHash64(number) % 20000)"}, "1",
    )  # fmt: skip
    insert(
        "test.performed", 100 * days, _facility(f"cityHash64(number) % {facilities}"),
        _local_morning(f"{day0} + number % {days}", "cityHash64(number)"),
        {"item": "'KIT-MOR'", "purpose": "'screening'",
         "results": "map('opiates', if(cityHash64(number, 5) % 4 = 0, 'positive', 'negative'))"},
        "1",
    )  # fmt: skip
    counts = db.query_rows(
        "SELECT event_type, count() FROM events_archive GROUP BY event_type ORDER BY 1"
    )
    return {str(kind): int(n) for kind, n in counts}


# The generator leaves payload empty; benchmarks that export, hash or compare whole rows
# fill it with the event's fields as JSON, one mutation over the archive.
PAYLOAD_SQL = (
    "formatRowNoNewline('JSONEachRow', event_id, event_type, schema_version, "
    "occurred_at_text, facility_id, patient_ref, item, dose_mg, mode, take_home_days, "
    "quantity, quantity_on_hand, programme, results)"
)


def fill_payloads(db: ClickHouse) -> None:
    """Give every generated archive row a payload (see PAYLOAD_SQL)."""
    db.command(
        f"ALTER TABLE events_archive UPDATE payload = {PAYLOAD_SQL} WHERE 1 "
        "SETTINGS mutations_sync = 2"
    )


def year_arguments(parser: argparse.ArgumentParser, patients: int) -> None:
    """The options of a benchmark over a generated year: its size and where its data go."""
    parser.add_argument("--patients", type=int, default=patients)
    parser.add_argument("--facilities", type=int, default=300)
    parser.add_argument("--days", type=int, default=366)
    parser.add_argument("--data-dir", type=Path, help="Keep the data here (default: a temp dir).")


def year_store(args: argparse.Namespace, database: str) -> Store:
    """An empty, migrated store with the generated registry, in ``--data-dir`` (or a
    temporary directory), ready for ``generate``."""
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix=f"ostwatch-{database}-"))
    print(f"data in {data_dir}")
    db = ClickHouse.connect(ClickHouseSettings(database=database), data_dir)
    db.command(f"DROP DATABASE IF EXISTS {database}")
    db.command(f"CREATE DATABASE {database}")
    store = Store(db)
    store.migrate()
    store.load_registry(registry_files(args.facilities), "bench")
    return store


def generate_year(
    store: Store, args: argparse.Namespace
) -> tuple[dict[str, int], float, float, float]:
    """Generate the year into ``store``, rebuild its aggregates, wait for the merges:
    (events per type, generation s, rebuild s, settle s)."""
    started = time.perf_counter()
    counts = generate(store.db, args.patients, args.facilities, args.days)
    generation_s = time.perf_counter() - started
    print(f"generated {sum(counts.values()):,} events in {generation_s:.1f} s: {counts}")
    started = time.perf_counter()
    store.aggregates.rebuild()
    rebuild_s = time.perf_counter() - started
    print(f"aggregates rebuilt from the archive in {rebuild_s:.1f} s")
    settle_s = settle(store.db)
    print(f"background merges of the bulk load settled in {settle_s:.1f} s")
    return counts, generation_s, rebuild_s, settle_s


def settle(db: ClickHouse, limit_s: float = 600) -> float:
    """Wait for the merges the bulk load started: a live system never sees 18M rows at once,
    and measuring while two cores merge them would time the merges, not the reports."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if not db.query_rows("SELECT count() FROM system.merges")[0][0]:
            break
        time.sleep(1)
    return time.perf_counter() - started


def timed(call: Callable[[], Any], runs: int) -> tuple[Any, list[float]]:
    """The answer and the latency of each run (ms), after two warm-ups."""
    answer = call()
    call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return answer, samples


def write_results(path: Path, document: dict[str, Any]) -> None:
    """A benchmark's figures as JSON under bench/results (not committed)."""
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    print(f"results in {path}")


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def scenarios() -> list[tuple[str, str, datetime | None, Scope]]:
    def local(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=LOCAL_TZ)

    clinic = frozenset({"TF-007"})
    march = Scope(None, date(YEAR, 3, 1), date(YEAR, 3, 31))
    return [
        ("one clinic-day", "dispensing", local("2024-03-12T23:59:59"),
         Scope(clinic, date(YEAR, 3, 12), date(YEAR, 3, 12))),
        ("all facilities, one month", "dispensing", local("2024-03-31T23:59:59"), march),
        ("stock, mid-morning", "stock", local("2024-12-15T09:30:00"), Scope()),
        ("stock, latest", "stock", None, Scope()),
        ("patients", "patients", None, Scope()),
        ("patients, as of 12 March", "patients", local("2024-03-12T12:00:00"), Scope()),
        ("tests, whole year", "tests", None, Scope()),
        ("targets", "targets", None, Scope()),
        ("dispensing, whole year", "dispensing", None, Scope()),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    year_arguments(parser, 50_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    store = year_store(args, "bench_reports")

    counts, generation_s, rebuild_s, settle_s = generate_year(store, args)

    live = store.reports("aggregates")
    baseline = store.reports("archive")
    results = []
    header = (
        f"{'scenario':28} {'rows':>7} {'aggr p50':>9} {'p95':>7} {'archive p50':>12} {'p95':>7}"
    )
    print(header + "   speed-up  equal")
    for label, name, as_of, scope in scenarios():
        runs = args.runs if "whole year" not in label else max(3, args.runs // 4)
        answer, fast = timed(functools.partial(getattr(live, name), as_of, scope), runs)
        reference, slow = timed(functools.partial(getattr(baseline, name), as_of, scope), runs)
        row: dict[str, Any] = {
            "scenario": label,
            "report": name,
            "rows": len(answer),
            "aggregates_p50_ms": round(statistics.median(fast), 1),
            "aggregates_p95_ms": round(percentile(fast, 0.95), 1),
            "archive_p50_ms": round(statistics.median(slow), 1),
            "archive_p95_ms": round(percentile(slow, 0.95), 1),
            "equal": same(answer, reference),
        }
        results.append(row)
        speed_up = float(row["archive_p50_ms"]) / max(float(row["aggregates_p50_ms"]), 0.1)
        print(
            f"{label:28} {row['rows']:>7} {row['aggregates_p50_ms']:>9} "
            f"{row['aggregates_p95_ms']:>7} {row['archive_p50_ms']:>12} "
            f"{row['archive_p95_ms']:>7}   {speed_up:>6.1f}×"
            f"  {row['equal']}"
        )
    write_results(
        RESULTS,
        {
            "events": counts,
            "generation_s": round(generation_s, 1),
            "rebuild_s": round(rebuild_s, 1),
            "settle_s": round(settle_s, 1),
            "reports": results,
        },
    )
    store.close()


if __name__ == "__main__":
    main()
