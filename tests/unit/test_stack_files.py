"""The stack's own files (issue 15, item 7): a refused second `ostwatch up` leaves the running
stack's stack.json alone, and what the stack writes is for its owner only."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.gateway import StackInfo
from infra.stack import StackError, StackSupervisor
from ostwatch.files import private_dir, private_secret
from ostwatch.settings import BrokerSettings, StackSettings, StreamSettings, SupervisorSettings


@pytest.fixture
def restored_umask() -> Iterator[None]:
    """The supervisor sets the process umask; give the test process its own back."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def running_stack_file(data_dir: Path) -> StackInfo:
    info = StackInfo("http://127.0.0.1:1", "127.0.0.1:2", os.getpid(), "ostwatch.events", "t" * 43)
    info.write(data_dir)
    return info


def test_a_refused_second_up_keeps_the_running_stacks_file(
    tmp_path: Path, restored_umask: None
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    running = running_stack_file(data_dir)
    with (data_dir / "stack.lock").open("a+") as held:  # the running `ostwatch up`
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = StackSupervisor(
            StackSettings(data_dir=data_dir),
            BrokerSettings(),
            SupervisorSettings(),
            group_id=StreamSettings().group_id,
        )
        with pytest.raises(StackError, match="already running"):
            second.start()
        second.stop()
    assert StackInfo.read(data_dir) == running


def test_the_stack_file_holds_the_token_for_its_owner_only(tmp_path: Path) -> None:
    info = running_stack_file(tmp_path)
    assert stat.S_IMODE((tmp_path / "stack.json").stat().st_mode) == 0o600
    assert StackInfo.read(tmp_path) == info
    assert "t" * 43 not in repr(info)


def test_an_open_data_directory_is_closed(tmp_path: Path, restored_umask: None) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    private_dir(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    private_dir(tmp_path / "new" / "dir")
    assert stat.S_IMODE((tmp_path / "new" / "dir").stat().st_mode) == 0o700


def test_a_secret_is_made_once_and_never_trusted_open(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "alert-signing.key"
    first = private_secret(path)
    assert len(first) == 32 and private_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(PermissionError, match="readable by others"):
        private_secret(path)
