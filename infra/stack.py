"""``ostwatch up``: the embedded stack of one data directory, supervised in the foreground.

The broker (Tansu, memory only) and the stream worker run as child processes in their own
sessions, so a Ctrl-C reaches only this supervisor, which stops them in order: the worker
first (it commits what ClickHouse already has), then the broker. A child that dies is
restarted; because the embedded broker forgets everything when it stops, ClickHouse is the
system of record and the worker rebuilds its state from it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO

from infra.broker import BrokerError, EmbeddedBroker, ensure_topics, free_port
from infra.gateway import STACK_FILE, StackInfo
from ostwatch.files import private_dir, private_umask
from ostwatch.settings import BrokerSettings, StackSettings

log = logging.getLogger(__name__)

WORKER_STOP_TIMEOUT_S = 30.0


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


class StackSupervisor:
    """Runs broker + worker for one data directory until asked to stop."""

    def __init__(self, stack: StackSettings, broker: BrokerSettings) -> None:
        self.stack = stack
        self.broker_settings = broker
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

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> StackInfo:
        private_umask()  # before anything is made; the broker and worker inherit it
        prepare_data_dir(self.data_dir)
        self._take_lock()
        if self.broker_settings.is_embedded:
            port = self.broker_settings.embedded_port or free_port()
            self._broker = EmbeddedBroker(port=port, log_path=self.data_dir / "logs" / "broker.log")
            self._broker.start()
            self.bootstrap = self._broker.bootstrap
        self._create_topics()
        self._start_worker()
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

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Block until the worker reports ready; raise StackError if it does not."""
        deadline = time.monotonic() + timeout
        while not self.stopping.is_set():
            self.check_children()
            if self.is_ready():
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"the stack did not become ready within {timeout:.0f} s; "
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
        next_tick = 0.0
        while not self.stopping.wait(0.25):
            self.check_children()
            if tick is not None and time.monotonic() >= next_tick:
                tick()
                next_tick = time.monotonic() + every

    def check_children(self) -> None:
        """Restart a dead broker (and the worker with it) or a dead worker."""
        if self.stopping.is_set():
            return
        if self._broker is not None and not self._broker.is_running():
            self.broker_restarts += 1
            log.error("embedded broker exited; restarting it (its topics and offsets are gone)")
            self._stop_worker()
            self._broker.start()
            self._create_topics()
            self._start_worker()
            return
        if self._worker is not None and self._worker.poll() is not None:
            code = self._worker.returncode
            self.worker_restarts += 1
            delay = min(30.0, 2.0 ** min(self.worker_restarts, 5))
            log.error("stream worker exited with %s; restarting in %.0f s", code, delay)
            if self.stopping.wait(delay):
                return
            self._start_worker()

    def stop(self) -> None:
        self.stopping.set()
        if self._lock_file is not None:
            # Only the stack holding the lock owns stack.json: a second `ostwatch up` refused
            # on this directory must not cut the CLI off from the running one.
            (self.data_dir / STACK_FILE).unlink(missing_ok=True)
        self._stop_worker()
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

    def _create_topics(self) -> None:
        settings = self.broker_settings
        topics = {settings.events_topic: settings.partitions}
        topics[settings.dead_letter_topic] = settings.partitions
        topics[settings.alerts_topic] = settings.partitions
        try:
            ensure_topics(
                self.bootstrap,
                topics,
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
        if self._worker_log is None:
            self._worker_log = (self.data_dir / "logs" / "worker.out").open("ab")
        self._worker = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "worker"],
            env=env,
            stdout=self._worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.info("stream worker started (pid %d)", self._worker.pid)

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None or worker.poll() is not None:
            return
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(WORKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.error("stream worker did not stop in %.0f s; killing it", WORKER_STOP_TIMEOUT_S)
            worker.kill()
            worker.wait()

    @property
    def worker_pid(self) -> int | None:
        return self._worker.pid if self._worker is not None else None
