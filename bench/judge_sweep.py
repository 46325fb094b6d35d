"""Alerts judged by one judge for several workers: what the sweep costs, and that it agrees.

Two simulated days of a province (the cohort's enrolments, then doses, tests and stock) go
through the real intake on the embedded engine, in batches of 500 events, twice, each time
into a database of its own:

- **baseline, one worker**: a lone worker judges every batch inline as it archives it;
- **two workers**: half the facilities' batches are archived by a worker that judges
  nothing, the rest by the judge, which judges its own inline and sweeps the archive after
  every batch for the other's (the 1 s timer, at its most frequent).

Reported: events/s through each, and how many alert versions each stored; the final alerts
(id, kind, status) must be the same, or the run fails.

    python -m bench.judge_sweep [--scale 1] [--days 2] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.stack import REGISTRY_FILES
from ostwatch.settings import AlertSettings, ClickHouseSettings
from producers.simulator.generator import generate
from producers.simulator.province import build_province
from producers.simulator.registry_files import write_registry
from schemas.codec import encode_raw_submission
from schemas.kafka_headers import submission_headers
from sinks.clickhouse import ClickHouse
from sinks.store import Store
from streams.alerts.engine import AlertEngine
from streams.intake.classify import RawMessage
from streams.intake.pipeline import IntakeConfig, IntakeContext
from streams.intake.service import IntakeService

RESULTS = Path(__file__).parent / "results" / "judge_sweep.json"
START = date(2024, 3, 4)


def messages(events: Sequence[dict[str, Any]], source: str) -> list[RawMessage]:
    """One unvalidated line a message, numbered within ``source``, as a facility sends them."""
    return [
        RawMessage(
            encode_raw_submission(orjson.dumps(event), "sent unvalidated"),
            submission_headers(source, seq),
            "ostwatch.events",
            0,
            seq,
        )
        for seq, event in enumerate(events, 1)
    ]


def worker(store: Store) -> IntakeService:
    alerts = AlertEngine(store, AlertSettings(), live=True)
    service = IntakeService(
        IntakeContext(store, IntakeConfig(retry_max_s=1.0, registry_refresh_s=60), alerts)
    )
    service.warm_up()
    return service


def open_store(chdb_dir: Path, registry: dict[str, str]) -> tuple[ClickHouse, Store]:
    db = ClickHouse.connect(ClickHouseSettings(database=f"judge_{uuid.uuid4().hex[:8]}"), chdb_dir)
    store = Store(db)
    store.migrate()
    store.load_registry(registry, "bench")
    return db, store


def final_alerts(db: ClickHouse) -> set[tuple[str, str, str]]:
    rows = db.query_rows("SELECT alert_id, kind, status FROM alerts FINAL")
    return {(str(a), str(b), str(c)) for a, b, c in rows}


async def one_worker(store: Store, batches: list[list[RawMessage]]) -> float:
    judge = worker(store)
    started = time.perf_counter()
    for batch in batches:
        await judge.process(batch)
    return time.perf_counter() - started


async def two_workers(store: Store, batches: list[list[RawMessage]], theirs: set[int]) -> float:
    judge, other = worker(store), worker(store)
    judge.alert_role.assigned({0}, 2)
    other.alert_role.assigned({1}, 2)
    started = time.perf_counter()
    for index, batch in enumerate(batches):
        await (other if index in theirs else judge).process(batch)
        await judge.judge_between_batches()
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    province = build_province(scale=args.scale, seed=1)
    events = [item.event for item in generate(province, start=START, days=args.days, seed=1)]
    with tempfile.TemporaryDirectory() as tmp:
        write_registry(province, Path(tmp))
        registry = {n: (Path(tmp) / n).read_text(encoding="utf-8") for n in REGISTRY_FILES}
    # Facilities split between the two workers' partitions; each side's events in batches of
    # their own, the two sides read at once (interleaved in event time).
    events.sort(key=lambda e: datetime.fromisoformat(e["occurred_at"]))
    other_half = set(sorted({e["facility_id"] for e in events})[1::2])
    batches: list[tuple[list[dict[str, Any]], bool]] = []
    for theirs in (False, True):
        side = [e for e in events if (e["facility_id"] in other_half) == theirs]
        batches += [(side[i : i + args.batch], theirs) for i in range(0, len(side), args.batch)]
    batches.sort(key=lambda pair: datetime.fromisoformat(pair[0][0]["occurred_at"]))
    framed = [messages(batch, f"bench:{n}") for n, (batch, _) in enumerate(batches)]
    theirs_framed = {n for n, (_, theirs) in enumerate(batches) if theirs}

    chdb_dir = Path(tempfile.mkdtemp(prefix="ostwatch-judge-"))
    db1, store1 = open_store(chdb_dir, registry)
    alone_s = asyncio.run(one_worker(store1, framed))
    db2, store2 = open_store(chdb_dir, registry)
    pair_s = asyncio.run(two_workers(store2, framed, theirs_framed))
    alone, pair = final_alerts(db1), final_alerts(db2)
    versions = [db.query_rows("SELECT count() FROM alerts")[0][0] for db in (db1, db2)]
    for db in (db1, db2):
        db.command(f"DROP DATABASE IF EXISTS `{db.database}`")
    return {
        "events": len(events),
        "batches": len(framed),
        "batches_by_the_other_worker": len(theirs_framed),
        "one_worker": {"seconds": round(alone_s, 2), "events_per_s": round(len(events) / alone_s)},
        "two_workers": {"seconds": round(pair_s, 2), "events_per_s": round(len(events) / pair_s)},
        "cost_ratio": round(pair_s / alone_s, 2),
        "alerts": len(alone),
        "alert_versions": {"one_worker": versions[0], "two_workers": versions[1]},
        "same_alerts": alone == pair,
        "only_one_worker": len(alone - pair),
        "only_two_workers": len(pair - alone),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="simulated province ×")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500, help="events per intake batch")
    result = run(parser.parse_args())
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    if not result["same_alerts"]:
        raise SystemExit("the two-worker alerts differ from one worker's")


if __name__ == "__main__":
    main()
