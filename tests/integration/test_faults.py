"""Fault tests against the real stack (Tansu broker, Faust worker, chDB): things break in the
middle of an ingest and the counts, reports and alerts must still come out exact.

The reference for "exact" is the same file ingested by a stack nobody disturbed.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra.broker import EmbeddedBroker, ensure_topics, free_port
from infra.gateway import GatewayError, HttpGateway, StackInfo
from infra.stack import WORKER_STOP_TIMEOUT_S
from ostwatch.settings import BrokerSettings
from producers.publisher import EventPublisher
from streams.alerts.reconcile import STOCK_KINDS
from tests.integration.conftest import FIXTURES, OSTWATCH, RunningStack
from tests.support.compare import assert_same_json, differences
from tests.support.events import contract_event
from tests.support.processes import child_pid, kill_hard, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPORTS = ("stock", "dispensing", "patients", "tests", "targets", "alerts")


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three simulated days of a province (events file, registry directory), with every
    event of the first day sent a second time at the end (a re-sent file)."""
    root = tmp_path_factory.mktemp("province")
    events, registry = root / "events.jsonl", root / "registry"
    subprocess.run(
        [*OSTWATCH, "simulate", "--out", str(events), "--registry-out", str(registry),
         "--start", "2024-03-01", "--days", "3", "--seed", "7"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    lines = events.read_bytes().splitlines()
    # What was sent on the first day: its events and the opening register (dated before it).
    first_day = [line for line in lines if orjson.loads(line)["occurred_at"] < "2024-03-02"]
    events.write_bytes(b"\n".join([*lines, *first_day]) + b"\n")
    return events, registry


WALL_CLOCK_FIELDS = ("noticed_at",)  # when this stack happened to notice, not what it found


def all_reports(stack: RunningStack) -> dict[str, Any]:
    """Every report; alerts keyed by ``alert_id`` (stable) without wall-clock fields."""
    found: dict[str, Any] = {name: stack.json("report", name) for name in REPORTS}
    found["alerts"] = {
        row["alert_id"]: {k: v for k, v in row.items() if k not in WALL_CLOCK_FIELDS}
        for row in found["alerts"]
    }
    return found


def assert_same_reports(actual: dict[str, Any], expected: dict[str, Any], label: str) -> None:
    """The five reports and every open alert exactly as in the undisturbed run.

    Alerts that opened and resolved in between are a history of live judgements, and for
    kinds judged from another facility's partition it depends on which partition arrived
    first (known issue, docs/operations.md): such a difference is reported as an expected
    failure, by name; any other difference in history fails.
    """
    got, want = actual["alerts"], expected["alerts"]
    assert_same_json(
        {name: rows for name, rows in actual.items() if name != "alerts"},
        {name: rows for name, rows in expected.items() if name != "alerts"},
        label,
    )
    open_got = {key: row for key, row in got.items() if row["status"] == "open"}
    open_want = {key: row for key, row in want.items() if row["status"] == "open"}
    redated = _redated_stock_episodes(open_got, open_want)
    for got_key, want_key in redated:
        del open_got[got_key], open_want[want_key]
    assert open_got.keys() == open_want.keys(), (
        f"{label}: open alerts differ: extra {[got[k] for k in open_got.keys() - open_want.keys()]}"
        f"; missing {[want[k] for k in open_want.keys() - open_got.keys()]}"
    )
    assert_same_json(open_got, open_want, f"{label}.open_alerts")
    redated_keys = {key for pair in redated for key in pair}
    history = sorted(
        key
        for key in got.keys() | want.keys()
        if got.get(key) != want.get(key) and key not in redated_keys
    )
    unexplained = [
        (got.get(key), want.get(key))
        for key in history
        if not _provisional(got.get(key), want.get(key))
    ]
    assert not unexplained, (
        f"{label}: resolved alerts differ beyond arrival order: {unexplained[:5]}"
    )
    known = []
    if redated:
        known.append(
            "a stock episode is dated by the newest event when first judged, so its start "
            f"depends on batching: {[(got[g], want[w]) for g, w in redated]}"
        )
    if history:
        known.append(
            "resolved-alert history differs (live judgement depends on batching): "
            f"{[(key, got.get(key), want.get(key)) for key in history[:5]]}"
        )
    if known:
        pytest.xfail(f"{label}: " + "; ".join(known))


# Kinds judged from state that other facilities' partitions carry (a patient's enrolment at
# another facility; the take-home approval a dispensing point's parent facility holds):
# arriving before or after that state is a matter of partition order.
CROSS_PARTITION_KINDS = frozenset({"inactive_patient_dosed", "take_home_violation"})


EPISODE_START = frozenset({"alert_id", "raised_at"})


def _redated_stock_episodes(
    open_got: dict[str, Any], open_want: dict[str, Any]
) -> list[tuple[str, str]]:
    """Open stock alerts the two runs hold for the same facility and item with the same
    status, severity, message and numbers, dated differently: a stock episode starts at the
    newest event time (T) of the judgement that first found it (known issue,
    docs/operations.md), and which events a batch held depends on batching."""

    def rest(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k not in EPISODE_START}

    def stock_only_in(one: dict[str, Any], other: dict[str, Any]) -> list[str]:
        return sorted(k for k in one.keys() - other.keys() if one[k]["kind"] in STOCK_KINDS)

    unpaired = stock_only_in(open_want, open_got)
    pairs = []
    for key in stock_only_in(open_got, open_want):
        twin = next(
            (w for w in unpaired if not differences(rest(open_got[key]), rest(open_want[w]))), None
        )
        if twin is not None:
            unpaired.remove(twin)
            pairs.append((key, twin))
    return pairs


def _provisional(got: dict[str, Any] | None, want: dict[str, Any] | None) -> bool:
    """An alert one run raised and resolved while the other never raised it, of a kind whose
    judgement depends on which partition arrived first: the only history allowed to differ."""
    if (got is None) == (want is None):
        return False
    alert = got or want
    assert alert is not None
    return alert["kind"] in CROSS_PARTITION_KINDS and alert["status"] == "resolved"


def started(path: Path, registry: Path) -> RunningStack:
    stack = RunningStack(path)
    stack.start()
    stack.cli("registry", "load", str(registry))
    return stack


def halves(events: Path, directory: Path) -> tuple[Path, Path]:
    """The events file cut in two (first and second half of its lines)."""
    lines = events.read_bytes().splitlines(keepends=True)
    first, second = directory / "first.jsonl", directory / "second.jsonl"
    first.write_bytes(b"".join(lines[: len(lines) // 2]))
    second.write_bytes(b"".join(lines[len(lines) // 2 :]))
    return first, second


def supervised_worker(stack: RunningStack) -> tuple[StackInfo, int]:
    """The running stack's file and the pid of the worker its supervisor started."""
    info = StackInfo.read(stack.data_dir)
    assert info is not None
    return info, child_pid(info.supervisor_pid, "worker")


def intake_status(stack: RunningStack) -> dict[str, Any]:
    """The worker's own counters (``/api/status``); empty while it is down."""
    info = StackInfo.read(stack.data_dir)
    assert info is not None
    try:
        _, doc = info.api("/api/status", timeout=5)
    except Exception:  # the worker is restarting; its API is not there yet
        return {}
    intake: dict[str, Any] = doc.get("intake", {})
    return intake


def ingest_in_background(stack: RunningStack, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*OSTWATCH, "ingest", str(path), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=stack.env(),
    )


def finished(ingest: subprocess.Popen[str], timeout: float = 600) -> dict[str, int]:
    out, err = ingest.communicate(timeout=timeout)
    assert ingest.returncode == 0, err[-2000:]
    counts: dict[str, int] = orjson.loads(out)
    return counts


@pytest.fixture(scope="module")
def undisturbed(
    province: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, int], dict[str, Any]]:
    """Counts and every report from a stack that ingested the province without trouble."""
    events, registry = province
    stack = started(tmp_path_factory.mktemp("undisturbed") / "data", registry)
    try:
        return stack.ingest(events), all_reports(stack)
    finally:
        stack.stop()


def test_worker_killed_mid_ingest_loses_nothing_and_counts_nothing_twice(
    province: tuple[Path, Path],
    undisturbed: tuple[dict[str, int], dict[str, Any]],
    tmp_path: Path,
) -> None:
    events, registry = province
    expected_counts, expected_reports = undisturbed
    assert expected_counts["duplicates"] > 0 and expected_counts["accepted"] > 1000
    stack = started(tmp_path / "data", registry)
    try:
        info, worker = supervised_worker(stack)
        ingest = ingest_in_background(stack, events)
        # Kill once part of the file is in ClickHouse and the rest is not.
        while intake_status(stack).get("accepted", 0) == 0:
            assert ingest.poll() is None, "the ingest finished before the worker could be killed"
            time.sleep(0.05)
        kill_hard(worker)
        counts = finished(ingest)
        assert counts == expected_counts
        assert child_pid(info.supervisor_pid, "worker") != worker  # a new worker did the rest
        assert_same_reports(all_reports(stack), expected_reports, "after kill -9")
    finally:
        stack.stop()


class BareWorker:
    """A broker and one worker started by the test itself (no supervisor), so the test
    chooses when the worker stops and starts. The CLI reaches it through the usual stack
    file, which names this test process as the supervisor."""

    def __init__(self, data_dir: Path, switch: Path) -> None:
        self.data_dir = data_dir
        self.switch = switch
        data_dir.mkdir(parents=True)
        (data_dir / "logs").mkdir()
        self.broker = EmbeddedBroker(log_path=data_dir / "logs" / "broker.log")
        self.api_port = free_port()
        self.api_token = secrets.token_urlsafe(16)
        self.process: subprocess.Popen[bytes] | None = None
        self.stack = RunningStack(data_dir)

    def start_broker(self) -> None:
        self.broker.start()
        settings = BrokerSettings()
        topics = [settings.events_topic, settings.dead_letter_topic, settings.alerts_topic]
        ensure_topics(self.broker.bootstrap, dict.fromkeys(topics, settings.partitions))
        StackInfo(
            api_url=f"http://127.0.0.1:{self.api_port}",
            bootstrap=self.broker.bootstrap,
            supervisor_pid=os.getpid(),
            events_topic=settings.events_topic,
            token=self.api_token,
        ).write(self.data_dir)

    def start_worker(self, batch_max: int = 500) -> None:
        """``batch_max`` messages per intake batch: the default makes many batches, so an
        outage can land mid-file."""
        env = self.stack.env()
        env.update(
            OSTWATCH_API_PORT=str(self.api_port),
            OSTWATCH_API_TOKEN=self.api_token,
            OSTWATCH_BROKER_BOOTSTRAP_SERVERS=self.broker.bootstrap,
            OSTWATCH_BROKER_EMBEDDED_QUIRKS="true",
            OSTWATCH_CLICKHOUSE_INSERT_RETRY_MAX_S=str(RETRY_CAP_S),
            OSTWATCH_STREAM_BATCH_MAX=str(batch_max),
            OSTWATCH_TEST_CLICKHOUSE_DOWN=str(self.switch),
        )
        with (self.data_dir / "logs" / "worker.out").open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.faulty_worker"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        assert self.stack.cli("status", "--wait", "120", check=False).returncode == 0

    def stop_worker(self) -> int:
        """Stop it as ``ostwatch up`` does: SIGTERM, then SIGKILL if it does not stop
        (the supervisor waits ``WORKER_STOP_TIMEOUT_S``); returns its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.broker.stop()


RETRY_CAP_S = 1.6
# As long as the supervisor waits: with both cores busy a worker stopping under an outage
# exited after 11-21 s, most of it closing the embedded ClickHouse after Faust had stopped
# (py-spy), so a shorter grace failed the test.
STOP_GRACE_S = WORKER_STOP_TIMEOUT_S


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def retry_delays(data_dir: Path) -> list[float]:
    """The back-off delays the worker logged, in order."""
    delays = []
    for line in (data_dir / "logs" / "worker.jsonl").read_text().splitlines():
        found = RETRY_LOG.search(line)
        if found:
            delays.append(float(found.group(1)))
    return delays


RETRY_LOG = re.compile(r"ClickHouse unavailable at stage \w+, retrying batch of \d+ in ([0-9.]+) s")


def test_clickhouse_outage_holds_offsets_and_catches_up(
    province: tuple[Path, Path],
    undisturbed: tuple[dict[str, int], dict[str, Any]],
    tmp_path: Path,
) -> None:
    events, registry = province
    expected_counts, expected_reports = undisturbed
    switch = tmp_path / "clickhouse-down"
    bare = BareWorker(tmp_path / "data", switch)
    try:
        bare.start_broker()
        bare.start_worker()
        bare.stack.cli("registry", "load", str(registry))

        first, second = halves(events, tmp_path)

        # 1. ClickHouse fails from the first batch on; the worker is stopped while it still
        #    retries. It must not commit the offsets of what it never wrote.
        switch.touch()
        ingest = ingest_in_background(bare.stack, first)
        wait_for(lambda: intake_status(bare.stack).get("write_retries", 0) >= 5, "retries")
        status = intake_status(bare.stack)
        assert status["accepted"] == 0 and not status["store_healthy"]
        assert bare.stop_worker() != -signal.SIGKILL, "SIGTERM ignored while ClickHouse is down"
        assert "stopping with a batch of" in (bare.data_dir / "logs" / "worker.jsonl").read_text()
        switch.unlink()
        bare.start_worker()  # resumes from the committed offsets
        counts = finished(ingest)

        # 2. ClickHouse fails again under a running worker and comes back: it catches up.
        switch.touch()
        ingest = ingest_in_background(bare.stack, second)
        wait_for(lambda: intake_status(bare.stack).get("write_retries", 0) >= 5, "retries")
        switch.unlink()
        more = finished(ingest)
        assert {key: counts[key] + more[key] for key in counts} == expected_counts
        delays = retry_delays(bare.data_dir)
        assert delays[:5] == [0.2, 0.4, 0.8, RETRY_CAP_S, RETRY_CAP_S]  # backs off, capped
        # Last: a difference in resolved-alert history ends the test as an expected failure.
        assert_same_reports(all_reports(bare.stack), expected_reports, "after outages")
    finally:
        switch.unlink(missing_ok=True)
        bare.close()


def test_an_error_no_retry_covers_restarts_the_worker_and_loses_nothing(
    province: tuple[Path, Path],
    undisturbed: tuple[dict[str, int], dict[str, Any]],
    tmp_path: Path,
) -> None:
    """A statement ClickHouse refuses (a bug, a limit) must not leave a worker that looks
    ready and reads nothing: it stops, and its replacement reads the batch again.

    Batches of two messages, so that later messages of the same partitions wait behind the
    refused batch: none of them may be committed (issue 14: Faust's own commit went past a
    refused batch once later messages were acknowledged, and the replacement found nothing
    to read). ``status`` checks the committed offsets against the decisions."""
    events, registry = province
    expected_counts, expected_reports = undisturbed
    switch = tmp_path / "clickhouse-refuses"
    bare = BareWorker(tmp_path / "data", switch)
    try:
        bare.start_broker()
        bare.start_worker(batch_max=2)
        bare.stack.cli("registry", "load", str(registry))
        switch.write_text("refuse")
        ingest = ingest_in_background(bare.stack, events)
        assert bare.process is not None
        assert bare.process.wait(120) is not None  # it left by itself, no signal from us
        log = (bare.data_dir / "logs" / "worker.jsonl").read_text()
        assert log.count("the intake failed on a batch; stopping this worker") == 1, (
            "Faust restarted the failed agent on later batches"
        )
        switch.unlink()
        bare.start_worker()  # what `ostwatch up` does when its worker exits
        offsets = bare.stack.json("status")["offsets"]
        assert offsets["ok"], offsets["problem"]
        assert finished(ingest) == expected_counts
        assert_same_reports(all_reports(bare.stack), expected_reports, "after a refused batch")
    finally:
        switch.unlink(missing_ok=True)
        bare.close()


def decided(gateway: HttpGateway, source: str, total: int, timeout: float = 180) -> dict[str, int]:
    """Wait until every submission of ``source`` is decided; the worker may be restarting."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while sum(counts.values()) < total:
        assert time.monotonic() < deadline, f"{source}: only {counts} of {total} decided"
        time.sleep(0.2)
        try:
            counts = gateway.call("submission_counts", source=source)
        except GatewayError:
            continue
    return counts


def doses(patient: str, day: str, n: int) -> list[dict[str, Any]]:
    return [
        contract_event("dose.dispensed", f"{day}T{8 + i:02d}:00:00+07:00", "TF-01",
                       patient_ref=patient, item="MET10", dose_mg=60, mode="observed")
        for i in range(n)
    ]  # fmt: skip


def test_broker_restart_under_a_running_producer_loses_nothing_accepted(tmp_path: Path) -> None:
    stack = started(tmp_path / "data", FIXTURES / "registry")
    try:
        info = StackInfo.read(stack.data_dir)
        assert info is not None
        gateway = HttpGateway.of(info)
        before, after = (
            doses("pat-broker-01", "2024-03-10", 6),
            doses("pat-broker-02", "2024-03-11", 6),
        )
        with EventPublisher(info.bootstrap, info.events_topic) as publisher:
            for event in before:
                publisher.publish(event)
            publisher.flush()
            assert decided(gateway, publisher.source, 6)["accepted"] == 6

            broker = child_pid(info.supervisor_pid, "tansu")
            kill_hard(broker)  # memory only: every topic and committed offset is gone
            assert stack.cli("status", "--wait", "120", check=False).returncode == 0
            assert child_pid(info.supervisor_pid, "tansu") != broker

            # The same producer, still running, reconnects to the new broker.
            for event in after:
                publisher.publish(event)
            publisher.flush(timeout=60)
            try:
                counts = decided(gateway, publisher.source, 12)
            except AssertionError as exc:  # say where the group stands (a rare failure)
                status = stack.cli("status", "--format", "json", check=False).stdout
                raise AssertionError(f"{exc}; status: {status}") from None
            assert counts["accepted"] == 12

        # ClickHouse kept everything accepted before the restart: a full re-send of those
        # events finds them all duplicates, and the reports count each dose once.
        path = tmp_path / "again.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(e) for e in before) + b"\n")
        assert stack.ingest(path) == {"accepted": 0, "rejected": 0, "duplicates": 6}
        rows = {
            r["date"]: r for r in stack.json("report", "dispensing") if r["facility_id"] == "TF-01"
        }
        assert rows["2024-03-10"]["observed_doses"] == 6
        assert rows["2024-03-11"]["observed_doses"] == 6
    finally:
        stack.stop()


def test_an_unwritable_data_directory_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"  # root may write anywhere; a file in the path stops anyone
    blocker.write_text("keep me")
    result = RunningStack(blocker / "data").cli("up", "--no-live", check=False, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("ostwatch: ") and str(blocker) in result.stderr
    assert blocker.read_text() == "keep me"  # nothing was damaged


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 300 MB tmpfs to fill up (needs root, as on the project's machines and CI)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300M", "tmpfs", str(mount_point)],
        capture_output=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until its disk is full (the worker keeps writing meanwhile)."""
    chunk = b"\0" * (1 << 20)
    with path.open("wb", buffering=0) as handle:
        while True:
            try:
                handle.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return
                chunk = chunk[: len(chunk) // 2]


def test_a_full_disk_holds_the_intake_until_space_returns(
    province: tuple[Path, Path], small_disk: Path, tmp_path: Path
) -> None:
    events, registry = province
    lines = events.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(lines[:1000]))
    second.write_bytes(b"".join(lines[1000:2000]))
    stack = started(small_disk / "data", registry)
    filler = small_disk / "filler"
    try:
        assert stack.ingest(first)["accepted"] == 1000
        fill(filler)
        ingest = ingest_in_background(stack, second)
        wait_for(lambda: intake_status(stack).get("write_retries", 0) >= 3, "retries")
        status = stack.cli("status", check=False)
        assert status.returncode != 0  # not ready while it cannot write
        assert ingest.poll() is None
        filler.unlink()
        counts = finished(ingest)
        assert sum(counts.values()) == 1000 and counts["duplicates"] == 0
        assert stack.json("report", "patients")  # the store reads fine afterwards
    finally:
        filler.unlink(missing_ok=True)
        stack.stop()


def test_a_worker_that_cannot_start_makes_up_give_up_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a restart loop forever: after K exits before the stack was ever ready, `up`
    exits non-zero with the worker's own last error on one line."""
    # Above the 14-day warning: only the worker reads these settings, and refuses them.
    monkeypatch.setenv("OSTWATCH_ALERT_STOCK_CRITICAL_DAYS", "30")
    began = time.monotonic()
    result = RunningStack(tmp_path / "data").cli(
        "up", "--no-live", "--start-failures", "2", check=False, timeout=300
    )
    assert result.returncode != 0
    given_up = [
        line for line in result.stderr.splitlines() if line.startswith("ostwatch: the stream")
    ]
    assert len(given_up) == 1, result.stderr[-3000:]
    assert "exited 2 times before the stack was ever ready" in given_up[0]
    assert "stock_critical_days must not exceed stock_warning_days" in given_up[0]
    assert time.monotonic() - began < 150
    assert not (tmp_path / "data" / "stack.json").exists()


def test_a_frozen_worker_is_replaced_by_the_watchdog_and_nothing_is_lost(
    province: tuple[Path, Path],
    undisturbed: tuple[dict[str, int], dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGSTOP: the worker holds its partitions and answers nothing. The watchdog sees the
    lag, kills it and starts another; both halves of the file are decided exactly once."""
    monkeypatch.setenv("OSTWATCH_SUPERVISOR_WATCHDOG_STALL_S", "10")
    events, registry = province
    expected_counts, expected_reports = undisturbed
    first, second = halves(events, tmp_path)
    stack = started(tmp_path / "data", registry)
    try:
        info, worker = supervised_worker(stack)
        ingest = ingest_in_background(stack, first)
        wait_for(lambda: intake_status(stack).get("accepted", 0) > 0, "the first decisions")
        os.kill(worker, signal.SIGSTOP)
        more = ingest_in_background(stack, second)  # lag on the frozen worker's partitions
        counts, rest = finished(ingest), finished(more)
        assert {key: counts[key] + rest[key] for key in counts} == expected_counts
        wait_gone(worker)  # killed, not left frozen
        assert child_pid(info.supervisor_pid, "worker") != worker
        supervisor_log = (stack.data_dir / "logs" / "supervisor.jsonl").read_text()
        replaced = [
            line for line in supervisor_log.splitlines() if "watchdog: stream worker" in line
        ]
        assert len(replaced) == 1 and f"pid {worker} has a lag of" in replaced[0]
        assert orjson.loads(replaced[0])["lag"] > 0
        wait_for(lambda: stack.json("status")["parts"]["worker"]["healthy"], "a healthy worker")
        status = stack.json("status")
        assert status["parts"]["worker"]["watchdog_restarts"] == 1, status["parts"]
        assert status["offsets"]["ok"], status["offsets"]
        assert_same_reports(all_reports(stack), expected_reports, "after a frozen worker")
    finally:
        stack.stop()
