"""One convention for the whole command line (CONTRACT §5), checked on every click command.

Every command that prints data takes ``--format json``; every command that touches a data
directory takes ``--data-dir`` (from ``OSTWATCH_DATA_DIR`` too); ``-h`` is help everywhere.
The exceptions are listed here by name, each with its reason, so a new command either
follows the convention or says why not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from infra.cli import main
from infra.security import clickhouse_statements, kafka_acls
from ostwatch.settings import BrokerSettings, StreamSettings
from streams.notify.ledger import Ledger

# Commands that print no data on stdout, so a --format would have nothing to shape.
PRINTS_NO_DATA = {
    "up": "runs the stack in the foreground; what it says goes to stderr and the log",
    "worker": "runs the stream worker in the foreground; it only logs",
    "simulate": "writes events to a file or to the broker; its one summary line is on stderr",
}


def commands(
    group: click.Group = main, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    """Every command and group under ``group``, by its name on the command line (asked as
    click asks, so that the top level's lazily imported commands are found too)."""
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, f"{name} is listed but cannot be loaded"
        yield " ".join((*path, name)), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


ALL = dict(commands())
# A group that only dispatches prints nothing itself; `alerts` lists the alerts when called alone.
RUNNABLE = {
    name: command
    for name, command in ALL.items()
    if not isinstance(command, click.Group) or command.invoke_without_command
}


def option(command: click.Command, flag: str) -> click.Option | None:
    return next((p for p in command.params if isinstance(p, click.Option) and flag in p.opts), None)


def test_the_walk_finds_every_command_group() -> None:
    assert {"report stock", "alerts", "alerts ack", "audit verify", "ingest"} <= RUNNABLE.keys()
    assert "report" in ALL and "report" not in RUNNABLE
    assert PRINTS_NO_DATA.keys() <= RUNNABLE.keys(), "stale exception"


@pytest.mark.parametrize("name", sorted(RUNNABLE.keys() - PRINTS_NO_DATA.keys()))
def test_every_command_that_prints_data_takes_format_json(name: str) -> None:
    found = option(RUNNABLE[name], "--format")
    assert found is not None, f"`ostwatch {name}` has no --format"
    assert isinstance(found.type, click.Choice) and "json" in found.type.choices, name


@pytest.mark.parametrize("name", sorted(PRINTS_NO_DATA))
def test_commands_that_print_no_data_have_no_format_to_ignore(name: str) -> None:
    assert option(RUNNABLE[name], "--format") is None


@pytest.mark.parametrize("name", sorted(RUNNABLE.keys()))
def test_every_command_takes_data_dir(name: str) -> None:
    found = option(RUNNABLE[name], "--data-dir")
    assert found is not None, f"`ostwatch {name}` has no --data-dir"
    assert found.envvar == "OSTWATCH_DATA_DIR" and found.show_envvar, name


@pytest.mark.parametrize("name", sorted(["", *ALL]))
def test_dash_h_is_help_everywhere(name: str) -> None:
    result = CliRunner().invoke(main, [*name.split(), "-h"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: "), result.output


def json_of(*args: str) -> object:
    """Run a command with --format json: stdout must be exactly one JSON document."""
    result = CliRunner().invoke(main, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_security_layouts_as_json_hold_what_the_scripts_apply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OSTWATCH_CLICKHOUSE_DATABASE", "OSTWATCH_BROKER_EVENTS_TOPIC"):
        monkeypatch.delenv(name, raising=False)
    expected = kafka_acls(BrokerSettings(), StreamSettings())
    acls = json_of("security", "kafka-acls")
    assert acls == {"acls": [asdict(a) | {"operations": list(a.operations)} for a in expected]}
    roles = json_of("security", "clickhouse-roles", "--province", "Bắc Giang")
    assert roles == {
        "database": "ostwatch",
        "provinces": ["Bắc Giang"],
        "statements": clickhouse_statements("ostwatch", ["Bắc Giang"]),
    }


def test_redeliver_as_json_says_how_many_were_queued(tmp_path: Path) -> None:
    Ledger(tmp_path / "notify.sqlite").close()
    assert json_of("alerts", "redeliver", "--data-dir", str(tmp_path)) == {"queued": 0}
