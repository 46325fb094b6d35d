"""ostwatch's Faust worker against a plain consumer and Quix Streams, on the same work.

Three pipelines consume the raw events topic of a fresh embedded stack (a new Tansu broker,
its topics created with the stack's partition count, and a new chDB directory with the
fixture registry loaded) — a fresh stack for every measurement of every pipeline:

- ours: `ostwatch up` (the Faust worker: `stream.take_events` batches handed to
  ``IntakeService.process`` — decode, validate, duplicate filter, archive + hash chain,
  aggregate refresh, submission rows);
- quix: Quix Streams 3.x, an ``Application`` whose ``BatchingSink`` hands each checkpoint
  (every 0.25 s or 5,000 messages, our batch bounds) to the same ``IntakeService.process``:
  the same domain work, so the gap is the framework and its batching (bench/pipelines.py);
- plain: kafka-python ``KafkaConsumer``; per message our decode/validate
  (``IntakeService.decide``), then ONE INSERT of one archive row per event and an offset
  commit — the naive baseline, doing *less* (no chain, aggregates or submission rows).

All three run with the alert engine OFF (OSTWATCH_ALERT_ENABLED=false; the default worker
judges alerts, which the Quix and plain pipelines do not implement); the hash chain and the
personal-data check are on wherever the intake runs. Nothing is sent to the dead-letter
topic (the files have no bad lines).

Measured, in the same run:

- throughput: the same generated dispensing file (``--events``, like bench/ingest_throughput)
  published as `ostwatch ingest` does (``EventPublisher.publish_lines``: 500 submissions a
  message), from the first send to the moment the last event is decided (ours: submission
  counts; the others report their own moment). Publishing runs in this process for all
  three, so no pipeline pays a Python start-up; every event must end archived (checked).
- freshness: the same kind of events published one Kafka message per event, as facilities
  send them, at ``--rate`` for ``--seconds``; every message's latency from its Kafka
  timestamp to the moment its batch is archived (and, for ours and quix, its aggregates
  refreshed) — the worker's own ``LatencyHistogram`` in each pipeline — p50/p99, and the
  sustained rate (events decided / time from first send to last decided). A pipeline that
  has not caught up ``--drain`` seconds after publishing ends is stopped: its backlog is
  reported and a percentile that falls in it is a lower bound (the time since publishing
  ended). The plain consumer's throughput is likewise cut at ``--cap`` seconds.

Every pipeline first decides a small warm-up file (group join, first fetches) that is not
measured. Run: ``make bench-compare`` or ``python -m bench.compare [--events 100000]
[--rate 2000] [--seconds 60] [--pipelines ours,quix,plain] [--format json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench.ingest_throughput import make_events, start_stack
from infra.broker import EmbeddedBroker, ensure_topics
from infra.gateway import HttpGateway, StackInfo
from infra.progress import Progress
from ostwatch.settings import BrokerSettings, load
from producers.publisher import EventPublisher

PIPELINES = ("ours", "quix", "plain")
LABELS = {
    "ours": "ostwatch (Faust worker)",
    "quix": "Quix Streams 3.x",
    "plain": "plain consumer, 1 row/INSERT",
}
WARM_UP_EVENTS = 200


class Pipeline(Protocol):
    """A running pipeline on its own fresh stack."""

    bootstrap: str
    topic: str

    def decided(self) -> tuple[int, float]:
        """Messages' events decided so far, and the wall-clock time of the latest."""

    def reset_freshness(self) -> None: ...

    def freshness(self) -> dict[str, Any]: ...

    def archived(self, source: str) -> int:
        """After the run: how many events of ``source`` ClickHouse holds archived."""


