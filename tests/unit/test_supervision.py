"""The supervisor's decisions without processes: when the watchdog replaces a worker, which
line of a dead worker's output says why it died, and when `status` says the broker is down."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.broker import free_port
from infra.offset_check import GroupPosition
from infra.stack import StackSupervisor, broker_unavailable, last_error
from infra.watchdog import Health, Watchdog
from ostwatch.settings import BrokerSettings, StackSettings, SupervisorSettings

READY = Health(answered=True, ready=True)


@pytest.fixture
def listener() -> Iterator[tuple[str, int]]:
    """A listening loopback port, standing in for a running embedded broker."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()


FROZEN = Health(answered=False)


def position(committed: int | None, end: int) -> GroupPosition:
    return GroupPosition(committed={0: committed}, start={0: 0}, end={0: end})


def watchdog_at_ready(stall_s: float = 30.0) -> Watchdog:
    dog = Watchdog(stall_s)
    dog.worker_started(now=0.0)
    assert not dog.observe(READY, position(10, 10), now=1.0)
    return dog


def test_a_worker_with_lag_that_commits_nothing_is_stalled_after_stall_s() -> None:
    dog = watchdog_at_ready()
    assert not dog.observe(FROZEN, position(10, 50), now=20.0)
    assert dog.observe(FROZEN, position(10, 50), now=31.0)
    assert dog.as_dict(now=31.0)["lag"] == 40 and dog.state == "stalled"


def test_committed_offsets_that_move_are_progress() -> None:
    dog = watchdog_at_ready()
    for now, committed in ((20.0, 20), (40.0, 30), (60.0, 40)):
        assert not dog.observe(READY, position(committed, 50), now=now)
    assert dog.observe(READY, position(40, 50), now=91.0)


def test_no_lag_is_never_a_stall() -> None:
    dog = watchdog_at_ready()
    assert not dog.observe(FROZEN, position(10, 10), now=500.0)


def test_nothing_is_judged_before_the_worker_was_ready() -> None:
    dog = Watchdog(30.0)
    dog.worker_started(now=0.0)
    assert not dog.observe(FROZEN, position(None, 100), now=600.0)
    assert dog.state == "starting"
    # Ready at 600: the clock starts there, not at the worker's start.
    assert not dog.observe(READY, position(None, 100), now=600.0)
    assert not dog.observe(READY, position(None, 100), now=620.0)
    assert dog.observe(READY, position(None, 100), now=631.0)


def test_a_worker_waiting_for_clickhouse_is_left_alone_and_its_clock_held() -> None:
    dog = watchdog_at_ready()
    waiting = Health(answered=True, ready=False, store_healthy=False)
    assert not dog.observe(waiting, position(10, 50), now=300.0)
    assert dog.state == "waiting for ClickHouse"
    assert not dog.observe(READY, position(10, 50), now=320.0)  # back: a full period again
    assert dog.observe(READY, position(10, 50), now=331.0)


def test_a_worker_deciding_a_long_batch_is_working_until_the_batch_limit() -> None:
    """The first batch after a start on a national archive waits for the alert judge's
    catch-up; a frozen worker says nothing at all, so it is not mistaken for this."""
    dog = Watchdog(30.0, batch_limit_s=120.0)
    dog.worker_started(now=0.0)
    assert not dog.observe(READY, position(10, 10), now=1.0)
    for now in (20.0, 60.0, 100.0):
        busy = Health(answered=True, ready=True, batch_s=now - 10.0)
        assert not dog.observe(busy, position(10, 11), now=now)
    assert dog.state == "deciding a batch"
    stuck = Health(answered=True, ready=True, batch_s=125.0)  # past the limit: a stall clock
    assert not dog.observe(stuck, position(10, 11), now=110.0)
    assert dog.observe(stuck, position(10, 11), now=131.0)


