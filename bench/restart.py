"""A worker restarted on a national year's archive: until ready, until the first new event is
decided, and its memory after warm-up.

A year (``bench.report_latency.generate``: ~18 million events at the defaults) is generated
straight into the ClickHouse of a fresh data directory and brought to the state a live
system keeps it in: aggregates built, every event chained, patient events indexed for the
alerts and judged up to the newest one (each of these is timed: it is what a first start
would otherwise do). Then, measured:

1. ``ostwatch up`` on that directory: seconds until ``/api/status`` says ready, and the
   worker's own warm-up from its log (duplicate filter, registry, reconcile, chain repair);
2. one new event published: seconds until it is decided;
3. the worker killed (``kill -9``) under the running supervisor: seconds until its
   replacement is ready (the supervisor's restart back-off included) and until a new event
   is decided;

and the worker's resident memory after each warm-up. Preparation runs in a child process,
because the embedded ClickHouse admits one process per directory; with ``--data-dir`` a
later run reuses the year prepared there (about 11 minutes on 2 shared cores).

    python -m bench.restart [--patients 50000] [--facilities 300] [--days 366] [--data-dir D]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report_latency import YEAR, generate, settle, year_arguments, year_store
from infra.gateway import GatewayError, HttpGateway, StackInfo
from ostwatch.settings import AlertSettings
from producers.publisher import EventPublisher
from streams.alerts.engine import AlertEngine

RESULTS = Path(__file__).parent / "results" / "restart.json"
CLI = (sys.executable, "-m", "infra.cli")
DATABASE = "ostwatch"  # the worker's default database
SETTLE_S = 30.0  # memory is read again this long after the first event (timers have run)


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the year and bring it to a live system's state; returns the timings."""
    store = year_store(args, DATABASE)
    db = store.db
    timings: dict[str, Any] = {}

    def step(name: str, call: Any) -> Any:
        started = time.perf_counter()
        result = call()
        timings[f"{name}_s"] = round(time.perf_counter() - started, 1)
        print(f"{name}: {timings[f'{name}_s']} s", flush=True)
        return result

    counts = step("generate", lambda: generate(db, args.patients, args.facilities, args.days))
    timings["events"] = sum(counts.values())
    step("rebuild_aggregates", store.aggregates.rebuild)
    step("chain_archive", store.chain.repair)
    engine = AlertEngine(store, AlertSettings())
    step("index_patient_events", engine.table.reindex_missing)
    newest = store.archive.latest_received()
    if newest is not None:
        engine.table.advance(newest)
    # The alerts of the latest events, as the judge of a live system stored them: else the
    # first judgement after the start would raise them all (an artefact of generated data).
    margin = timedelta(seconds=engine.settings.sweep_margin_s)
    step("judge_latest", lambda: engine.commit(engine.catch_up(margin)[0]))
    step("settle_merges", lambda: settle(db))
    db.close()
    return timings


def worker_pid(supervisor: int) -> int | None:
    """The worker child of the supervisor (from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == supervisor and b"worker" in cmdline:
            return int(entry.name)
    return None


def status(info: StackInfo) -> dict[str, Any] | None:
    try:
        _, doc = info.api("/api/status", timeout=5)
    except GatewayError:
        return None
    return doc if isinstance(doc, dict) else None


def wait_ready(data_dir: Path, since: float, timeout: float, not_pid: int | None = None) -> float:
    """Seconds from ``since`` until a worker (other than ``not_pid``) reports ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = StackInfo.read(data_dir)
        doc = status(info) if info is not None else None
        ready = info is not None and doc is not None and bool(doc.get("ready"))
        if (
            ready
            and info is not None
            and (not_pid is None or worker_pid(info.supervisor_pid) not in (None, not_pid))
        ):
            return time.monotonic() - since
        time.sleep(0.2)
    raise TimeoutError(f"no worker ready within {timeout:.0f} s; see {data_dir}/logs")


