"""Ingest throughput on the embedded stack: file → accepted in ClickHouse, in events/s.

Baselines, measured in the same run on the same file:
- publisher side: kafka-python sending the same lines as raw bytes (no validation, no Avro),
  against our EventPublisher.publish_line (parse + validate + Avro + send);
- end to end: `ostwatch ingest` (publish, Faust intake, ClickHouse, wait for every decision)
  against the lower bound of the sink alone: the same events inserted straight into a fresh
  chDB archive with the same batch size.

Run: `make bench` (or `python -m bench.ingest_throughput --events 200000`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from kafka import KafkaProducer

from infra.gateway import StackInfo
from ostwatch.settings import ClickHouseSettings
from producers.publisher import EventPublisher
from schemas.models import parse_event_line
from sinks.clickhouse import ClickHouse
from sinks.records import Accepted, IntakeBatch, MessageMeta
from sinks.store import Store

REGISTRY = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "registry"
FACILITIES = ("TF-01", "DP-01", "TF-02")


def make_events(count: int, seed: int = 7) -> list[bytes]:
    """Dispensing events like a morning burst: observed doses and some take-home handouts."""
    rng = random.Random(seed)
    start = datetime(2024, 3, 5, 6, 0, tzinfo=UTC) - timedelta(hours=7)
    lines = []
    for index in range(count):
        take_home = rng.random() < 0.15
        doc = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event_type": "dose.dispensed",
            "schema_version": 1,
            "occurred_at": (start + timedelta(seconds=index * 0.3))
            .astimezone(datetime.now().astimezone().tzinfo)
            .isoformat(timespec="seconds"),
            "facility_id": FACILITIES[index % len(FACILITIES)],
            "patient_ref": f"bench_{rng.randrange(50_000):06d}",
            "item": "MET10",
            "dose_mg": rng.choice((60, 80, 95, 110, 120)),
            "mode": "take_home" if take_home else "observed",
        }
        if take_home:
            doc["take_home_days"] = rng.randint(2, 7)
        lines.append(orjson.dumps(doc))
    return lines


def start_stack(data_dir: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, OSTWATCH_DATA_DIR=str(data_dir))
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "up", "--no-live"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cli(data_dir, "status", "--wait", "180")
    cli(data_dir, "registry", "load", str(REGISTRY))
    return process


def cli(data_dir: Path, *args: str) -> str:
    env = dict(os.environ, OSTWATCH_DATA_DIR=str(data_dir))
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return result.stdout


def bench_raw_produce(bootstrap: str, topic: str, lines: list[bytes]) -> float:
    producer = KafkaProducer(
        bootstrap_servers=[bootstrap],
        acks="all",
        enable_idempotence=False,
        linger_ms=20,
        batch_size=512 * 1024,
    )
    started = time.perf_counter()
    for line in lines:
        producer.send(topic, key=b"bench", value=line)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return len(lines) / elapsed


def bench_publisher(bootstrap: str, topic: str, lines: list[bytes]) -> float:
    publisher = EventPublisher(bootstrap, topic, source=f"bench:{uuid.uuid4()}")
    started = time.perf_counter()
    publisher.publish_lines(enumerate(lines, start=1))
    publisher.flush()
    elapsed = time.perf_counter() - started
    publisher.close()
    return len(lines) / elapsed


def bench_direct_insert(lines: list[bytes], batch: int) -> float:
    """The sink alone: validated events inserted straight into a fresh chDB archive."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(ClickHouse.connect(ClickHouseSettings(database="bench"), Path(tmp)))
        store.migrate()
        now = datetime.now(UTC)
        started = time.perf_counter()
        for first in range(0, len(lines), batch):
            chunk = IntakeBatch(
                accepted=[
                    Accepted(
                        parse_event_line(line),
                        MessageMeta("bench", first + offset, "bench", 0, first + offset, now),
                    )
                    for offset, line in enumerate(lines[first : first + batch])
                ]
            )
            store.write_intake(chunk)
        elapsed = time.perf_counter() - started
        store.close()
    return len(lines) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    lines = make_events(args.events)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        stack = start_stack(data_dir)
        try:
            info = StackInfo.read(data_dir)
            assert info is not None
            scratch = f"bench.scratch.{uuid.uuid4().hex[:8]}"
            results["raw_produce_per_s"] = bench_raw_produce(info.bootstrap, scratch, lines)
            results["publisher_per_s"] = bench_publisher(info.bootstrap, scratch, lines)
            started = time.perf_counter()
            counts = json.loads(cli(data_dir, "ingest", str(path), "--no-progress"))
            results["ingest_end_to_end_per_s"] = args.events / (time.perf_counter() - started)
            assert counts == {"accepted": args.events, "rejected": 0, "duplicates": 0}, counts
        finally:
            stack.send_signal(signal.SIGTERM)
            stack.wait(60)
    results["direct_insert_per_s"] = bench_direct_insert(lines, 5000)
    print(f"events: {args.events:,}")
    print(f"{'measure':<28}{'events/s':>12}{'ratio':>10}")
    rows = [
        ("raw kafka-python produce", results["raw_produce_per_s"], None),
        ("EventPublisher.publish_lines", results["publisher_per_s"], "raw_produce_per_s"),
        ("direct chDB insert (sink)", results["direct_insert_per_s"], None),
        ("ostwatch ingest end to end", results["ingest_end_to_end_per_s"], "direct_insert_per_s"),
    ]
    for name, value, baseline in rows:
        ratio = f"{value / results[baseline]:.2f}" if baseline else "baseline"
        print(f"{name:<28}{value:>12,.0f}{ratio:>10}")
    print(json.dumps({k: round(v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
