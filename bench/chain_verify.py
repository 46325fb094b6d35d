"""Hash-chain throughput on a large archive: build, live extension, and ``audit verify``.

Generates a national-shaped archive straight into ClickHouse (the report benchmark's
generator, with a contract-like JSON payload per row), chains it as a worker start would
(``ArchiveChain.repair``), times the chaining of one intake-sized batch on top of it, then
times ``verify`` against the baseline measured in the same run: every archived row hashed
once with the very same expression and nothing compared (the floor any verification
pays). Finally three rows are altered, deleted and inserted behind the chain's back and
verify must name exactly those.

    python -m bench.chain_verify [--patients 6000] [--facilities 300] [--days 366] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.report_latency import (
    fill_payloads,
    generate,
    settle,
    year_arguments,
    year_store,
)
from sinks.chain import CONTENT_HASH_SQL
from sinks.clickhouse import ClickHouse, as_utc
from sinks.store import Store

RESULTS = Path(__file__).parent / "results" / "chain_verify.json"
BATCH = 5_000


def timed(call: Any, runs: int) -> tuple[Any, list[float]]:
    """The last answer and each run's seconds."""
    samples, answer = [], None
    for _ in range(runs):
        started = time.perf_counter()
        answer = call()
        samples.append(time.perf_counter() - started)
    return answer, samples


def live_batch(db: ClickHouse, store: Store) -> tuple[float, int]:
    """Archive one intake-sized batch of the latest day's doses, spread over every facility
    (what a national morning sends), and chain it as the intake does; returns (seconds for
    the chain step, events chained)."""
    db.command(
        "INSERT INTO events_archive SELECT * REPLACE (generateUUIDv4() AS event_id, "  # noqa: S608
        "now64(3) AS received_at, 'bench-live' AS source) FROM (SELECT * FROM events_archive "
        "WHERE event_type = 'dose.dispensed' AND local_date = (SELECT max(local_date) "
        f"FROM events_archive) ORDER BY cityHash64(event_id) LIMIT {BATCH})"
    )
    keys = db.query_rows(
        "SELECT facility_id, toString(event_id), occurred_at FROM events_archive "
        "WHERE source = 'bench-live'"
    )
    started = time.perf_counter()
    chained = store.chain.extend([(f, e, as_utc(at)) for f, e, at in keys])
    return time.perf_counter() - started, chained


def tamper(db: ClickHouse) -> set[tuple[str, str]]:
    """Alter, delete and insert one row each; returns the (event_id, problem) expected."""
    picked = db.query_rows(
        "SELECT toString(event_id) FROM events_archive WHERE event_type = 'dose.dispensed' "
        "ORDER BY cityHash64(event_id) LIMIT 3"
    )
    altered, deleted, copied = (row[0] for row in picked)
    forged = "00000000-0000-4000-8000-00000000beef"
    sync = "SETTINGS mutations_sync = 2"
    db.command(
        f"ALTER TABLE events_archive UPDATE dose_mg = dose_mg + 1 "
        f"WHERE event_id = '{altered}' {sync}"
    )
    db.command(f"ALTER TABLE events_archive DELETE WHERE event_id = '{deleted}' {sync}")
    db.command(
        f"INSERT INTO events_archive SELECT * REPLACE (toUUID('{forged}') AS event_id) "  # noqa: S608
        f"FROM (SELECT * FROM events_archive WHERE event_id = '{copied}')"
    )
    return {(altered, "changed"), (deleted, "deleted"), (forged, "inserted")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    year_arguments(parser, 6_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    store = year_store(args, "bench_chain")
    db = store.db

    started = time.perf_counter()
    counts = generate(db, args.patients, args.facilities, args.days)
    fill_payloads(db)
    events = sum(counts.values())
    print(f"generated {events:,} events in {time.perf_counter() - started:.1f} s")
    settle(db)

    started = time.perf_counter()
    chained = store.chain.repair()
    build_s = time.perf_counter() - started
    print(f"chain built for {chained:,} events in {build_s:.1f} s ({chained / build_s:,.0f}/s)")
    batch_s, batch_n = live_batch(db, store)
    print(
        f"live chaining of a {batch_n:,}-event batch over all facilities: {batch_s * 1000:.0f} ms"
    )
    settle(db)

    archived = int(db.query_rows("SELECT count() FROM events_archive")[0][0])
    _, floor = timed(
        lambda: db.query_rows(
            f"SELECT sum(cityHash64({CONTENT_HASH_SQL})) FROM events_archive"  # noqa: S608
        ),
        args.runs,
    )
    result, runs = timed(lambda: store.chain.verify(settle_s=0), args.runs)
    assert result.intact, result.findings[:5]
    floor_rate = archived / statistics.median(floor)
    verify_rate = archived / statistics.median(runs)
    print(f"baseline: hash every archived row once: {floor_rate:,.0f} events/s")
    print(f"audit verify (intact): {verify_rate:,.0f} events/s "
          f"({verify_rate / floor_rate:.2f} × the baseline)")  # fmt: skip

    expected = tamper(db)
    tampered = store.chain.verify(settle_s=0)
    named = {(f.event_id, f.problem) for f in tampered.findings}
    print(f"after altering, deleting and inserting one row each: {sorted(named)}")
    assert named == expected, (named, expected)

    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "archived_events": archived,
                "facilities": args.facilities,
                "chain_build_events_per_s": round(chained / build_s),
                "live_batch_events": batch_n,
                "live_batch_chain_ms": round(batch_s * 1000, 1),
                "baseline_hash_events_per_s": round(floor_rate),
                "verify_events_per_s": round(verify_rate),
                "verify_runs_s": [round(s, 3) for s in runs],
                "tamper_detected": sorted(named) == sorted(expected),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"results in {RESULTS}")
    db.close()


if __name__ == "__main__":
    main()