def new_event(facilities: int) -> dict[str, Any]:
    """A dose at a generated facility for a generated patient, happening now."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "dose.dispensed",
        "schema_version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "facility_id": f"TF-{7 % facilities:03d}",
        "patient_ref": "pat-bench-000007",
        "item": "MET10",
        "dose_mg": 60,
        "mode": "observed",
    }


def time_to_decide(
    info: StackInfo, facilities: int, timeout: float = 600
) -> tuple[float, dict[str, int]]:
    """Publish one new event; seconds until it is decided, and how."""
    gateway = HttpGateway.of(info)
    with EventPublisher(info.bootstrap, info.events_topic) as publisher:
        started = time.monotonic()
        publisher.publish(new_event(facilities))
        publisher.flush()
        source = publisher.source
    deadline = started + timeout
    while time.monotonic() < deadline:
        counts: dict[str, int] = gateway.call("submission_counts", source=source)
        if sum(counts.values()) >= 1:
            return time.monotonic() - started, counts
        time.sleep(0.1)
    raise TimeoutError(f"the new event was not decided within {timeout:.0f} s")


def warm_up_log(data_dir: Path) -> list[dict[str, Any]]:
    """The worker's own account of each warm-up (``intake warm: …``)."""
    found = []
    for line in (data_dir / "logs" / "worker.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if str(record.get("msg", "")).startswith(("intake warm:", "alerts caught up")):
            found.append({"ts": record["ts"], "msg": record["msg"]})
    return found


def measure(data_dir: Path, facilities: int, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "OSTWATCH_SUPERVISOR_READY_TIMEOUT_S": str(timeout)}
    log = (data_dir.parent / "up.log").open("ab")
    started = time.monotonic()
    stack = subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data_dir), "--no-live"], stdout=log, stderr=log, env=env
    )
    try:
        result: dict[str, Any] = {"first_start": {}, "after_kill": {}}
        first = result["first_start"]
        first["ready_s"] = round(wait_ready(data_dir, started, timeout), 1)
        info = StackInfo.read(data_dir)
        assert info is not None
        first["memory_mb_at_ready"] = (status(info) or {}).get("memory_mb")
        seconds, counts = time_to_decide(info, facilities)
        first["first_new_event_decided_s"] = round(seconds, 2)
        first["first_new_event"] = counts
        first["memory_mb_after_first_event"] = (status(info) or {}).get("memory_mb")
        time.sleep(SETTLE_S)
        first["memory_mb_settled"] = (status(info) or {}).get("memory_mb")
        print(f"first start: {first}", flush=True)

        victim = worker_pid(info.supervisor_pid)
        assert victim is not None
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        again = result["after_kill"]
        again["ready_s"] = round(wait_ready(data_dir, killed, timeout, not_pid=victim), 1)
        again["memory_mb_at_ready"] = (status(info) or {}).get("memory_mb")
        seconds, counts = time_to_decide(info, facilities)
        again["first_new_event_decided_s"] = round(seconds, 2)
        again["memory_mb_after_first_event"] = (status(info) or {}).get("memory_mb")
        time.sleep(SETTLE_S)
        again["memory_mb_settled"] = (status(info) or {}).get("memory_mb")
        print(f"after kill -9: {again}", flush=True)
        result["worker_log"] = warm_up_log(data_dir)
        return result
    finally:
        stack.send_signal(signal.SIGTERM)
        stack.wait(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    year_arguments(parser, 50_000)
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=1800.0, help="Longest wait for ready.")
    args = parser.parse_args()
    if args.prepare_only:
        print(json.dumps(prepare(args)), flush=True)
        return
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))  # stop the stack too
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="ostwatch-restart-")) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    prepared = data_dir.parent / "prepared.json"
    if prepared.exists():  # a year generated by an earlier run into this --data-dir
        preparation = json.loads(prepared.read_text(encoding="utf-8"))
        print(f"reusing the year prepared in {data_dir}: {preparation}")
    else:
        child = subprocess.run(
            [sys.executable, "-m", "bench.restart", "--prepare-only", "--data-dir", str(data_dir),
             "--patients", str(args.patients), "--facilities", str(args.facilities),
             "--days", str(args.days)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        print(child.stdout, end="")
        preparation = json.loads(child.stdout.strip().splitlines()[-1])
        prepared.write_text(json.dumps(preparation), encoding="utf-8")
    measured = measure(data_dir, args.facilities, args.timeout)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "year": YEAR,
                "patients": args.patients,
                "facilities": args.facilities,
                "days": args.days,
                "preparation": preparation,
                **measured,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"results in {RESULTS}")


if __name__ == "__main__":
    main()
