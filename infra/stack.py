"""``ostwatch up``: the embedded stack of one data directory, supervised in the foreground.

The broker (Tansu, memory only) and the stream worker run as child processes in their own
sessions, so a Ctrl-C reaches only this supervisor, which stops them in order: the worker
first (it commits what ClickHouse already has), then the broker. A child that dies is
restarted; because the embedded broker forgets everything when it stops, ClickHouse is the
system of record and the worker rebuilds its state from it.

Two limits keep the restarting honest (docs/operations.md "Reliability",
``SupervisorSettings``): a worker that keeps dying before the stack was ever ready makes
``ostwatch up`` give up with the worker's last error (fail fast), and a worker that has lag
and decides nothing is replaced (the watchdog, ``infra.watchdog``). What the supervisor sees
is written to ``supervisor.json`` in the data directory for ``ostwatch status``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from infra.broker import BrokerError, EmbeddedBroker, accepts_tcp, ensure_topics, free_port
from infra.gateway import STACK_FILE, StackInfo
from infra.offset_check import GroupPosition, GroupProbe
from infra.watchdog import Health, Watchdog
from ostwatch.files import private_dir, private_umask
from ostwatch.settings import BrokerSettings, StackSettings, SupervisorSettings

log = logging.getLogger(__name__)

WORKER_STOP_TIMEOUT_S = 30.0
SUPERVISOR_FILE = "supervisor.json"
WORKER_OUTPUT = "worker.out"

# The lines of a worker's output that say why it died: a traceback's last line, the CLI's
# one-line error, a console log record at ERROR or above.
_ERROR_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)(?::\s.*)?"
    r"|ostwatch: .+"
    r"|\d\d:\d\d:\d\d (?:ERROR|CRITICAL)\s+.+)$"
)


class StackError(RuntimeError):
    """The stack cannot start (the message says why and what to do)."""


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data directory (owner-only, see ostwatch/files.py) and prove it is
    writable, with a clear error if not."""
    try:
        private_dir(data_dir)
        (data_dir / "logs").mkdir(exist_ok=True)
        probe = data_dir / ".write-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise StackError(f"data directory {data_dir} is not writable: {exc.strerror}") from exc


def last_error(output: str) -> str | None:
    """The last line of a worker's output that says why it failed, on one line."""
    found = None
    for line in output.splitlines():
        line = line.strip()
        if _ERROR_LINE.match(line):
            found = line
    if found is None:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        found = lines[-1] if lines else None
    return " ".join(found.split())[:400] if found else None


def broker_unavailable(state: dict[str, Any] | None, bootstrap: str) -> str | None:
    """Why the stack's broker cannot take messages now (None: as far as can be seen, it can).

    A worker answers "ready" from what it last saw, and the one whose broker just died keeps
    answering until the supervisor has stopped it (up to ``WORKER_STOP_TIMEOUT_S``), so
    ``ostwatch status`` asks the supervisor's last word and, for the embedded broker, the port.
    """
    broker = ((state or {}).get("parts") or {}).get("broker") or {}
    if broker.get("healthy") is False:
        return "the broker is down; the supervisor is restarting it"
    if broker.get("embedded") and not accepts_tcp(bootstrap):
        return f"the embedded broker at {bootstrap} accepts no connection"
    return None


