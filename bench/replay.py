"""Replay throughput on the embedded engine, in archived events per second.

A national year is generated straight into ``events_archive`` with the report benchmark's
generator (``bench.report_latency.generate``; default ~1.2 million events), each event
given a canonical JSON ``payload`` of realistic size. Then, each against a baseline
measured in the same run:

- **rebuild from the ClickHouse archive** (``Aggregates.rebuild``: one ``INSERT … SELECT``
  per aggregate, the engine doing the work) and the whole ``replay --verify`` (rebuild into
  a scratch database and compare tables and reports), against a plain Python loop that
  reads the same archive rows and aggregates them per facility-day in dicts. The loop runs
  on a prefix of the archive and writes nothing, so it is a generous baseline;
- **Avro import** (``ostwatch archive import``: ClickHouse reads every file of the export
  in one ``INSERT … SELECT … FROM file()``, duplicates filtered), against a Python import:
  fastavro reading the same files and inserting them in column batches of 50,000 rows
  (the way the intake writes), on a prefix of the files.

The imported archive is checked to be identical to the source (count and a hash of every
event's id, time and payload).

    python -m bench.replay [--patients 3400] [--facilities 300] [--baseline-events 300000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro

from bench.report_latency import fill_payloads, generate, registry_files, settle, year_arguments
from ostwatch.settings import ClickHouseSettings
from sinks.archive import Filters, event_files, export, import_archive
from sinks.archive_columns import ARCHIVE_COLUMNS
from sinks.clickhouse import ClickHouse
from sinks.replay import verify
from sinks.store import Store

RESULTS = Path(__file__).parent / "results" / "replay.json"
BATCH = 50_000
FINGERPRINT = (
    "SELECT count(), sum(cityHash64(toString(event_id), occurred_at, payload, facility_id)) "
    "FROM events_archive"
)


def python_rebuild(db: ClickHouse, limit: int) -> int:
    """The baseline: a Python loop over archive rows, aggregating per facility-day."""
    rows = db.query_rows(
        "SELECT event_type, facility_id, local_date, patient_ref, item, dose_mg, mode, "
        "take_home_days, quantity, quantity_delta, results FROM events_archive "
        "ORDER BY facility_id, occurred_at LIMIT %(limit)s",
        {"limit": limit},
    )
    dispensing: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, set(), 0, 0, 0.0, 0.0])
    stock: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0])
    tests: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, defaultdict(int)])
    for kind, facility, day, patient, item, mg, mode, days, quantity, delta, results in rows:
        if kind == "dose.dispensed":
            row = dispensing[facility, day]
            row[0] += 1
            row[1].add(patient)
            if mode == "observed":
                row[2] += 1
                row[4] += mg
            else:
                row[3] += 1
                row[5] += mg * days
            stock[facility, item, day][3] += mg * days
        elif kind == "test.performed":
            entry = tests[facility, day]
            entry[0] += 1
            for substance, result in results.items():
                entry[1][substance] += result == "positive"
            stock[facility, item, day][4] += 1
        elif kind == "stock.received":
            stock[facility, item, day][1] += quantity
        elif kind == "stock.adjusted":
            stock[facility, item, day][2] += delta
    return len(rows)


def python_import(db: ClickHouse, files: list[Path], limit: int) -> int:
    """The baseline: fastavro reads the files, rows go in column batches of 50,000."""
    done = 0
    batch: list[list[Any]] = [[] for _ in ARCHIVE_COLUMNS]

    def flush() -> None:
        db.insert_columns("events_archive", batch, ARCHIVE_COLUMNS)
        for column in batch:
            column.clear()

    for path in files:
        with path.open("rb") as handle:
            for record in fastavro.reader(handle):
                assert isinstance(record, dict)
                for column, name in zip(batch, ARCHIVE_COLUMNS, strict=True):
                    column.append(record[name])
                done += 1
                if len(batch[0]) >= BATCH:
                    flush()
        if done >= limit:
            break
    if batch[0]:
        flush()
    return done


def fresh(db: ClickHouse, name: str) -> Store:
    db.command(f"DROP DATABASE IF EXISTS `{name}`")
    store = Store(db.sibling(name))
    store.migrate()
    return store


def timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """The answer, wall-clock seconds and CPU seconds of this process (chDB runs inside
    it, every thread counted): on a shared machine the CPU figure moves less."""
    started, cpu = time.perf_counter(), time.process_time()
    answer = call()
    return answer, time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    year_arguments(parser, 3_400)
    parser.add_argument("--baseline-events", type=int, default=300_000)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="ostwatch-bench-replay-"))
    print(f"data in {data_dir}")
    db = ClickHouse.connect(ClickHouseSettings(database="bench_replay"), data_dir)
    db.command("DROP DATABASE IF EXISTS bench_replay")
    source = fresh(db, "bench_replay")
    source.load_registry(registry_files(args.facilities), "bench")
    _, generation_s, _ = timed(
        lambda: generate(source.db, args.patients, args.facilities, args.days)
    )
    fill_payloads(source.db)
    events = int(source.db.query_rows("SELECT count() FROM events_archive")[0][0])
    print(f"generated {events:,} events in {generation_s:.1f} s")
    settle(source.db)

    rows: list[dict[str, Any]] = []

    def record(measure: str, count: int, wall: float, cpu: float | None, base: float = 0) -> float:
        rate = count / wall
        rows.append(
            {"measure": measure, "events": count, "seconds": round(wall, 2),
             "cpu_seconds": None if cpu is None else round(cpu, 2),
             "events_per_s": round(rate),
             "events_per_cpu_s": None if cpu is None else round(count / cpu),
             "against": f"{rate / base:.1f} × baseline" if base else ""}
        )  # fmt: skip
        return rate

    # Rebuild from the archive, against the Python loop.
    loop_n, loop_s, loop_cpu = timed(lambda: python_rebuild(source.db, args.baseline_events))
    loop_rate = record("baseline: Python loop aggregating archive rows", loop_n, loop_s, loop_cpu)
    _, wall, cpu = timed(source.aggregates.rebuild)
    record("rebuild aggregates from the ClickHouse archive", events, wall, cpu, loop_rate)
    checked, wall, cpu = timed(lambda: verify(source))
    assert checked.equal, checked.differences[:3]
    record("replay --verify (rebuild + compare tables, reports)", events, wall, cpu, loop_rate)

    # The portable archive: export, then import into fresh databases.
    out = data_dir / "export"
    shutil.rmtree(out, ignore_errors=True)
    exported, wall, cpu = timed(lambda: export(source, out, Filters()))
    record(f"archive export ({exported['files']:,} Avro files)", events, wall, cpu)
    files = event_files(out)
    python_target = fresh(db, "bench_replay_python")
    base_n, wall, cpu = timed(lambda: python_import(python_target.db, files, args.baseline_events))
    base_rate = record("baseline: fastavro + batched inserts (Python)", base_n, wall, cpu)
    target = fresh(db, "bench_replay_import")
    result, wall, cpu = timed(lambda: import_archive(target, out))
    assert result["imported"] == events and result["duplicates"] == 0, result
    assert target.db.query_rows(FINGERPRINT) == source.db.query_rows(FINGERPRINT)
    record("archive import: events into the archive", events, result["import_seconds"], None,
           base_rate)  # fmt: skip
    record("archive import incl. aggregate rebuild", events, wall, cpu, base_rate)
    again, wall, cpu = timed(lambda: import_archive(target, out))
    assert again["imported"] == 0 and again["duplicates"] == events
    record("archive re-import (every event a duplicate)", events, wall, cpu)

    print(
        f"\n{'measure':52} {'events':>10} {'wall s':>7} {'events/s':>10} "
        f"{'cpu s':>7} {'events/cpu-s':>12}  against"
    )
    for row in rows:
        per_cpu = f"{row['events_per_cpu_s']:,}" if row["events_per_cpu_s"] else "—"
        print(
            f"{row['measure']:52} {row['events']:>10,} {row['seconds']:>7} "
            f"{row['events_per_s']:>10,} {row['cpu_seconds'] or '—':>7} {per_cpu:>12}"
            f"  {row['against']}"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"events": events, "rows": rows}, indent=2), encoding="utf-8")
    print(f"results in {RESULTS}")
    for name in ("bench_replay_python", "bench_replay_import", "bench_replay"):
        db.command(f"DROP DATABASE IF EXISTS `{name}`")
    db.close()
    if args.data_dir is None:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
