"""Integration fixtures: a real embedded stack (Tansu broker, Faust worker, chDB), driven
through the ``ostwatch`` command line exactly as a user or the acceptance checks would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ostwatch.settings import ClickHouseSettings
from sinks.clickhouse import ClickHouse
from sinks.store import Store

OSTWATCH = [sys.executable, "-m", "infra.cli"]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class RunningStack:
    """One ``ostwatch up`` process for a data directory, with helpers to call the CLI."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        log = (self.data_dir.parent / f"{self.data_dir.name}-up.log").open("ab")
        self.process = subprocess.Popen(
            [*OSTWATCH, "up", "--data-dir", str(self.data_dir), "--no-live"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
        )
        result = self.cli("status", "--wait", str(timeout), "--format", "json", check=False)
        if result.returncode != 0:
            self.stop()
            raise RuntimeError(f"stack did not become ready: {result.stdout} {result.stderr}")

    def stop(self, timeout: float = 60.0) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["OSTWATCH_DATA_DIR"] = str(self.data_dir)
        return env

    def cli(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*OSTWATCH, *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"ostwatch {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--format", "json").stdout)

    def ingest(self, path: Path) -> dict[str, int]:
        return json.loads(self.cli("ingest", str(path), "--no-progress").stdout)


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedded ClickHouse directory per test module."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def store(chdb_dir: Path) -> Iterator[Store]:
    """A fresh database per test inside one embedded engine."""
    settings = ClickHouseSettings(database=f"t_{uuid.uuid4().hex[:12]}")
    db = ClickHouse.connect(settings, chdb_dir)
    store = Store(db)
    store.migrate()
    yield store
    db.command(f"DROP DATABASE IF EXISTS `{settings.database}`")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack shared by the session, with the test registry loaded."""
    running = RunningStack(tmp_path_factory.mktemp("stack") / "data")
    started = time.monotonic()
    running.start()
    print(f"stack ready in {time.monotonic() - started:.1f} s")
    running.cli("registry", "load", str(FIXTURES / "registry"))
    yield running
    running.stop()
