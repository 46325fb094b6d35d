"""Freshness: how soon an accepted event shows in every report, under a national morning.

Starts a fresh embedded stack, loads the simulated province at national scale (×30), and
publishes one local morning (06:00–10:00, ≈50,000 doses nationally) one Kafka message per
event, as facilities send them, at fixed rates and then as fast as the publisher goes.
Measured two ways:

- the worker's own histogram: every message, from its Kafka timestamp to the moment its
  batch is archived and its aggregate rows refreshed (visible in every report);
- probes from outside: every half second a dose for a quiet facility is published and the
  dispensing report polled until it shows it. The same probe's "decided" moment (its
  submission row, the foundation's end point before aggregates existed) is the baseline
  measured in the same run: the difference is what keeping the aggregates costs.
- alerts: the probe's patient was never enrolled, so each probe raises an
  inactive_patient_dosed alert; polled through `report alerts` until it shows.

Run with the alert engine off (the baseline) and on, one fresh stack each, in the same run.

    python -m bench.freshness [--rates 1000,2000,max] [--scale 30] [--alerts both|on|off]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.stack import fresh_stack
from infra.gateway import HttpGateway, StackInfo
from ostwatch.timeutil import LOCAL_TZ
from producers.publisher import EventPublisher
from producers.simulator.generator import generate
from producers.simulator.province import build_province

RESULTS = Path(__file__).parent / "results" / "freshness.json"
PROBE_FACILITY = "BG-PSY"  # the psychiatric hospital doses nobody in the simulation
MORNING_DAY = date(2024, 3, 4)
# The probes' own days, apart from the simulated morning's (and in the past: CONTRACT §1
# refuses events dated more than a day after they arrive).
PROBE_DAY = date(2025, 1, 1)


def morning(scale: float) -> list[dict[str, Any]]:
    """One simulated day's events that occur before 10:00 local, in event-time order."""
    province = build_province(scale=scale, seed=1)
    events = [
        item.event
        for item in generate(province, start=MORNING_DAY, days=1, seed=1)
        if datetime.fromisoformat(item.event["occurred_at"]).astimezone(LOCAL_TZ).hour < 10
    ]
    return sorted(events, key=lambda e: datetime.fromisoformat(e["occurred_at"]))


def renamed(events: list[dict[str, Any]], shift_days: int) -> list[dict[str, Any]]:
    """A fresh copy for another run: new event_ids (else all duplicates), shifted days."""
    copies = []
    for event in events:
        at = datetime.fromisoformat(event["occurred_at"]) + timedelta(days=shift_days)
        copies.append({**event, "event_id": str(uuid.uuid4()), "occurred_at": at.isoformat()})
    return copies


def summary(samples: list[float]) -> dict[str, float | int | None]:
    if not samples:
        return {"samples": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(samples)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)], 1)

    return {
        "samples": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1], 1),
    }


class Prober(threading.Thread):
    """One probe dose in flight at a time: publish, then poll until decided and visible."""

    def __init__(self, info: StackInfo, run: int, alerts: bool) -> None:
        super().__init__(daemon=True)
        self.alerts = alerts
        self.gateway = HttpGateway.of(info)
        self.source = f"probe:{uuid.uuid4()}"
        self.publisher = EventPublisher(info.bootstrap, info.events_topic, source=self.source,
                                        linger_ms=0)  # fmt: skip
        self.day = PROBE_DAY + timedelta(days=run)
        self.run_number = run
        self.stop = threading.Event()
        self.decided_ms: list[float] = []
        self.visible_ms: list[float] = []
        self.alert_ms: list[float] = []
        self.sent = 0

    def _visible(self) -> int:
        rows = self.gateway.call(
            "report_dispensing",
            facilities=[PROBE_FACILITY],
            date_from=self.day.isoformat(),
            date_to=self.day.isoformat(),
        )
        return int(rows[0]["observed_doses"]) if rows else 0

    def patient(self, sent: int) -> str:
        return f"probe{self.run_number}-{sent:08d}"

    def _alerted(self, patient: str) -> bool:
        """The probe's patient was never enrolled: its dose must raise inactive_patient_dosed."""
        rows = self.gateway.call(
            "report_alerts", facilities=[PROBE_FACILITY], kinds=["inactive_patient_dosed"]
        )
        return any(row["subject"] == patient for row in rows)

    def run(self) -> None:
        while not self.stop.is_set():
            self.sent += 1
            sent = self.sent
            at = datetime(self.day.year, self.day.month, self.day.day, 8, tzinfo=LOCAL_TZ)
            started = time.perf_counter()
            self.publisher.publish(
                {"event_id": str(uuid.uuid4()), "event_type": "dose.dispensed",
                 "schema_version": 1, "occurred_at": (at + timedelta(seconds=sent)).isoformat(),
                 "facility_id": PROBE_FACILITY, "patient_ref": self.patient(sent),
                 "item": "MET10", "dose_mg": 10, "mode": "observed"}
            )  # fmt: skip
            self.publisher.flush()
            decided = None
            while time.perf_counter() - started < 30:
                if (
                    decided is None
                    and self.gateway.call("submission_counts", source=self.source)["accepted"]
                    >= sent
                ):
                    decided = (time.perf_counter() - started) * 1000
                if self._visible() >= sent:
                    self.visible_ms.append((time.perf_counter() - started) * 1000)
                    self.decided_ms.append(decided or self.visible_ms[-1])
                    break
                time.sleep(0.02)
            while self.alerts and time.perf_counter() - started < 30:
                if self._alerted(self.patient(sent)):
                    self.alert_ms.append((time.perf_counter() - started) * 1000)
                    break
                time.sleep(0.02)
            self.stop.wait(max(0.0, 0.5 - (time.perf_counter() - started)))
        self.publisher.close()