def read_supervisor_state(data_dir: Path) -> dict[str, Any] | None:
    """What the running ``ostwatch up`` last wrote about its parts (None: no such file)."""
    try:
        doc = json.loads((data_dir / SUPERVISOR_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


class StackSupervisor:
    """Runs broker + worker for one data directory until asked to stop."""

    def __init__(
        self,
        stack: StackSettings,
        broker: BrokerSettings,
        settings: SupervisorSettings,
        *,
        group_id: str,
    ) -> None:
        """Every setting comes from the entry point (``ostwatch up``); ``group_id`` is the
        intake's consumer group (``StreamSettings.group_id``), whose lag the watchdog reads."""
        self.stack = stack
        self.broker_settings = broker
        self.settings = settings
        self.group_id = group_id
        self.data_dir = Path(stack.data_dir).resolve()
        self.stopping = threading.Event()
        self._broker: EmbeddedBroker | None = None
        self._worker: subprocess.Popen[bytes] | None = None
        self._worker_log: IO[bytes] | None = None
        self._lock_file: IO[str] | None = None
        self.api_port = stack.api_port or free_port()
        self.bootstrap = broker.bootstrap_servers or ""
        # The API's bearer token, new at every start unless OSTWATCH_API_TOKEN sets one; only
        # stack.json (0600) and the worker (through its environment) know it.
        given = stack.api_token.get_secret_value() if stack.api_token is not None else ""
        self.api_token = given or secrets.token_urlsafe(32)
        self.worker_restarts = 0
        self.broker_restarts = 0
        self.ever_ready = False  # the stack was ready once since `ostwatch up` started
        self.start_failures = 0  # worker exits while it never was
        self.last_worker_error: str | None = None
        self.watchdog = Watchdog(
            self.settings.watchdog_stall_s, batch_limit_s=self.settings.watchdog_batch_limit_s
        )
        self.watchdog_restarts = 0
        self.broker_started_at: datetime | None = None
        self._probe: GroupProbe | None = None
        self._worker_output_from = 0
        self._health = Health(answered=False)

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> StackInfo:
        private_umask()  # before anything is made; the broker and worker inherit it
        prepare_data_dir(self.data_dir)
        self._take_lock()
        if self.broker_settings.is_embedded:
            port = self.broker_settings.embedded_port or free_port()
            self._broker = EmbeddedBroker(port=port, log_path=self.data_dir / "logs" / "broker.log")
            self._broker.start(topics=self._topic_layout())
            self.broker_started_at = datetime.now(UTC)
            self.bootstrap = self._broker.bootstrap
        self._create_topics()
        self._start_worker()
        self.write_state()
        info = self.info()
        info.write(self.data_dir)
        return info

    def info(self) -> StackInfo:
        """What stack.json says: where the API is, and the token it asks for."""
        host = self.stack.api_host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - names a wildcard bind, binds nothing
            host = "127.0.0.1"
        cert = self.stack.api_tls_cert
        netloc = f"[{host}]" if ":" in host else host
        return StackInfo(
            api_url=f"{self.stack.api_scheme}://{netloc}:{self.api_port}",
            bootstrap=self.bootstrap,
            supervisor_pid=os.getpid(),
            events_topic=self.broker_settings.events_topic,
            token=self.api_token,
            tls_cafile=str(cert.resolve()) if cert is not None else None,
        )

    def install_signal_handlers(self) -> None:
        def request_stop(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: stopping the stack", signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the worker reports ready; raise StackError if it does not (in time,
        or because it died ``start_failures`` times)."""
        timeout = self.settings.ready_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self.stopping.is_set():
            self.check_children()
            if self.is_ready():
                self.ever_ready = True
                self.write_state()
                return
            if time.monotonic() > deadline:
                last = (
                    f" (last worker error: {self.last_worker_error})"
                    if self.last_worker_error
                    else ""
                )
                raise StackError(
                    f"the stack did not become ready within {timeout:.0f} s{last}; "
                    f"see {self.data_dir / 'logs'}"
                )
            time.sleep(0.3)

    def is_ready(self) -> bool:
        try:
            status, doc = self.info().api("/api/status")
        except Exception:
            return False
        return status == 200 and bool(doc.get("ready"))

    def run_until_stopped(self, tick: Callable[[], None] | None = None, every: float = 1.0) -> None:
        """Supervise children until a signal arrives; ``tick`` runs every ``every`` seconds."""
        next_tick = next_watch = 0.0
        while not self.stopping.wait(0.25):
            self.check_children()
            now = time.monotonic()
            if now >= next_watch:
                self.watch()
                next_watch = time.monotonic() + self.settings.watchdog_interval_s
            if tick is not None and now >= next_tick:
                tick()
                next_tick = time.monotonic() + every

    def check_children(self) -> None:
        """Restart a dead broker (and the worker with it) or a dead worker; give up when the
        worker keeps dying before the stack was ever ready."""
        if self.stopping.is_set():
            return
        if self._broker is not None and not self._broker.is_running():
            self.broker_restarts += 1
            log.error("embedded broker exited; restarting it (its topics and offsets are gone)")
            self.write_state()  # `status` is not ready from now on, not after the worker stopped
            self._stop_worker(self.settings.broker_lost_grace_s)
            # Producers that knew the old broker send the moment the port opens: the topics
            # must exist before anything else (infra.broker._create_at_first_contact).
            self._broker.start(topics=self._topic_layout())
            self.broker_started_at = datetime.now(UTC)
            self._create_topics()
            self._start_worker()
            self.write_state()
            return
        if self._worker is not None and self._worker.poll() is not None:
            code = self._worker.returncode
            self.last_worker_error = self._worker_error()
            self.worker_restarts += 1
            if not self.ever_ready:
                self.start_failures += 1
                if self.start_failures >= self.settings.start_failures:
                    raise StackError(
                        f"the stream worker exited {self.start_failures} times before the "
                        f"stack was ever ready (exit status {code}): "
                        f"{self.last_worker_error or 'no output'} "
                        f"(see {self.data_dir / 'logs' / WORKER_OUTPUT})"
                    )
            delay = min(30.0, 2.0 ** min(self.worker_restarts, 5))
            log.error(
                "stream worker exited with %s; restarting in %.0f s",
                code,
                delay,
                extra={"worker_error": self.last_worker_error},
            )
            self.write_state()
            if self.stopping.wait(delay):
                return
            self._start_worker()

    # -- the watchdog ---------------------------------------------------------------------

    def watch(self) -> None:
        """One look at the running worker: its API, the group's position; replace it when
        it has lag and has decided nothing for ``watchdog_stall_s``."""
        worker = self._worker
        if worker is None or worker.poll() is not None or self.stopping.is_set():
            return
        self._health = self._worker_health()
        if self._health.ready:
            self.ever_ready = True
        stalled = self.watchdog.observe(self._health, self._position())
        if stalled:
            self._replace_stalled_worker(worker.pid)
        self.write_state()

    def _worker_health(self) -> Health:
        try:
            _, doc = self.info().api("/api/status", timeout=2.0)
        except Exception:
            return Health(answered=False)
        if not isinstance(doc, dict):
            return Health(answered=False)
        store = doc.get("store") or {}
        batch_s = (doc.get("commits") or {}).get("batch_in_progress_s")
        return Health(
            answered=True,
            ready=bool(doc.get("ready")),
            store_healthy=bool(store.get("healthy", True)),
            batch_s=float(batch_s) if batch_s is not None else None,
        )

    def _position(self) -> GroupPosition | None:
        if self._probe is None:
            settings = self.broker_settings
            self._probe = GroupProbe(
                self.bootstrap,
                settings.events_topic,
                self.group_id,
                settings.partitions,
                quirks=settings.quirks,
                security=settings.kafka_python_security(),
                timeout=min(5.0, max(1.0, self.settings.watchdog_interval_s * 2)),
            )
        try:
            return self._probe.position()
        except Exception as exc:
            log.warning("watchdog: cannot read the intake group's position: %s", exc)
            return None

    def _replace_stalled_worker(self, pid: int) -> None:
        seen = self.watchdog.as_dict()
        answered = self._health.answered
        log.error(
            "watchdog: stream worker pid %d has a lag of %d messages %s and has decided "
            "nothing for %.0f s (%s); replacing it",
            pid,
            seen["lag"],
            seen["lag_by_partition"],
            self.watchdog.stalled_for(),
            "it answers its API" if answered else "it does not answer its API",
            extra={"lag": seen["lag"], "lag_by_partition": seen["lag_by_partition"], "pid": pid},
        )
        self.watchdog_restarts += 1
        self.worker_restarts += 1
        self._stop_worker(self.settings.watchdog_kill_grace_s if answered else 0.0)
        self._start_worker()

    def state(self) -> dict[str, Any]:
        """Each part's health, for ``ostwatch status`` (through ``supervisor.json``)."""
        broker_running = self._broker.is_running() if self._broker is not None else None
        worker_running = self._worker is not None and self._worker.poll() is None
        watched = self.watchdog.as_dict()
        return {
            "supervisor_pid": os.getpid(),
            "updated_at": datetime.now(UTC).isoformat(),
            "ever_ready": self.ever_ready,
            "parts": {
                "broker": {
                    "embedded": self._broker is not None,
                    "healthy": broker_running if broker_running is not None else True,
                    "restarts": self.broker_restarts,
                    "started_at": (
                        self.broker_started_at.isoformat() if self.broker_started_at else None
                    ),
                },
                "worker": {
                    "pid": self.worker_pid,
                    "healthy": worker_running
                    and self._health.ready
                    and watched["state"] in ("running", "deciding a batch"),
                    **watched,
                    "restarts": self.worker_restarts,
                    "watchdog_restarts": self.watchdog_restarts,
                    "last_error": self.last_worker_error,
                },
            },
            "watchdog": {
                "stall_s": self.settings.watchdog_stall_s,
                "interval_s": self.settings.watchdog_interval_s,
            },
        }

    def write_state(self) -> None:
        tmp = self.data_dir / f".{SUPERVISOR_FILE}.tmp"
        try:
            tmp.write_text(json.dumps(self.state(), indent=2), encoding="utf-8")
            tmp.replace(self.data_dir / SUPERVISOR_FILE)
        except OSError as exc:  # a full disk must not stop the supervision itself
            log.warning("cannot write %s: %s", SUPERVISOR_FILE, exc)

    def stop(self) -> None:
        self.stopping.set()
        if self._lock_file is not None:
            # Only the stack holding the lock owns stack.json: a second `ostwatch up` refused
            # on this directory must not cut the CLI off from the running one.
            (self.data_dir / STACK_FILE).unlink(missing_ok=True)
            (self.data_dir / SUPERVISOR_FILE).unlink(missing_ok=True)
        self._stop_worker()
        if self._probe is not None:
            self._probe.close()
        if self._broker is not None:
            self._broker.stop()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- children -----------------------------------------------------------------------

    def _take_lock(self) -> None:
        lock_path = self.data_dir / "stack.lock"
        handle = lock_path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StackError(
                f"another `ostwatch up` is already running for {self.data_dir}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def _topic_layout(self) -> dict[str, int]:
        """The stack's topics and their partition counts."""
        settings = self.broker_settings
        names = (settings.events_topic, settings.dead_letter_topic, settings.alerts_topic)
        return dict.fromkeys(names, settings.partitions)

    def _create_topics(self) -> None:
        """Create the topics (or, on the embedded broker, check the ones created at start)."""
        settings = self.broker_settings
        try:
            ensure_topics(
                self.bootstrap,
                self._topic_layout(),
                replication_factor=settings.replication_factor,
                security=settings.kafka_python_security(),
            )
        except BrokerError as exc:
            raise StackError(f"cannot create topics on {self.bootstrap}: {exc}") from exc

    def _start_worker(self) -> None:
        env = dict(os.environ)
        env.update(
            OSTWATCH_DATA_DIR=str(self.data_dir),
            OSTWATCH_API_HOST=self.stack.api_host,
            OSTWATCH_API_PORT=str(self.api_port),
            OSTWATCH_API_TOKEN=self.api_token,
            OSTWATCH_BROKER_BOOTSTRAP_SERVERS=self.bootstrap,
        )
        if self.broker_settings.is_embedded:
            env["OSTWATCH_BROKER_EMBEDDED_QUIRKS"] = "true"
        output = self.data_dir / "logs" / WORKER_OUTPUT
        if self._worker_log is None:
            self._worker_log = output.open("ab")
        self._worker_log.flush()
        self._worker_output_from = output.stat().st_size
        self._worker = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "worker"],
            env=env,
            stdout=self._worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.watchdog.worker_started()
        self._health = Health(answered=False)
        log.info("stream worker started (pid %d)", self._worker.pid)

    def _worker_error(self) -> str | None:
        """Why the last worker died, from what it printed since it started."""
        try:
            with (self.data_dir / "logs" / WORKER_OUTPUT).open("rb") as output:
                output.seek(self._worker_output_from)
                text = output.read()[-64_000:].decode("utf-8", errors="replace")
        except OSError:
            return None
        return last_error(text)

    def _stop_worker(self, grace: float = WORKER_STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (at once with 0: a frozen worker)."""
        worker, self._worker = self._worker, None
        if worker is None or worker.poll() is not None:
            return
        if grace > 0:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(grace)
                return
            except subprocess.TimeoutExpired:
                log.error("stream worker did not stop in %.0f s; killing it", grace)
        worker.kill()
        worker.wait()

    @property
    def worker_pid(self) -> int | None:
        return self._worker.pid if self._worker is not None else None
