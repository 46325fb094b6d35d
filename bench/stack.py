"""A fresh embedded stack for a benchmark: `ostwatch up` on a new data directory, with the
simulated province's registry loaded, stopped when the benchmark is done."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.gateway import HttpGateway, StackInfo
from producers.simulator.province import build_province
from producers.simulator.registry_files import write_registry
from schemas.reference import REGISTRY_FILES

CLI = (sys.executable, "-m", "infra.cli")


@contextmanager
def fresh_stack(prefix: str, *, scale: float, alerts: bool) -> Iterator[StackInfo]:
    """A running stack whose registry is the simulated province at ``scale``; the alert
    engine on or off (``OSTWATCH_ALERT_ENABLED``)."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix)) / "data"
    env = {**os.environ, "OSTWATCH_ALERT_ENABLED": "true" if alerts else "false"}
    stack = subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data_dir), "--no-live"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        subprocess.run([*CLI, "status", "--data-dir", str(data_dir), "--wait", "180"], check=True)
        info = StackInfo.read(data_dir)
        assert info is not None
        with tempfile.TemporaryDirectory() as tmp:
            write_registry(build_province(scale=scale, seed=1), Path(tmp))
            files = {n: (Path(tmp) / n).read_text(encoding="utf-8") for n in REGISTRY_FILES}
        HttpGateway.of(info).call("registry_load", files=files, source="bench")
        time.sleep(3)  # the worker picks the registry up within its refresh interval
        yield info
    finally:
        stack.terminate()
        stack.wait(60)
