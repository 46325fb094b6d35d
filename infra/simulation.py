"""The simulated province fed to a running stack in the background (``ostwatch up
--simulate``, ``ostwatch simulate``): its registry loaded first, then its events published
as producers/feed.py paces them."""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from infra.application.client import RemoteOperations
from infra.application.registry import REGISTRY_FILES, RegistryLoadRequest
from ostwatch.settings import BrokerSettings, StreamSettings
from ostwatch.timeutil import LOCAL_TZ
from producers.feed import demo_window, feed
from producers.publisher import EventPublisher
from producers.simulator.generator import generate
from producers.simulator.province import build_province
from producers.simulator.registry_files import write_registry

log = logging.getLogger(__name__)


class SimulationFeeder(threading.Thread):
    """Publishes the simulated province in the background while the stack runs."""

    def __init__(self, target: Callable[[SimulationFeeder], None]) -> None:
        super().__init__(name="simulator", daemon=True)
        self._body = target
        self.sent = 0
        self.sim_clock: datetime | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._body(self)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("simulator stopped")


def start_simulation(
    info: Any,
    speed: float | None,
    seed: int,
    days: int,
    stop: threading.Event,
    *,
    broker: BrokerSettings,
    stream: StreamSettings,
    province: Any = None,
    start: date | None = None,
) -> SimulationFeeder:
    """Load the simulated province's registry into the stack, then feed its events.

    With ``start``, exactly ``days`` days from it; without, the demo: ``days`` days of
    history ending now, compressed by ``speed``, then on live (producers/feed.py). ``broker``
    and ``stream`` are the settings the command built (its security, the event bounds).
    """
    if start is None:
        start, days = demo_window(days, datetime.now(LOCAL_TZ).date())
    province = province or build_province(seed=seed, target_year=start.year)
    with tempfile.TemporaryDirectory() as tmp:
        write_registry(province, Path(tmp), live_from=start)
        files = {name: (Path(tmp) / name).read_text(encoding="utf-8") for name in REGISTRY_FILES}
    RemoteOperations.of(info).registry_load(RegistryLoadRequest(files=files, source="simulator"))

    def body(thread: SimulationFeeder) -> None:
        with EventPublisher(
            info.bootstrap,
            info.events_topic,
            source=f"simulator:{seed}:{start.isoformat()}",
            security=broker.kafka_python_security(),
            bounds=stream.event_bounds(),
        ) as publisher:

            def progress(sent: int, clock: datetime) -> None:
                thread.sent, thread.sim_clock = sent, clock

            feed(
                generate(province, start=start, days=days, seed=seed),
                publisher,
                speed=speed,
                stop=stop,
                on_progress=progress,
            )

    feeder = SimulationFeeder(body)
    feeder.start()
    return feeder
