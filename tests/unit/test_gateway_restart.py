"""The CLI's HTTP gateway waits through a worker restart, and only then."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from infra.broker import free_port
from infra.gateway import GatewayError, HttpGateway, WorkerAway


class Answer(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.dumps({"result": {"accepted": 3}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@contextmanager
def worker_after(port: int, delay_s: float) -> Iterator[None]:
    """A stand-in worker API that starts listening on ``port`` after ``delay_s``."""
    servers: list[http.server.HTTPServer] = []

    def start() -> None:
        time.sleep(delay_s)
        servers.append(http.server.HTTPServer(("127.0.0.1", port), Answer))
        servers[0].serve_forever()

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    try:
        yield
    finally:
        while not servers:
            time.sleep(0.05)
        servers[0].shutdown()
        servers[0].server_close()


def test_a_call_waits_while_the_supervisor_restarts_the_worker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    gateway = HttpGateway(f"http://127.0.0.1:{port}", supervisor_pid=os.getpid())
    with worker_after(port, delay_s=1.5):
        started = time.monotonic()
        assert gateway.call("submission_counts", source="x") == {"accepted": 3}
        assert time.monotonic() - started >= 1.0
    assert "restarting" in capsys.readouterr().err


def test_without_a_live_supervisor_a_refused_call_fails_at_once() -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    gateway = HttpGateway(f"http://127.0.0.1:{free_port()}", supervisor_pid=int(gone.stdout))
    started = time.monotonic()
    with pytest.raises(WorkerAway):
        gateway.call("submission_counts", source="x")
    assert time.monotonic() - started < 1.0


def test_a_worker_that_never_returns_ends_the_wait_with_a_clear_error() -> None:
    gateway = HttpGateway(
        f"http://127.0.0.1:{free_port()}", supervisor_pid=os.getpid(), restart_wait_s=1.0
    )
    with pytest.raises(GatewayError, match="did not come back within 1 s"):
        gateway.call("submission_counts", source="x")
