"""Sustained load: national mornings compressed in time, for ten minutes and more.

A national morning (the simulated province ×40: ≈50,000 doses between 06:00 and 10:00, plus
tests, stock counts and the rest) is published one Kafka message per event at its own event
time compressed ``--compression`` times (60: four hours in four minutes, the 07:00 peak
near 360 events/s), morning after morning (new event_ids, next day) for ``--minutes``.
The cohort behind it (≈67,000 enrolments and take-home approvals) is loaded first and is
not part of the sustained measure. Then one more morning is published as fast as the
publisher goes, to show backpressure: the backlog waits in Kafka, the worker's memory
stays put, and nothing is lost.

Reported: per minute, events offered and decided per second, the backlog and the worker's
resident memory; for the sustained phase, the memory's trend (MB per minute, least squares
over the second half) and freshness p50/p99 (the worker's own histogram, Kafka timestamp →
archived and aggregated, and probes polled through the dispensing report); at the end,
every published event decided exactly once. The baseline, measured in the same run, is the
worker at rest after the cohort: the memory a bounded worker must stay near.

    python -m bench.load [--minutes 10] [--compression 60] [--scale 40] [--alerts on|off]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.freshness import Prober, accepted, morning, renamed, summary
from bench.stack import fresh_stack
from infra.gateway import HttpGateway, StackInfo
from infra.progress import Progress
from producers.publisher import EventPublisher

RESULTS = Path(__file__).parent / "results" / "load.json"
COHORT_TYPES = ("patient.enrolled", "patient.take_home_approved")
SAMPLE_EVERY_S = 5.0


def split_cohort(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the cohort set up before 06:00, the morning's own events) of one simulated day."""
    cohort = [
        e
        for e in events
        if e["event_type"] in COHORT_TYPES and datetime.fromisoformat(e["occurred_at"]).hour < 6
    ]
    ids = {e["event_id"] for e in cohort}
    return cohort, [e for e in events if e["event_id"] not in ids]


@dataclass
class Sample:
    at_s: float
    published: int
    decided: int
    memory_mb: float


@dataclass(eq=False)
class Sampler(threading.Thread):
    """Every few seconds: what the worker decided and its resident memory."""

    info: StackInfo
    published: Callable[[], int]
    started: float = field(default_factory=time.perf_counter)
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY_S):
            status = worker_status(self.info)
            intake = status["intake"]
            self.samples.append(
                Sample(
                    round(time.perf_counter() - self.started, 1),
                    self.published(),
                    intake["accepted"] + intake["rejected"] + intake["duplicates"],
                    status["memory_mb"],
                )
            )


def worker_status(info: StackInfo) -> dict[str, Any]:
    _, status = info.api("/api/status", timeout=30)
    return status


def decided(info: StackInfo) -> int:
    intake = worker_status(info)["intake"]
    return int(intake["accepted"] + intake["rejected"] + intake["duplicates"])


def publish(
    info: StackInfo,
    events: list[dict[str, Any]],
    source: str,
    counter: list[int],
    compression: float | None,
    rate: float | None = None,
) -> None:
    """Send ``events`` at their compressed event time (or at ``rate``/s, or flat out)."""
    first = datetime.fromisoformat(events[0]["occurred_at"])
    started = time.perf_counter()
    with EventPublisher(info.bootstrap, info.events_topic, source=source) as publisher:
        for index, event in enumerate(events):
            if compression:
                offset = (datetime.fromisoformat(event["occurred_at"]) - first).total_seconds()
                due = offset / compression
            else:
                due = index / rate if rate else 0.0
            delay = started + due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            publisher.publish(event)
            counter[0] += 1
        publisher.flush()


def wait_decided(info: StackInfo, target: int, timeout: float = 1800) -> float:
    started = time.perf_counter()
    while decided(info) < target:
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"only {decided(info)} of {target} decided after {timeout:.0f} s")
        time.sleep(0.5)
    return time.perf_counter() - started


