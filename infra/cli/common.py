"""What every command shares: one-line failures, the options (``--data-dir``, ``--format``,
``--as-of``, …), writing documents out, and opening the typed operations once.

Data commands print one JSON document on stdout with ``--format json``; any failure exits
non-zero with a one-line reason on stderr (CONTRACT §5).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from infra.application.common import OperationError, R, build
from ostwatch.settings import AlertSettings, ClickHouseSettings, SettingsError, StackSettings, load

if TYPE_CHECKING:
    from infra.application.operations import Operations

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """A failure explained in one line; click prints it on stderr and exits 1."""

    def format_message(self) -> str:
        return self.message.splitlines()[0] if self.message else "failed"

    def show(self, file: Any = None) -> None:
        click.echo(f"ostwatch: {self.format_message()}", err=True)


def expected_errors() -> tuple[type[BaseException], ...]:
    """The errors a user can cause or fix. Imported when one is raised, not when a command
    is defined: the broker and stack modules bring the Kafka client, which a report needs
    not load."""
    from infra.broker import BrokerError
    from infra.gateway import GatewayError
    from infra.stack import StackError
    from producers.publisher import PublishError
    from schemas.reference import RegistryError
    from sinks.clickhouse import StoreUnavailable

    return (
        SettingsError,
        OperationError,
        GatewayError,
        StackError,
        BrokerError,
        PublishError,
        RegistryError,
        StoreUnavailable,
        OSError,
    )


def friendly_errors(func: F) -> F:
    """Turn the errors a user can cause or fix into one-line messages, not tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, expected_errors()):
                raise UserError(" ".join(str(exc).split()) or type(exc).__name__) from exc
            raise

    return wrapper  # type: ignore[return-value]


def data_dir_option(func: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="OSTWATCH_DATA_DIR",
        show_envvar=True,
        default=Path(".ostwatch"),
        show_default=True,
        help="Directory holding this stack's ClickHouse data, logs and state.",
    )(func)


def ignored_data_dir_option(func: F) -> F:
    """``--data-dir`` on a command that opens no data directory: CONTRACT §5 lets every
    command take it, so a script may pass it everywhere; the value is not used."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="OSTWATCH_DATA_DIR",
        show_envvar=True,
        expose_value=False,
        help="Accepted like everywhere; this command opens no data directory.",
    )(func)


def output_format_option(*choices: str, default: str) -> Callable[[F], F]:
    """``--format``: every command that prints data takes ``json`` (CONTRACT §5)."""

    def decorate(func: F) -> F:
        return click.option(
            "--format",
            "output_format",
            type=click.Choice([*choices, "json"]),
            default=default,
            show_default=True,
            help="json prints one JSON document on stdout and nothing else.",
        )(func)

    return decorate


def format_option(func: F) -> F:
    return output_format_option("table", default="table")(func)


def export_format_option(*extra: str) -> Callable[[F], F]:
    """``--format`` of a report: a table for people, JSON, CSV or xlsx for other systems
    (plus ``extra`` choices), and ``--out`` for where a file goes."""

    def decorate(func: F) -> F:
        func = click.option(
            "--out",
            type=click.Path(path_type=Path),
            help="Write the csv/xlsx/html/json document here instead of stdout "
            "(xlsx needs it when stdout is a terminal).",
        )(func)
        return click.option(
            "--format",
            "output_format",
            type=click.Choice(["table", "json", "csv", "xlsx", *extra]),
            default="table",
            show_default=True,
            help="json prints one JSON document on stdout and nothing else; csv and xlsx "
            "are files for spreadsheets and other systems (docs/reports-monthly.md).",
        )(func)

    return decorate


def write_output(data: str | bytes, out: Path | None, what: str) -> None:
    """A document to ``out``, or to stdout: text as it is, binary only into a pipe or file."""
    if out is not None:
        if isinstance(data, bytes):
            out.write_bytes(data)
        else:
            out.write_text(data, encoding="utf-8")
        click.echo(f"ostwatch: wrote {what} to {out}", err=True)
        return
    if isinstance(data, str):
        click.echo(data, nl=False)
        return
    if sys.stdout.isatty():
        raise UserError(f"{what} is a binary file: give --out FILE (or redirect stdout)")
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def emit_rows(rows: list[dict[str, Any]], name: str, output_format: str, out: Path | None) -> bool:
    """JSON, CSV or xlsx of a report's rows; False when the format is a table for people."""
    if output_format == "json":
        if out is None:
            emit_json(rows)
        else:
            write_output(
                orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n", out, "json"
            )
        return True
    # The spreadsheet writer is imported only for a file (a JSON answer need not load it).
    from infra.exports import csv_text, report_sheet, workbook_bytes

    if output_format == "csv":
        write_output(csv_text(report_sheet(name, rows)), out, "csv")
        return True
    if output_format == "xlsx":
        write_output(workbook_bytes([report_sheet(name, rows)]), out, "xlsx")
        return True
    return False


def as_of_option(func: F) -> F:
    return click.option(
        "--as-of",
        metavar="T",
        help="RFC 3339 time: answer with only the events that had occurred by T.",
    )(func)


def stack_settings(data_dir: Path) -> StackSettings:
    return load(StackSettings, data_dir=data_dir)


def emit_json(doc: Any) -> None:
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str).decode())


def emit(document: Any, output_format: str, text: str | Callable[[], None]) -> None:
    """A command's result: ``document`` as one JSON document with ``--format json`` (CONTRACT
    §5), otherwise ``text`` for people (a line, or a function that prints them)."""
    if output_format == "json":
        emit_json(document)
    elif callable(text):
        text()
    else:
        click.echo(text)


class OneLineUsageError(click.UsageError):
    """A wrong option or argument, in one line that says where the help is (exit 2)."""

    def show(self, file: Any = None) -> None:
        where = f" (see `{self.ctx.command_path} --help`)" if self.ctx is not None else ""
        click.echo(f"ostwatch: {self.format_message()}{where}", err=True)


class OstwatchGroup(click.Group):
    """The command group: every failure is one line, a wrong option and a failure nobody
    foresaw included, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OneLineUsageError:
            raise
        except click.UsageError as exc:
            raise OneLineUsageError(exc.message, exc.ctx) from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("OSTWATCH_LOG_LEVEL", "").upper() == "DEBUG":
                raise  # the traceback, for whoever debugs
            detail = " ".join(str(exc).split())[:300]
            raise UserError(
                f"unexpected error: {type(exc).__name__}: {detail} "
                "(OSTWATCH_LOG_LEVEL=DEBUG shows where)"
            ) from exc


def open_operations(data_dir: Path, *, reconcile: bool = True) -> Operations:
    """The stack's operations when one runs for ``data_dir``, else the store's (opened here)."""
    from infra.application.client import open_operations as open_either

    return open_either(data_dir, load(ClickHouseSettings), load(AlertSettings), reconcile=reconcile)


@contextmanager
def operations(data_dir: Path, *, reconcile: bool = True) -> Iterator[Operations]:
    """``open_operations``, closed after the block: every data command's one code path."""
    opened = open_operations(data_dir, reconcile=reconcile)
    try:
        yield opened
    finally:
        opened.close()


def request(model: type[R], /, **fields: Any) -> R:
    """The operation's request from the command's options, validated before anything opens
    (a refusal is the validator's one line: ``--as-of: …``)."""
    return build(model, **fields)
