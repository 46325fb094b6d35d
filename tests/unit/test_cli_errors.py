"""Every CLI failure is one line on stderr with a non-zero exit (issue 15, item 7), including
the ones nobody foresaw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from infra import cli
from infra.cli import common


def failing_operations(data_dir: Path, **kwargs: Any) -> Any:
    raise RuntimeError("something deep\nfailed on\nthree lines")


def test_an_unforeseen_error_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(common, "open_operations", failing_operations)
    monkeypatch.delenv("OSTWATCH_LOG_LEVEL", raising=False)
    result = CliRunner().invoke(cli.main, ["report", "stock", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(
        "ostwatch: unexpected error: RuntimeError: something deep failed on three lines"
    )


def test_debug_keeps_the_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(common, "open_operations", failing_operations)
    monkeypatch.setenv("OSTWATCH_LOG_LEVEL", "DEBUG")
    result = CliRunner().invoke(cli.main, ["report", "stock", "--data-dir", str(tmp_path)])
    assert isinstance(result.exception, RuntimeError)


@pytest.mark.parametrize("args", [["report", "stock", "--bogus"], ["replay"], ["no-such-command"]])
def test_a_usage_error_is_one_line_with_where_the_help_is(args: list[str]) -> None:
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "--help`)" in result.stderr
