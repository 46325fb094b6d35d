"""The monthly report's latency over a national year on the embedded engine.

The national year of ``bench.report_latency`` (~18 million doses, 50,000 patients, 300
facilities under 63 provincial CDCs) is generated straight into the archive and the live
aggregates rebuilt from it; then ``report monthly`` for March is timed for the whole country
(JSON: the document serialised as the CLI prints it; xlsx: the workbook written as the CLI
writes it) and for one province, against the baseline measured in the same run: the same
month recomputed from the archive alone (``source="archive"``). The answers of the two are
compared.

    python -m bench.monthly [--patients 50000] [--facilities 300] [--days 366] [--runs 20]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.report_latency import (
    generate_year,
    percentile,
    same,
    write_results,
    year_arguments,
    year_store,
)
from infra.exports import monthly_workbook
from ostwatch.settings import ClickHouseSettings
from sinks.monthly import MonthlyReport
from sinks.store import Store

DATABASE = "bench_monthly"
PERIOD = "2024-03"
PROVINCE = "CDC-07"
RESULTS = Path(__file__).parent / "results" / "monthly.json"
TARGETS_MS = {"country, json": 1000, "country, xlsx": 3000, "one province, json": 300}


def _json(report: MonthlyReport, unit: str | None) -> bytes:
    return orjson.dumps(report.answer(PERIOD, unit, None), option=orjson.OPT_INDENT_2)


def _xlsx(report: MonthlyReport, out: Path) -> int:
    """The workbook as the CLI writes it: answered, laid out, written to a file."""
    data = monthly_workbook(report.answer(PERIOD, None, None))
    out.write_bytes(data)
    return len(data)


def timed(call: Callable[[], Any], runs: int) -> tuple[Any, list[float], list[float]]:
    """The answer, and each run's wall-clock and CPU milliseconds (after two warm-ups). The
    engine runs inside this process, so CPU time counts the queries on every core: a
    steadier figure than wall-clock time on a machine shared with other work."""
    answer = call()
    call()
    wall, cpu = [], []
    for _ in range(runs):
        started, used = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
    return answer, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    year_arguments(parser, 50_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="With --data-dir: time the year generated there by an earlier run.",
    )
    args = parser.parse_args()
    if args.reuse and args.data_dir:
        store = Store.open(ClickHouseSettings(database=DATABASE), args.data_dir)
        # A year generated before a migration gets its tables, filled from the archive.
        if store.migrate():
            store.aggregates.reconcile()
        counts = store.archive.counts_by_type()
        generation_s = rebuild_s = 0.0
        print(f"reusing {sum(counts.values()):,} events in {args.data_dir}")
    else:
        store = year_store(args, DATABASE)
        counts, generation_s, rebuild_s, _ = generate_year(store, args)

    live = store.monthly("aggregates")
    baseline = store.monthly("archive")
    workbook = Path(tempfile.mkdtemp(prefix="ostwatch-bench-monthly-")) / "monthly.xlsx"
    scenarios: list[tuple[str, Callable[[MonthlyReport], Any]]] = [
        ("country, json", functools.partial(_json, unit=None)),
        ("country, xlsx", functools.partial(_xlsx, out=workbook)),
        ("one province, json", functools.partial(_json, unit=PROVINCE)),
    ]
    results = []
    load_before = os.getloadavg()[0]
    print(f"load average {load_before:.1f} (2 cores shared with other work are slower)")
    print(
        f"{'scenario':22} {'p50':>7} {'p95':>7} {'cpu p50':>8} {'archive p50':>12} {'p95':>7}"
        "  target  equal"
    )
    for label, call in scenarios:
        answer, fast, cpu = timed(functools.partial(call, live), args.runs)
        reference, slow, _ = timed(functools.partial(call, baseline), max(3, args.runs // 4))
        equal = (
            same(orjson.loads(answer), orjson.loads(reference))
            if isinstance(answer, bytes)
            else answer > 0
        )
        row = {
            "scenario": label,
            "p50_ms": round(statistics.median(fast), 1),
            "p95_ms": round(percentile(fast, 0.95), 1),
            "cpu_p50_ms": round(statistics.median(cpu), 1),
            "archive_p50_ms": round(statistics.median(slow), 1),
            "archive_p95_ms": round(percentile(slow, 0.95), 1),
            "target_ms": TARGETS_MS[label],
            "equal": equal,
        }
        results.append(row)
        print(
            f"{label:22} {row['p50_ms']:>7} {row['p95_ms']:>7} {row['cpu_p50_ms']:>8} "
            f"{row['archive_p50_ms']:>12} {row['archive_p95_ms']:>7}  {row['target_ms']:>6}  "
            f"{equal}"
        )
    document = live.answer(PERIOD, None, None)
    sizes = {name: len(document[name]) for name in ("patients", "dispensing", "stock", "tests")}
    print(f"rows: {sizes}; load average after {os.getloadavg()[0]:.1f}")
    write_results(
        RESULTS,
        {
            "events": counts,
            "generation_s": round(generation_s, 1),
            "rebuild_s": round(rebuild_s, 1),
            "rows": sizes,
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "scenarios": results,
        },
    )
    store.close()


if __name__ == "__main__":
    main()