def test_stall_s_zero_switches_the_watchdog_off_and_an_unreadable_group_is_no_verdict() -> None:
    off = watchdog_at_ready(stall_s=0)
    assert not off.observe(FROZEN, position(10, 50), now=10_000.0)
    dog = watchdog_at_ready()
    assert not dog.observe(FROZEN, None, now=10_000.0)


TRACEBACK = """\
21:40:01 INFO    infra.worker: alert delivery on
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/venv/lib/python3.11/site-packages/infra/worker.py", line 27, in <module>
    from streams.alerts.engine import AlertEngine
ModuleNotFoundError: No module named 'streams.alerts'
"""


def test_the_last_error_of_a_worker_is_one_line() -> None:
    assert last_error(TRACEBACK) == "ModuleNotFoundError: No module named 'streams.alerts'"
    settings = "21:42:42 WARNING a: no route\nostwatch: invalid settings: Value error, x\n"
    assert last_error(settings) == "ostwatch: invalid settings: Value error, x"
    logged = "21:42:42 INFO a: b\n21:42:43 ERROR   infra.worker:   cannot   open ClickHouse\n"
    assert last_error(logged) == "21:42:43 ERROR infra.worker: cannot open ClickHouse"
    assert last_error("just this\n\n") == "just this"
    assert last_error("") is None


def test_status_is_not_ready_while_the_supervisor_says_the_broker_is_down() -> None:
    down = {"parts": {"broker": {"embedded": True, "healthy": False}}}
    assert broker_unavailable(down, "127.0.0.1:1") == (
        "the broker is down; the supervisor is restarting it"
    )


def test_status_is_not_ready_while_the_embedded_broker_port_refuses(
    listener: tuple[str, int],
) -> None:
    """Killed, not yet noticed by the supervisor: its last word still says healthy."""
    host, port = listener
    healthy = {"parts": {"broker": {"embedded": True, "healthy": True}}}
    assert broker_unavailable(healthy, f"{host}:{port}") is None
    closed = free_port()
    assert broker_unavailable(healthy, f"127.0.0.1:{closed}") == (
        f"the embedded broker at 127.0.0.1:{closed} accepts no connection"
    )
    external = {"parts": {"broker": {"embedded": False, "healthy": True}}}
    assert broker_unavailable(external, f"127.0.0.1:{closed}") is None  # not ours to probe
    assert broker_unavailable(None, f"127.0.0.1:{closed}") is None  # no supervisor state


class DeadBroker:
    """An embedded broker that has died; ``start`` notes whether the old worker was gone."""

    def __init__(self, worker: subprocess.Popen[bytes]) -> None:
        self.worker = worker
        self.worker_alive_at_start: bool | None = None

    def is_running(self) -> bool:
        return False

    def start(self, topics: object = None) -> None:
        self.worker_alive_at_start = self.worker.poll() is None


def test_a_worker_whose_broker_died_is_killed_after_the_short_grace_before_the_new_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its last commit has nowhere to go, so it does not get a clean stop's 30 s; and it must
    be gone before the new broker listens, or it could commit old offsets into it."""
    deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
    worker = subprocess.Popen([sys.executable, "-c", deaf])
    time.sleep(0.3)  # its SIGTERM handler is in place
    supervisor = StackSupervisor(
        StackSettings(data_dir=tmp_path),
        BrokerSettings(),
        SupervisorSettings(broker_lost_grace_s=1.0),
        group_id="test",
    )
    broker = DeadBroker(worker)
    supervisor._broker = broker  # type: ignore[assignment]
    supervisor._worker = worker
    monkeypatch.setattr(supervisor, "_create_topics", lambda: None)
    monkeypatch.setattr(supervisor, "_start_worker", lambda: None)
    monkeypatch.setattr(supervisor, "write_state", lambda: None)
    started = time.monotonic()
    try:
        supervisor.check_children()
    finally:
        worker.kill()
        worker.wait()
    assert 1.0 <= time.monotonic() - started < 10.0
    assert broker.worker_alive_at_start is False
    assert supervisor.broker_restarts == 1