class OursStack:
    """`ostwatch up` on a fresh data directory, the registry loaded through the CLI."""

    def __init__(self, root: Path) -> None:
        self.data_dir = root / "data"
        self.process = start_stack(self.data_dir)
        info = StackInfo.read(self.data_dir)
        assert info is not None  # `status --wait` returned, so it is written
        self.info = info
        self.bootstrap, self.topic = info.bootstrap, info.events_topic
        self.gateway = HttpGateway.of(info)
        time.sleep(2.5)  # the worker picks the registry up within registry_refresh_s (2 s)

    def _status(self) -> dict[str, Any]:
        _, status = self.info.api("/api/status", timeout=10)
        return dict(status["intake"])

    def decided(self) -> tuple[int, float]:
        intake = self._status()
        decided = intake["accepted"] + intake["rejected"] + intake["duplicates"]
        return int(decided + intake["redelivered"]), time.time()

    def reset_freshness(self) -> None:
        self.info.api("/api/freshness/reset", body={})

    def freshness(self) -> dict[str, Any]:
        return dict(self._status()["freshness"])

    def archived(self, source: str) -> int:
        return int(self.gateway.call("submission_counts", source=source)["accepted"])

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


class ChildStack:
    """A fresh Tansu broker and one bench/pipelines.py process with its own chDB directory."""

    def __init__(self, kind: str, root: Path) -> None:
        settings = load(BrokerSettings)
        self.broker = EmbeddedBroker(log_path=root / "broker.log")
        self.broker.start()
        self.bootstrap, self.topic = self.broker.bootstrap, settings.events_topic
        ensure_topics(self.bootstrap, {self.topic: settings.partitions})
        self.status_path = root / "status.json"
        self.log = (root / "pipeline.log").open("wb")
        command = [sys.executable, "-m", "bench.pipelines", kind, "--bootstrap", self.bootstrap]
        command += ["--topic", self.topic, "--data-dir", str(root / "data")]
        self.process = subprocess.Popen(
            [*command, "--status", str(self.status_path)], stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 120
        while not self.status_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} pipeline did not start; see {root}/pipeline.log")
            time.sleep(0.1)
        self.final: dict[str, Any] = {}

    def _status(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.status_path.read_text())
        return doc

    def decided(self) -> tuple[int, float]:
        status = self._status()
        return int(status["decided"]), float(status["decided_at"])

    def reset_freshness(self) -> None:
        self.process.send_signal(signal.SIGUSR1)
        time.sleep(0.2)

    def freshness(self) -> dict[str, Any]:
        return dict(self._status()["freshness"])

    def archived(self, source: str) -> int:
        """Only one process may open its chDB: stop the pipeline and read its last word."""
        self.close()
        return int(self.final["stored"]["archived"]) - WARM_UP_EVENTS

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(120)
            self.final = self._status()
            self.log.close()
            self.broker.stop()