def accepted(info: StackInfo) -> int:
    _, status = info.api("/api/status", timeout=10)
    return int(status["intake"]["accepted"])


def one_run(
    info: StackInfo, events: list[dict[str, Any]], rate: float | None, run: int, alerts: bool
) -> dict[str, Any]:
    """Publish ``events`` at ``rate`` per second (None: flat out) and measure freshness."""
    info.api("/api/freshness/reset", body={})
    before = accepted(info)
    prober = Prober(info, run, alerts)
    prober.start()
    started = time.perf_counter()
    with EventPublisher(info.bootstrap, info.events_topic, source=f"bench:{run}") as publisher:
        for index, event in enumerate(events):
            if rate:
                delay = started + index / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            publisher.publish(event)
        publisher.flush()
    sent_s = time.perf_counter() - started
    while accepted(info) - before < len(events) + len(prober.visible_ms):
        if time.perf_counter() - started > 600:
            break
        time.sleep(0.1)
    decided_s = time.perf_counter() - started
    prober.stop.set()
    prober.join()
    _, status = info.api("/api/status", timeout=10)
    return {
        "target_rate": rate or "max",
        "events": len(events),
        "achieved_rate": round(len(events) / sent_s, 1),
        "sustained_rate": round(len(events) / decided_s, 1),
        "worker_freshness": status["intake"]["freshness"],
        "probe_visible": summary(prober.visible_ms),
        "probe_decided_baseline": summary(prober.decided_ms),
        "probe_alert_visible": summary(prober.alert_ms),
    }


def bench_stack(
    args: argparse.Namespace, events: list[dict[str, Any]], alerts: bool
) -> list[dict[str, Any]]:
    """Every rate against one fresh stack, with the alert engine on or off."""
    results = []
    with fresh_stack("ostwatch-fresh-", scale=args.scale, alerts=alerts) as info:
        for run, text in enumerate(args.rates.split(",")):
            rate = None if text == "max" else float(text)
            result = one_run(info, renamed(events, run + 1), rate, run, alerts)
            result |= {"rate": text, "alerts": alerts}
            results.append(result)
            worker, probe = result["worker_freshness"], result["probe_visible"]
            baseline, alert = result["probe_decided_baseline"], result["probe_alert_visible"]
            print(
                f"alerts {'on ' if alerts else 'off'} rate {text:>5}/s (achieved "
                f"{result['achieved_rate']:,.0f}/s, sustained {result['sustained_rate']:,.0f}/s): "
                f"worker p50 {worker['p50_ms']} ms, p99 {worker['p99_ms']} ms | probes visible "
                f"p50 {probe['p50_ms']} p99 {probe['p99_ms']} ms (n={probe['samples']}) | "
                f"decided p50 {baseline['p50_ms']} p99 {baseline['p99_ms']} ms | "
                f"alert visible p50 {alert['p50_ms']} p99 {alert['p99_ms']} ms"
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,2000,max")
    parser.add_argument("--scale", type=float, default=30.0)
    parser.add_argument(
        "--alerts",
        choices=("on", "off", "both"),
        default="both",
        help="with the alert engine, without it (the baseline), or both in one run",
    )
    args = parser.parse_args()
    events = morning(args.scale)
    doses = sum(e["event_type"] == "dose.dispensed" for e in events)
    print(f"national morning: {len(events):,} events, {doses:,} doses")
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.alerts]
    results = [result for alerts in modes for result in bench_stack(args, events, alerts)]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"events": len(events), "runs": results}, indent=2))
    print(f"results in {RESULTS}")


if __name__ == "__main__":
    main()