def per_minute(samples: list[Sample]) -> list[dict[str, Any]]:
    rows, previous = [], None
    for sample in samples:
        if previous is not None and int(sample.at_s // 60) == int(previous.at_s // 60):
            continue
        if previous is not None:
            span = sample.at_s - previous.at_s
            rows.append(
                {
                    "minute": int(sample.at_s // 60),
                    "offered_per_s": round((sample.published - previous.published) / span, 1),
                    "decided_per_s": round((sample.decided - previous.decided) / span, 1),
                    "backlog": sample.published - sample.decided,
                    "memory_mb": sample.memory_mb,
                }
            )
        previous = sample
    return rows


def trend_mb_per_minute(samples: list[Sample]) -> float:
    """Least-squares slope of resident memory over the second half of the samples."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return 0.0
    slope = statistics.linear_regression([s.at_s for s in half], [s.memory_mb for s in half])
    return round(slope.slope * 60, 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    cohort, day = split_cohort(morning(args.scale))
    doses = sum(e["event_type"] == "dose.dispensed" for e in day)
    print(f"cohort {len(cohort):,} events; one morning {len(day):,} events ({doses:,} doses)")
    with fresh_stack("ostwatch-load-", scale=args.scale, alerts=args.alerts == "on") as info:
        gateway = HttpGateway.of(info)
        counter = [0]
        started = time.perf_counter()
        publish(info, cohort, "load:cohort", counter, None, rate=1000)
        wait_decided(info, len(cohort))
        cohort_s = time.perf_counter() - started
        at_rest = worker_status(info)["memory_mb"]
        print(f"cohort decided in {cohort_s:.0f} s; worker at rest {at_rest} MB")

        info.api("/api/freshness/reset", body={})
        prober = Prober(info, 0, alerts=False)
        # Everything decided counts against everything sent: the cohort, mornings, probes.
        sampler = Sampler(info, lambda: counter[0] + prober.sent)
        sampler.start()
        prober.start()
        morning_s = 4 * 3600 / args.compression
        mornings = max(1, -(-int(args.minutes * 60) // int(morning_s)))
        sustained = []
        with Progress(enabled=True) as progress:
            task = progress.add("sustained mornings", total=mornings)
            for number in range(1, mornings + 1):
                events = renamed(day, number)
                sustained += events
                publish(info, events, f"load:morning-{number}", counter, args.compression)
                progress.advance(task)
        sustained_s = time.perf_counter() - sampler.started
        behind_s = wait_decided(info, len(cohort) + len(sustained) + prober.sent)
        prober.stop.set()
        prober.join()
        worker = worker_status(info)["intake"]["freshness"]
        sustained_samples = list(sampler.samples)

        burst = renamed(day, mornings + 1)
        burst_started = time.perf_counter()
        publish(info, burst, "load:burst", counter, None)
        burst_published_s = time.perf_counter() - burst_started
        total = len(cohort) + len(sustained) + len(burst) + prober.sent
        burst_s = burst_published_s + wait_decided(info, total)
        sampler.stop.set()
        sampler.join()
        burst_samples = [s for s in sampler.samples if s.at_s > sustained_samples[-1].at_s]

        sources = ["load:cohort", *(f"load:morning-{n}" for n in range(1, mornings + 1))]
        counts = {
            source: gateway.call("submission_counts", source=source)
            for source in [*sources, "load:burst"]
        }
        decided_total = sum(sum(c.values()) for c in counts.values())
        published = len(cohort) + len(sustained) + len(burst)
        return {
            "scale": args.scale,
            "compression": args.compression,
            "alerts": args.alerts,
            "cohort_events": len(cohort),
            "cohort_decided_s": round(cohort_s, 1),
            "morning_events": len(day),
            "morning_doses": doses,
            "baseline_memory_mb_at_rest": at_rest,
            "sustained": {
                "mornings": mornings,
                "events": len(sustained),
                "published_s": round(sustained_s, 1),
                "offered_per_s": round(len(sustained) / sustained_s, 1),
                "caught_up_after_s": round(behind_s, 1),
                "worker_freshness": worker,
                "probe_visible": summary(prober.visible_ms),
                "memory_mb_max": max(s.memory_mb for s in sustained_samples),
                "memory_trend_mb_per_min": trend_mb_per_minute(sustained_samples),
                "per_minute": per_minute(sustained_samples),
            },
            "burst": {
                "events": len(burst),
                "published_per_s": round(len(burst) / burst_published_s, 1),
                "decided_per_s": round(len(burst) / burst_s, 1),
                "backlog_max": max((s.published - s.decided for s in burst_samples), default=0),
                "memory_mb_max": max((s.memory_mb for s in burst_samples), default=None),
            },
            "published": published,
            "decided": decided_total,
            "exact": decided_total == published,
            "counts": counts,
            "accepted_by_worker": accepted(info),
        }


def print_report(result: dict[str, Any]) -> None:
    sustained, burst = result["sustained"], result["burst"]
    print(f"\n{'minute':>6} {'offered/s':>10} {'decided/s':>10} {'backlog':>8} {'RSS MB':>7}")
    for row in sustained["per_minute"]:
        print(
            f"{row['minute']:>6} {row['offered_per_s']:>10,.0f} {row['decided_per_s']:>10,.0f} "
            f"{row['backlog']:>8,} {row['memory_mb']:>7}"
        )
    worker, probe = sustained["worker_freshness"], sustained["probe_visible"]
    print(
        f"\nsustained {sustained['mornings']} mornings, {sustained['events']:,} events in "
        f"{sustained['published_s']:.0f} s ({sustained['offered_per_s']:,.0f}/s offered); "
        f"caught up {sustained['caught_up_after_s']} s after the last was published\n"
        f"freshness: worker p50 {worker['p50_ms']} / p99 {worker['p99_ms']} ms; probes visible "
        f"p50 {probe['p50_ms']} / p99 {probe['p99_ms']} ms (n={probe['samples']})\n"
        f"memory: at rest {result['baseline_memory_mb_at_rest']} MB (baseline), max "
        f"{sustained['memory_mb_max']} MB, trend {sustained['memory_trend_mb_per_min']} MB/min\n"
        f"burst: {burst['events']:,} events published at {burst['published_per_s']:,.0f}/s, "
        f"decided at {burst['decided_per_s']:,.0f}/s, backlog up to {burst['backlog_max']:,} "
        f"in Kafka, memory max {burst['memory_mb_max']} MB\n"
        f"exact: {result['decided']:,} decided of {result['published']:,} published "
        f"({'every one once' if result['exact'] else 'MISMATCH'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="sustained phase, at least")
    parser.add_argument("--compression", type=float, default=60.0, help="event time ÷ wall time")
    parser.add_argument("--scale", type=float, default=40.0, help="simulated province ×")
    parser.add_argument("--alerts", choices=("on", "off"), default="on")
    args = parser.parse_args()
    result = run(args)
    print_report(result)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"results in {RESULTS}")
    if not result["exact"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