@contextmanager
def fresh(kind: str) -> Iterator[Pipeline]:
    """A pipeline on a stack of its own, stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"ostwatch-compare-{kind}-") as tmp:
        stack: OursStack | ChildStack = (
            OursStack(Path(tmp)) if kind == "ours" else ChildStack(kind, Path(tmp))
        )
        try:
            yield stack
        finally:
            stack.close()


def wait_decided(
    pipeline: Pipeline, target: int, deadline: float, tick: Callable[[int], None]
) -> tuple[int, float]:
    """Poll until ``target`` events are decided or the deadline passes."""
    while True:
        decided, at = pipeline.decided()
        tick(decided)
        if decided >= target or time.monotonic() > deadline:
            return decided, at
        time.sleep(0.1)  # ours answers from its /api/status: keep the polling light


def warm_up(pipeline: Pipeline) -> int:
    """Let the pipeline join its group and decide a first small file; returns its count."""
    with EventPublisher(pipeline.bootstrap, pipeline.topic, source="bench:warm-up") as publisher:
        publisher.publish_lines(enumerate(make_events(WARM_UP_EVENTS, seed=99), start=1))
        publisher.flush()
    decided, _ = wait_decided(pipeline, WARM_UP_EVENTS, time.monotonic() + 120, lambda n: None)
    if decided < WARM_UP_EVENTS:
        raise RuntimeError(f"warm-up: only {decided} of {WARM_UP_EVENTS} events decided")
    return decided


@dataclass
class Bars:
    """One progress bar per measurement on a terminal, one line per step otherwise (both on
    stderr, so that ``--format json`` keeps stdout to its one document)."""

    progress: Progress

    def task(self, description: str, total: int) -> Callable[[int], None]:
        if not sys.stderr.isatty():
            print(f"compare: {description} …", file=sys.stderr, flush=True)
        bar = self.progress.add(description, total)
        return lambda done: self.progress.update(bar, min(done, total))


def measure_throughput(kind: str, lines: list[bytes], cap_s: float, bars: Bars) -> dict[str, Any]:
    """File → every event decided and archived, events/s (the plain consumer cut at cap_s)."""
    with fresh(kind) as pipeline:
        before = warm_up(pipeline)
        tick = bars.task(f"{kind}: throughput", len(lines))
        source = f"bench:{uuid.uuid4()}"
        started = time.time()
        with EventPublisher(pipeline.bootstrap, pipeline.topic, source=source) as publisher:
            publisher.publish_lines(enumerate(lines, start=1))
            publisher.flush()
        decided, at = wait_decided(
            pipeline,
            before + len(lines),
            time.monotonic() + (cap_s if kind == "plain" else 1800),
            lambda n: tick(n - before),
        )
        done = decided - before
        complete = done >= len(lines)
        archived = pipeline.archived(source)
        if complete and archived != len(lines):
            raise RuntimeError(f"{kind}: {archived} of {len(lines)} events archived")
        return {
            "events": len(lines),
            "decided": done,
            "complete": complete,
            "seconds": round(at - started, 2),
            "events_per_s": round(done / (at - started), 1),
        }


def measure_freshness(
    kind: str, lines: list[bytes], rate: float, drain_s: float, bars: Bars
) -> dict[str, Any]:
    """One message per event at ``rate``: publish → archived latency and the sustained rate."""
    with fresh(kind) as pipeline:
        before = warm_up(pipeline)
        pipeline.reset_freshness()
        tick = bars.task(f"{kind}: freshness at {rate:,.0f}/s", len(lines))
        started = time.time()
        with EventPublisher(pipeline.bootstrap, pipeline.topic, source="bench:fresh") as publisher:
            for index, line in enumerate(lines):
                delay = started + index / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                publisher.publish_line(line)
                if index % 500 == 0:
                    tick(pipeline.decided()[0] - before)
            publisher.flush()
        published = time.time()
        decided, at = wait_decided(
            pipeline,
            before + len(lines),
            time.monotonic() + drain_s,
            lambda n: tick(n - before),
        )
        done = decided - before
        backlog = len(lines) - done
        stopped = time.time()
        seen = pipeline.freshness()
        result: dict[str, Any] = {
            "events": len(lines),
            "offered_rate": rate,
            "published_rate": round(len(lines) / (published - started), 1),
            "decided": done,
            "backlog": backlog,
            "sustained_rate": round(done / (at - started), 1),
            "freshness_decided": seen,
        }
        for share, name in ((0.50, "p50_ms"), (0.99, "p99_ms")):
            if backlog <= len(lines) * (1 - share):
                # Every undecided event is younger in the queue than any decided one, so the
                # rank-th fastest of all is the rank-th fastest of the decided.
                result[name] = seen[name] if not backlog else None
                result[f"{name}_at_least"] = None
            else:
                result[name] = None
                result[f"{name}_at_least"] = round((stopped - published) * 1000)
        return result


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


def percentile_text(result: dict[str, Any], name: str) -> str:
    if result.get(name) is not None:
        return f"{result[name]:,.0f} ms"
    bound = result.get(f"{name}_at_least")
    return f"> {bound / 1000:,.0f} s" if bound is not None else "n/a"


def table(results: dict[str, dict[str, Any]], rate: float) -> str:
    """The comparison table; ratios against ours (throughput: ours/theirs, p99: theirs/ours)."""
    ours = results.get("ours", {})
    ours_tp = ours.get("throughput", {}).get("events_per_s")
    ours_p99 = ours.get("freshness", {}).get("p99_ms")
    head = (
        f"{'pipeline':<30} | {'throughput ev/s':>16} | {'ours/it':>7} | "
        f"{f'sustained at {rate:,.0f}/s':>20} | {'p50':>9} | {'p99':>9} | {'p99 it/ours':>11}"
    )
    rows = [head, "-" * len(head)]
    for kind, result in results.items():
        tp, fr = result.get("throughput", {}), result.get("freshness", {})
        value = tp.get("events_per_s")
        tp_text = f"{value:,.0f}" if value is not None else "n/a"
        if tp and not tp["complete"]:
            tp_text += "*"
        p99 = fr.get("p99_ms") or fr.get("p99_ms_at_least")
        p99_ratio = ratio(p99, ours_p99) if kind != "ours" else None
        p99_ratio_text = "—" if kind == "ours" else f"{p99_ratio or 0:.2f}"
        if fr.get("p99_ms") is None and fr.get("p99_ms_at_least") is not None:
            p99_ratio_text = f"> {p99_ratio_text}"
        sustained = fr.get("sustained_rate")
        rows.append(
            f"{LABELS[kind]:<30} | {tp_text:>16} | "
            f"{'—' if kind == 'ours' else f'{ratio(ours_tp, value) or 0:.2f}':>7} | "
            f"{f'{sustained:,.0f}/s' if sustained is not None else 'n/a':>20} | "
            f"{percentile_text(fr, 'p50_ms'):>9} | {percentile_text(fr, 'p99_ms'):>9} | "
            f"{p99_ratio_text:>11}"
        )
    partial = [k for k, r in results.items() if r.get("throughput", {}).get("complete") is False]
    for kind in partial:
        tp = results[kind]["throughput"]
        rows.append(
            f"* {LABELS[kind]}: cut at the time cap, {tp['decided']:,} of {tp['events']:,} "
            f"events decided in {tp['seconds']:,.0f} s; the rate is over those"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="throughput file size")
    parser.add_argument("--rate", type=float, default=2000.0, help="freshness: events/s offered")
    parser.add_argument("--seconds", type=float, default=60.0, help="freshness: publishing time")
    parser.add_argument(
        "--drain", type=float, default=30.0, help="freshness: longest wait after publishing"
    )
    parser.add_argument(
        "--cap", type=float, default=60.0, help="throughput: the plain consumer's time limit"
    )
    parser.add_argument("--pipelines", default=",".join(PIPELINES))
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.pipelines.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(PIPELINES))
    if unknown or not kinds:
        parser.error(f"--pipelines takes some of {', '.join(PIPELINES)}; not {unknown}")
    os.environ["OSTWATCH_ALERT_ENABLED"] = "false"  # the same for all three (see above)
    lines = make_events(args.events)
    fresh_lines = make_events(max(1, math.ceil(args.rate * args.seconds)), seed=8)
    results: dict[str, dict[str, Any]] = {kind: {} for kind in kinds}
    load_before = os.getloadavg()
    with Progress(sys.stderr.isatty()) as progress:
        bars = Bars(progress)
        for kind in kinds:
            results[kind]["throughput"] = measure_throughput(kind, lines, args.cap, bars)
        for kind in kinds:
            results[kind]["freshness"] = measure_freshness(
                kind, fresh_lines, args.rate, args.drain, bars
            )
    load_after = os.getloadavg()
    if args.format == "json":
        doc = {
            "events": args.events,
            "rate": args.rate,
            "seconds": args.seconds,
            "alerts": False,
            "load_average": {"before": load_before, "after": load_after},
            "pipelines": results,
        }
        print(json.dumps(doc))
        return
    print(
        f"throughput: {args.events:,} events from a file; freshness: one message per event at "
        f"{args.rate:,.0f}/s for {args.seconds:,.0f} s; alert engine off in all three"
    )
    print(table(results, args.rate))
    print(
        "load average (1/5/15 min) before "
        f"{'/'.join(f'{x:.2f}' for x in load_before)}, after "
        f"{'/'.join(f'{x:.2f}' for x in load_after)}"
    )


if __name__ == "__main__":
    main()
