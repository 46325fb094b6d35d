"""``emit``: the one place a command chooses between its JSON document and its text."""

from __future__ import annotations

import json

import click
import pytest

from infra.cli.common import emit


def test_json_prints_the_document_and_nothing_else(capsys: pytest.CaptureFixture[str]) -> None:
    printed: list[str] = []
    emit({"queued": 2}, "json", "2 failed deliveries queued again")
    emit({"equal": True}, "json", lambda: printed.append("text"))
    out = capsys.readouterr().out
    assert [json.loads(doc) for doc in out.replace("}\n{", "}\0{").split("\0")] == [
        {"queued": 2},
        {"equal": True},
    ]
    assert printed == []


def test_otherwise_the_text_or_the_function_that_prints_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emit({"queued": 2}, "table", "2 failed deliveries queued again")
    emit({"equal": True}, "table", lambda: click.echo("equal · khớp"))
    assert capsys.readouterr().out == "2 failed deliveries queued again\nequal · khớp\n"
