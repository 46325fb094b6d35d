"""Find the children of a running ``ostwatch up`` (broker, worker) to break them on purpose.

Read from /proc (Linux, like every machine this project runs on), so no extra dependency.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC = Path("/proc")


def _parent_of(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ..." — comm may hold spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def child_pid(parent: int, marker: str, timeout: float = 60.0) -> int:
    """The pid of the live child of ``parent`` whose command line contains ``marker``."""
    deadline = time.monotonic() + timeout
    while True:
        for entry in PROC.iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if _parent_of(pid) == parent and marker in _cmdline(pid):
                return pid
        if time.monotonic() > deadline:
            raise AssertionError(f"no child of {parent} runs {marker!r}")
        time.sleep(0.2)


def wait_gone(pid: int, timeout: float = 30.0) -> None:
    """Wait until ``pid`` no longer runs (reaped, or a zombie waiting for its parent)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still runs after {timeout:.0f} s")


def kill_hard(pid: int, signal_number: int = 9) -> None:
    """``kill -9`` (or another signal), then wait until the process is gone."""
    os.kill(pid, signal_number)
    wait_gone(pid)
