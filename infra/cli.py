"""The ``ostwatch`` command line (CONTRACT §5).

Data commands print one JSON document on stdout with ``--format json``; any failure exits
non-zero with a one-line reason on stderr.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from ostwatch import logs
from ostwatch.settings import (
    BrokerSettings,
    ClickHouseSettings,
    SettingsError,
    StackSettings,
    StreamSettings,
    SupervisorSettings,
    load,
)
from ostwatch.timeutil import LOCAL_TZ

if TYPE_CHECKING:
    from producers.pseudonym import IdentifierKind

F = TypeVar("F", bound=Callable[..., Any])

REGISTRY_FILES = ("facilities.csv", "items.csv", "targets.csv", "deadlines.csv")


class UserError(click.ClickException):
    """A failure explained in one line; click prints it on stderr and exits 1."""

    def format_message(self) -> str:
        return self.message.splitlines()[0] if self.message else "failed"

    def show(self, file: Any = None) -> None:
        click.echo(f"ostwatch: {self.format_message()}", err=True)


def friendly_errors(func: F) -> F:
    """Turn the errors a user can cause or fix into one-line messages, not tracebacks."""
    from infra.broker import BrokerError
    from infra.gateway import GatewayError
    from infra.stack import StackError
    from producers.publisher import PublishError
    from schemas.reference import RegistryError
    from sinks.clickhouse import StoreUnavailable

    expected = (
        SettingsError,
        GatewayError,
        StackError,
        BrokerError,
        PublishError,
        RegistryError,
        StoreUnavailable,
        OSError,
    )

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except expected as exc:
            raise UserError(" ".join(str(exc).split()) or type(exc).__name__) from exc

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
    from infra.exports import csv_text, report_sheet, workbook_bytes

    if output_format == "json":
        if out is None:
            emit_json(rows)
        else:
            write_output(
                orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n", out, "json"
            )
        return True
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


def open_gateway(data_dir: Path, *, reconcile: bool = True) -> Any:
    from infra.gateway import open_gateway as _open

    return _open(data_dir, load(ClickHouseSettings), reconcile=reconcile)


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


@click.group(
    cls=OstwatchGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="ostwatch")
def main() -> None:
    """ostwatch — live monitoring of methadone/buprenorphine treatment programmes.

    Facilities' events flow through Kafka and Faust into ClickHouse. Start the whole
    stack with `ostwatch up`, load the reference files with `ostwatch registry load DIR`,
    feed events with `ostwatch ingest FILE` (or `ostwatch up --simulate`), and read the
    results with `ostwatch report …`.

    Settings come from OSTWATCH_* environment variables (see README, "Configuration").
    """


# -- the stack ----------------------------------------------------------------------------


def _supervisor_default(name: str) -> Any:
    return SupervisorSettings.model_fields[name].default


SUPERVISOR_EPILOG = (
    '\b\nSupervision (README "Reliability"), also from the environment:\n'
    + "\n".join(
        f"  OSTWATCH_SUPERVISOR_{name.upper()} [default: {field.default}]: {field.description}"
        for name, field in SupervisorSettings.model_fields.items()
    )
)


@main.command(epilog=SUPERVISOR_EPILOG)
@data_dir_option
@click.option(
    "--start-failures",
    type=click.IntRange(1, 100),
    envvar="OSTWATCH_SUPERVISOR_START_FAILURES",
    show_envvar=True,
    help="Exit non-zero with the worker's last error once it has died this many times "
    f"before the stack was ever ready [default: {_supervisor_default('start_failures')}].",
)
@click.option(
    "--watchdog-stall",
    "watchdog_stall_s",
    type=click.FloatRange(0, 3600),
    envvar="OSTWATCH_SUPERVISOR_WATCHDOG_STALL_S",
    show_envvar=True,
    help="Replace a worker that has lag and has decided nothing for this many seconds; 0 "
    f"switches the watchdog off [default: {_supervisor_default('watchdog_stall_s'):g}].",
)
@click.option(
    "--simulate/--no-simulate",
    default=False,
    show_default=True,
    help="Feed the stack with the simulated Bắc Giang province.",
)
@click.option(
    "--speed",
    type=float,
    default=600.0,
    show_default=True,
    help="Simulator speed as real time × N (0 = as fast as possible).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Simulator random seed.")
@click.option(
    "--days",
    type=int,
    default=30,
    show_default=True,
    help="Days of history the simulator sends first (compressed by --speed), before it goes "
    "on live: its window ends now, since events from the future are refused.",
)
@click.option(
    "--live/--no-live",
    default=None,
    help="Show the live summary (default: on when stdout is a terminal).",
)
@friendly_errors
def up(
    data_dir: Path,
    start_failures: int | None,
    watchdog_stall_s: float | None,
    simulate: bool,
    speed: float,
    seed: int,
    days: int,
    live: bool | None,
) -> None:
    """Start broker, stream worker and ClickHouse in the foreground (Ctrl-C stops cleanly).

    A worker that dies is restarted; one that has lag and decides nothing is replaced.
    """
    from infra.live import LiveView
    from infra.stack import StackSupervisor
    from ostwatch.files import private_umask

    private_umask()  # before the first log file: the data directory is its owner's alone
    stack = stack_settings(data_dir)
    broker = load(BrokerSettings)
    supervision = load(
        SupervisorSettings, start_failures=start_failures, watchdog_stall_s=watchdog_stall_s
    )
    logs.configure(stack.log_level, Path(data_dir) / "logs" / "supervisor.jsonl", console=True)
    supervisor = StackSupervisor(stack, broker, supervision, group_id=load(StreamSettings).group_id)
    supervisor.install_signal_handlers()
    info = None
    try:
        info = supervisor.start()
        click.echo(
            f"ostwatch: starting in {supervisor.data_dir} (broker {info.bootstrap})", err=True
        )
        supervisor.wait_ready()
        if supervisor.stopping.is_set():
            return
        click.echo(f"ostwatch: ready — API {info.api_url}, live view {info.live_url}", err=True)
        feeder = None
        if simulate:
            feeder = start_simulation(info, speed or None, seed, days, supervisor.stopping)
        show_live = sys.stdout.isatty() if live is None else live
        view = LiveView(info, data_dir, feeder, interactive=show_live)
        with view:
            supervisor.run_until_stopped(tick=view.refresh, every=1.0 if show_live else 10.0)
    finally:
        supervisor.stop()
        if info is not None:  # a start that failed says why in its one line, nothing more
            click.echo("ostwatch: stopped", err=True)


@main.command()
@data_dir_option
@format_option
@click.option("--wait", type=float, default=0.0, help="Wait up to this many seconds for ready.")
def status(data_dir: Path, output_format: str, wait: float) -> None:
    """Exit 0 once the stack of the data directory is ready to ingest, non-zero before."""
    from infra.gateway import GatewayError, StackInfo

    deadline = time.monotonic() + wait
    while True:
        info = StackInfo.read(data_dir)
        doc: dict[str, Any] = {
            "ready": False,
            "data_dir": str(data_dir),
            "running": info is not None,
        }
        if info is not None:
            doc.update(api_url=info.api_url, broker=info.bootstrap)
            try:
                _, parts = info.api("/api/status", timeout=5)
                doc.update(parts if isinstance(parts, dict) else {})
            except GatewayError as exc:
                doc["reason"] = f"worker not answering yet ({exc})"
        else:
            doc["reason"] = "no running stack for this data directory (start it: ostwatch up)"
        if doc.get("ready") or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if info is not None:
        doc.update(supervision(data_dir, info))
    if output_format == "json":
        emit_json(doc)
    else:
        state = "ready" if doc.get("ready") else f"not ready: {doc.get('reason', 'starting')}"
        click.echo(f"{data_dir}: {state}")
        for line in supervision_lines(doc):
            click.echo(f"  {line}")
    if not doc.get("ready"):
        if output_format == "json":
            click.echo(f"ostwatch: not ready: {doc.get('reason', 'starting')}", err=True)
        sys.exit(1)


def supervision(data_dir: Path, info: Any) -> dict[str, Any]:
    """For ``status``: the supervisor's view of each part (``parts``) and whether the intake
    group's committed offsets are backed by decided submissions (``offsets``)."""
    from kafka.errors import KafkaError

    from infra.broker import BrokerError
    from infra.gateway import GatewayError, HttpGateway
    from infra.offset_check import GroupProbe, check_offsets
    from infra.stack import read_supervisor_state

    found: dict[str, Any] = {}
    state = read_supervisor_state(data_dir) or {}
    if state:
        found["parts"] = state.get("parts")
    started = ((state.get("parts") or {}).get("broker") or {}).get("started_at")
    broker = load(BrokerSettings)
    probe = GroupProbe(
        info.bootstrap,
        info.events_topic,
        load(StreamSettings).group_id,
        broker.partitions,
        quirks=broker.quirks,
        security=broker.kafka_python_security(),
    )
    try:
        since = datetime.fromisoformat(started) if started else None
        found["offsets"] = check_offsets(
            probe, HttpGateway(info.api_url, token=info.token, cafile=info.tls_cafile), since
        )
    except (GatewayError, BrokerError, KafkaError, OSError) as exc:
        found["offsets"] = {"ok": None, "problem": f"not checked: {' '.join(str(exc).split())}"}
    finally:
        probe.close()
    return found


def supervision_lines(doc: dict[str, Any]) -> list[str]:
    """The human lines of ``status`` for each part and the committed-offset check."""
    lines = []
    offsets = doc.get("offsets")
    if offsets is not None:
        if offsets.get("ok"):
            lines.append("offsets: every committed offset is backed by decided submissions")
        elif offsets.get("ok") is None:
            lines.append(f"offsets: {offsets.get('problem')}")
        else:
            lines.append(f"offsets: PROBLEM: {offsets.get('problem')}")
    parts = doc.get("parts") or {}
    worker_part = parts.get("worker")
    if worker_part:
        ago = worker_part.get("last_progress_s_ago")
        lines.append(
            f"worker: {'healthy' if worker_part.get('healthy') else worker_part.get('state')}, "
            f"lag {worker_part.get('lag')}, last progress "
            f"{'-' if ago is None else f'{ago:.0f} s ago'}, restarts "
            f"{worker_part.get('restarts')} (watchdog {worker_part.get('watchdog_restarts')})"
        )
    broker_part = parts.get("broker")
    if broker_part:
        lines.append(
            f"broker: {'healthy' if broker_part.get('healthy') else 'down'}, "
            f"restarts {broker_part.get('restarts')}"
        )
    return lines


@main.command(hidden=False)
@data_dir_option
def worker(data_dir: Path) -> None:
    """Run only the stream worker (production: against OSTWATCH_BROKER_BOOTSTRAP_SERVERS)."""
    from infra.worker import run_worker
    from ostwatch.settings import AlertSettings, NotifySettings

    try:
        run_worker(
            stack_settings(data_dir),
            load(BrokerSettings),
            load(ClickHouseSettings),
            load(StreamSettings),
            load(AlertSettings),
            load(NotifySettings),
        )
    except SettingsError as exc:
        raise UserError(str(exc)) from exc


# -- registry -------------------------------------------------------------------------------


@main.group()
def registry() -> None:
    """Reference files: facilities, items, targets, deadlines (CONTRACT §2)."""


@registry.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@data_dir_option
@format_option
@friendly_errors
def registry_load(directory: Path, data_dir: Path, output_format: str) -> None:
    """Load DIRECTORY's CSV files as a new registry version (earlier versions are kept)."""
    files = {
        name: (directory / name).read_text(encoding="utf-8-sig")
        for name in REGISTRY_FILES
        if (directory / name).is_file()
    }
    gateway = open_gateway(data_dir)
    try:
        result = gateway.call("registry_load", files=files, source=str(directory.resolve()))
    finally:
        gateway.close()
    if output_format == "json":
        emit_json(result)
    else:
        state = "unchanged" if result["unchanged"] else "loaded"
        click.echo(
            f"registry version {result['version']} {state}: {result['facilities']} facilities, "
            f"{result['items']} items, {result['targets']} targets, "
            f"{result['deadlines']} deadlines"
        )
    for warning in result.get("warnings", []):
        click.echo(f"ostwatch: cảnh báo / warning: {warning}", err=True)


# -- ingest ---------------------------------------------------------------------------------


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of every line, blank ones included: each is accounted for.

    The newline that ends the last line does not start another one.
    """
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip(b"\r\n")


def counted(
    lines: Iterator[tuple[int, bytes]], bars: Any, task: Any, every: int = 2000
) -> Iterator[tuple[int, bytes]]:
    """Pass lines through, advancing a progress bar every few thousand."""
    pending = 0
    for item in lines:
        yield item
        pending += 1
        if pending == every:
            bars.advance(task, pending)
            pending = 0
    bars.advance(task, pending)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
@click.option(
    "--timeout",
    type=float,
    default=900.0,
    show_default=True,
    help="Seconds to wait for every line to be accepted or rejected.",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bars on stderr (default: on a TTY)."
)
# json is the default: the contract's `ostwatch ingest FILE` prints the counts as JSON.
@output_format_option("table", default="json")
@friendly_errors
def ingest(
    file: Path, data_dir: Path, timeout: float, progress: bool | None, output_format: str
) -> None:
    """Publish every line of a JSON Lines FILE and wait until each is accepted or rejected.

    Prints {"accepted": n, "rejected": n, "duplicates": n}; a blank line is rejected.
    """
    from infra.gateway import HttpGateway, StackInfo
    from infra.progress import Progress
    from producers.publisher import EventPublisher

    info = StackInfo.read(data_dir)
    broker = load(BrokerSettings)
    if info is None and broker.is_embedded:
        raise UserError(
            f"no running stack for {data_dir}: start it with `ostwatch up --data-dir {data_dir}`"
        )
    bootstrap = info.bootstrap if info else str(broker.bootstrap_servers)
    topic = info.events_topic if info else broker.events_topic
    source = f"ingest:{uuid.uuid4()}:{file.name}"
    total = sum(1 for _ in read_lines(file))
    show = sys.stderr.isatty() if progress is None else progress
    stream = load(StreamSettings)
    publisher = EventPublisher(
        bootstrap,
        topic,
        source=source,
        security=broker.kafka_python_security(),
        max_line_bytes=stream.max_line_bytes,
        bounds=stream.event_bounds(),
    )
    with Progress(show) as bars:
        sending = bars.add("publishing", total)
        try:
            publisher.publish_lines(counted(read_lines(file), bars, sending))
            publisher.flush(timeout=120)
        finally:
            publisher.close()
        gateway = HttpGateway.of(info) if info else open_gateway(data_dir)
        deciding = bars.add("accepted/rejected", total)
        deadline = time.monotonic() + timeout
        counts: dict[str, int] = {}
        while True:
            counts = _counts_while_worker_restarts(gateway, source, data_dir, counts)
            decided = sum(counts.values())
            bars.update(deciding, decided)
            if decided >= total:
                break
            if time.monotonic() > deadline:
                raise UserError(
                    f"timed out after {timeout:.0f} s: {decided} of {total} lines decided "
                    f"({counts}); is the stream worker running? see {data_dir}/logs"
                )
            time.sleep(0.2)
    if output_format == "json":
        emit_json(counts)
    else:
        click.echo(
            f"{total} dòng / lines: chấp nhận / accepted {counts.get('accepted', 0)}, "
            f"từ chối / rejected {counts.get('rejected', 0)}, "
            f"trùng / duplicates {counts.get('duplicates', 0)}"
        )


# -- pseudonymisation -----------------------------------------------------------------------


def identifier_option(func: F) -> F:
    return click.option(
        "--identifier",
        type=click.Choice(["national_id", "clinic_number"]),
        default="national_id",
        show_default=True,
        help="The export's column that identifies the patient (the same one province-wide).",
    )(func)


def as_kind(identifier: str) -> IdentifierKind:
    """The --identifier choice as the library's identifier kind (click checked the choice)."""
    from producers.pseudonym import IDENTIFIER_KINDS

    return next(kind for kind in IDENTIFIER_KINDS if kind == identifier)


def pseudonym_keys() -> Any:
    from ostwatch.settings import PseudonymSettings
    from producers.pseudonym import load_keys

    return load_keys(load(PseudonymSettings))


@main.command()
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON Lines file of contract events to write (then: ostwatch ingest OUT).",
)
@identifier_option
@format_option
@friendly_errors
@ignored_data_dir_option
def pseudonymize(export: Path, out: Path, identifier: str, output_format: str) -> None:
    """Turn a facility's CSV EXPORT into contract events with pseudonymous patient_refs.

    Each row is one event: columns named like the contract's fields (event_type,
    occurred_at, facility_id, item, dose_mg, mode, …) plus the patient's national_id or
    clinic_number, which becomes patient_ref = HMAC-SHA256 with the province's key
    (OSTWATCH_PSEUDONYM_KEY_FILE or OSTWATCH_PSEUDONYM_KEY). Every other column (names,
    phones, addresses …) is dropped unread. Rows that break a rule are listed with their
    line and reason (never their values) and left out; the exit status is then 1.
    """
    from producers.facility_export import ExportError, convert_export

    key, _ = pseudonym_keys()
    try:
        result = convert_export(export.read_text(encoding="utf-8-sig"), key, as_kind(identifier))
    except (ExportError, UnicodeDecodeError) as exc:
        raise UserError(f"{export}: {exc}") from exc
    with out.open("wb") as handle:
        for event in result.events:
            handle.write(orjson.dumps(event) + b"\n")
    summary = {
        "rows": result.rows,
        "events": len(result.events),
        "refused": [{"line": line, "reason": reason} for line, reason in result.refused],
        "dropped_columns": result.dropped_columns,
        "key_id": key.key_id,
        "out": str(out),
    }
    if output_format == "json":
        emit_json(summary)
    else:
        for line, reason in result.refused:
            click.echo(f"ostwatch: {export.name}:{line}: {reason}", err=True)
        dropped = ", ".join(result.dropped_columns) or "none"
        click.echo(
            f"{len(result.events)} events from {result.rows} rows written to {out} "
            f"(key {key.key_id}); columns dropped: {dropped}"
        )
    if result.refused:
        raise UserError(
            f"{len(result.refused)} of {result.rows} rows refused (see the reasons above); "
            f"the other rows are in {out}"
        )


@main.command("rekey-map")
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV file old_ref,new_ref to write (references only, no identifier).",
)
@identifier_option
@format_option
@friendly_errors
@ignored_data_dir_option
def rekey_map_command(export: Path, out: Path, identifier: str, output_format: str) -> None:
    """Map every patient of EXPORT from the previous key's patient_ref to the current one's.

    Needs both keys: OSTWATCH_PSEUDONYM_PREVIOUS_KEY_FILE/_ID and OSTWATCH_PSEUDONYM_KEY_FILE/
    _ID. The map links a patient's history across a key rotation without any identifier.
    """
    from ostwatch import csv_safe
    from producers.facility_export import ExportError, identifiers_of
    from producers.pseudonym import rekey_map

    key, previous = pseudonym_keys()
    if previous is None:
        raise UserError(
            "a re-keying map needs the previous key too: set OSTWATCH_PSEUDONYM_PREVIOUS_KEY_FILE "
            "and OSTWATCH_PSEUDONYM_PREVIOUS_KEY_ID"
        )
    try:
        text = export.read_text(encoding="utf-8-sig")
        mapping, refused = rekey_map(identifiers_of(text, as_kind(identifier)), previous, key)
    except (ExportError, UnicodeDecodeError) as exc:
        raise UserError(f"{export}: {exc}") from exc
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv_safe.writer(handle)
        writer.writerow(["old_ref", "new_ref"])
        writer.writerows(sorted(mapping.items()))
    summary = {
        "patients": len(mapping),
        "refused": refused,
        "from_key": previous.key_id,
        "to_key": key.key_id,
        "out": str(out),
    }
    if output_format == "json":
        emit_json(summary)
    else:
        click.echo(
            f"{len(mapping)} patients mapped from key {previous.key_id} to {key.key_id} in {out}"
            + (f"; {refused} identifiers refused" if refused else "")
        )


# -- security layouts -------------------------------------------------------------------------


@main.group()
def security() -> None:
    """Least-privilege layouts to apply on a production Kafka and ClickHouse (README "Security")."""


@security.command("kafka-acls")
@click.option(
    "--bootstrap", default="kafka:9093", show_default=True, help="Where kafka-acls.sh connects."
)
@click.option(
    "--command-config",
    default="admin.properties",
    show_default=True,
    help="kafka-acls.sh client properties holding the admin's SASL credentials.",
)
@output_format_option("sh", default="sh")
@friendly_errors
@ignored_data_dir_option
def security_kafka_acls(bootstrap: str, command_config: str, output_format: str) -> None:
    """Print kafka-acls.sh commands: producers write events, the worker reads them and writes
    the dead letters and alerts, the admin manages topics; nobody else gets anything."""
    from dataclasses import asdict

    from infra.security import kafka_acls, render_kafka_acls

    acls = kafka_acls(load(BrokerSettings), load(StreamSettings))
    if output_format == "json":
        emit_json({"acls": [asdict(acl) for acl in acls]})
        return
    click.echo(render_kafka_acls(acls, bootstrap, command_config), nl=False)


@security.command("clickhouse-roles")
@click.option(
    "--province",
    "provinces",
    multiple=True,
    required=True,
    help="A province (as in facilities.csv) that gets a read-only viewer role (repeatable).",
)
@output_format_option("sql", default="sql")
@friendly_errors
@ignored_data_dir_option
def security_clickhouse_roles(provinces: tuple[str, ...], output_format: str) -> None:
    """Print the ClickHouse DDL: ingest writer, auditor, and a viewer role per province whose
    row policies show only that province's facilities."""
    from infra.security import clickhouse_statements, render_clickhouse_roles

    database = load(ClickHouseSettings).database
    if output_format == "json":
        statements = clickhouse_statements(database, provinces)
        emit_json({"database": database, "provinces": list(provinces), "statements": statements})
        return
    click.echo(render_clickhouse_roles(database, provinces), nl=False)


@main.command("schema")
@click.option(
    "--cluster",
    envvar="OSTWATCH_CLICKHOUSE_CLUSTER",
    show_envvar=True,
    default="",
    help="Render for this cluster of remote_servers (Replicated + Distributed tables, "
    "ON CLUSTER); empty prints the single-node migrations exactly as they are applied.",
)
@click.option(
    "--database",
    envvar="OSTWATCH_CLICKHOUSE_DATABASE",
    show_envvar=True,
    default="ostwatch",
    show_default=True,
    help="Database the Distributed tables point at.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["sql", "json"]),
    default="sql",
    show_default=True,
    help="sql: a script for clickhouse-client --multiquery; json: one JSON document.",
)
@friendly_errors
@ignored_data_dir_option
def schema_command(cluster: str, database: str, output_format: str) -> None:
    """Print the DDL `migrate` applies: every migration, in order (infra/cluster/README.md)."""
    from sinks.clickhouse import schema_statements
    from sinks.cluster import ClusterRenderError

    settings = load(ClickHouseSettings, cluster=cluster, database=database)
    try:
        rendered = schema_statements(settings.cluster, settings.database)
    except ClusterRenderError as exc:
        raise UserError(str(exc)) from exc
    if output_format == "json":
        emit_json(
            {
                "cluster": settings.cluster or None,
                "database": settings.database,
                "migrations": [{"name": n, "statements": s} for n, s in rendered],
            }
        )
        return
    mode = f"cluster {settings.cluster}" if settings.cluster else "one node"
    click.echo(f"-- ostwatch DDL for {mode}, database {settings.database} (`ostwatch schema`)")
    for name, statements in rendered:
        click.echo(f"\n-- {name}")
        for statement in statements:
            click.echo(f"{statement};")


@main.group("cluster")
def cluster_group() -> None:
    """The multi-node deployment: Kafka KRaft, replicated ClickHouse, Keeper (infra/cluster)."""


@cluster_group.command("config")
@click.option(
    "--out",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the ClickHouse and Keeper XML into (e.g. infra/cluster).",
)
@click.option("--cluster", "name", default="ostwatch", show_default=True, help="Cluster name.")
@click.option("--shards", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--replicas", type=click.IntRange(1, 9), default=3, show_default=True)
@click.option(
    "--keepers",
    type=click.Choice(["3", "5"]),
    default="3",
    show_default=True,
    help="ClickHouse Keeper nodes (an odd quorum).",
)
@format_option
@friendly_errors
@ignored_data_dir_option
def cluster_config(
    directory: Path, name: str, shards: int, replicas: int, keepers: str, output_format: str
) -> None:
    """Render every ClickHouse node's config.d (remote_servers, macros, Keeper list), the
    shared users.d profile and each Keeper node's keeper_config from one description."""
    from infra.cluster_config import Topology, write
    from sinks.cluster import ClusterRenderError, identifier

    try:
        identifier(name)
    except ClusterRenderError as exc:
        raise UserError(f"--cluster: {exc}") from exc
    topology = Topology(cluster=name, shards=shards, replicas=replicas, keepers=int(keepers))
    written = [str(path) for path in write(topology, directory)]
    if output_format == "json":
        emit_json({"written": written})
    else:
        click.echo("\n".join(written))


def _counts_while_worker_restarts(
    gateway: Any, source: str, data_dir: Path, last: dict[str, int]
) -> dict[str, int]:
    """The decided counts of ``source``; the last known ones while the worker is away.

    ``ostwatch up`` restarts a worker that died (kill -9, out of memory) and it resumes
    from the broker's committed offsets, so an ingest keeps waiting through a restart;
    only a stack that is gone altogether ends it.
    """
    from infra.gateway import GatewayError, HttpGateway, StackInfo

    try:
        counts: dict[str, int] = gateway.call("submission_counts", source=source)
    except GatewayError:
        if not isinstance(gateway, HttpGateway) or StackInfo.read(data_dir) is None:
            raise
        return last  # the supervisor is restarting the worker; its API port stays the same
    return counts


# -- simulate -------------------------------------------------------------------------------


def _start_date(text: str | None, days: int) -> date:
    """--start, or else the day that makes the window end yesterday (every event in it has
    happened, so none is refused as coming from the future)."""
    if text:
        return date.fromisoformat(text)
    return datetime.now(LOCAL_TZ).date() - timedelta(days=days)


@main.command()
@data_dir_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write JSON Lines here instead of publishing.",
)
@click.option(
    "--registry-out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the province's registry CSVs here.",
)
@click.option(
    "--start",
    "start_text",
    metavar="YYYY-MM-DD",
    help="First simulated day (default: --days before today, so the window ends yesterday).",
)
@click.option("--days", type=int, default=7, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--scale", type=float, default=1.0, show_default=True, help="Patients × N (30 ≈ national)."
)
@click.option(
    "--speed",
    type=float,
    default=0.0,
    show_default=True,
    help="Real time × N; 0 = as fast as possible.",
)
@friendly_errors
def simulate(
    data_dir: Path,
    out: Path | None,
    registry_out: Path | None,
    start_text: str | None,
    days: int,
    seed: int,
    scale: float,
    speed: float,
) -> None:
    """Generate the simulated Bắc Giang province: publish to the running stack, or write files."""
    from infra.gateway import StackInfo
    from producers.simulator.generator import generate
    from producers.simulator.province import build_province
    from producers.simulator.registry_files import write_registry

    start = _start_date(start_text, days)
    province = build_province(scale=scale, seed=seed, target_year=start.year)
    if registry_out is not None:
        write_registry(province, registry_out, live_from=start)
    events = generate(province, start=start, days=days, seed=seed)
    if out is not None:
        count = 0
        with out.open("wb") as handle:
            for item in events:
                handle.write(orjson.dumps(item.event) + b"\n")
                count += 1
        click.echo(f"wrote {count} events to {out}", err=True)
        return
    info = StackInfo.read(data_dir)
    if info is None:
        raise UserError(f"no running stack for {data_dir} (use --out FILE to write events instead)")
    feeder = start_simulation(
        info, speed or None, seed, days, threading.Event(), province=province, start=start
    )
    feeder.join()
    click.echo(f"published {feeder.sent} events", err=True)


class SimulationFeeder(threading.Thread):
    """Publishes the simulated province in the background while the stack runs."""

    def __init__(self, target: Callable[[SimulationFeeder], None]) -> None:
        super().__init__(name="simulator", daemon=True)
        self._body = target
        self.sent = 0
        self.sim_clock: datetime | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._body(self)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            import logging

            logging.getLogger(__name__).exception("simulator stopped")


def start_simulation(
    info: Any,
    speed: float | None,
    seed: int,
    days: int,
    stop: threading.Event,
    *,
    province: Any = None,
    start: date | None = None,
) -> SimulationFeeder:
    """Load the simulated province's registry into the stack, then feed its events.

    With ``start``, exactly ``days`` days from it; without, the demo: ``days`` days of
    history ending now, compressed by ``speed``, then on live (producers/feed.py).
    """
    import tempfile

    from infra.gateway import HttpGateway
    from producers.feed import demo_window, feed
    from producers.publisher import EventPublisher
    from producers.simulator.generator import generate
    from producers.simulator.province import build_province
    from producers.simulator.registry_files import write_registry

    if start is None:
        start, days = demo_window(days, datetime.now(LOCAL_TZ).date())
    province = province or build_province(seed=seed, target_year=start.year)
    with tempfile.TemporaryDirectory() as tmp:
        write_registry(province, Path(tmp), live_from=start)
        files = {name: (Path(tmp) / name).read_text(encoding="utf-8") for name in REGISTRY_FILES}
    HttpGateway.of(info).call("registry_load", files=files, source="simulator")

    def body(thread: SimulationFeeder) -> None:
        broker = load(BrokerSettings)
        with EventPublisher(
            info.bootstrap,
            info.events_topic,
            source=f"simulator:{seed}:{start.isoformat()}",
            security=broker.kafka_python_security(),
            bounds=load(StreamSettings).event_bounds(),
        ) as publisher:

            def progress(sent: int, clock: datetime) -> None:
                thread.sent, thread.sim_clock = sent, clock

            feed(
                generate(province, start=start, days=days, seed=seed),
                publisher,
                speed=speed,
                stop=stop,
                on_progress=progress,
            )

    feeder = SimulationFeeder(body)
    feeder.start()
    return feeder


# -- reports --------------------------------------------------------------------------------


@main.group()
def report() -> None:
    """Reports in event time (CONTRACT §3 and §5)."""


@report.command("rejected")
@data_dir_option
@export_format_option()
@as_of_option
@friendly_errors
def report_rejected(
    data_dir: Path, output_format: str, out: Path | None, as_of: str | None
) -> None:
    """Every rejected event: the line or event_id where known, and the reason."""
    gateway = open_gateway(data_dir)
    try:
        rows = gateway.call("rejected", as_of=as_of)
    finally:
        gateway.close()
    if emit_rows(rows, "rejected", output_format, out):
        return
    from infra.tables import print_table

    print_table(
        "Sự kiện bị từ chối / Rejected events",
        ["line", "event_id", "facility_id", "reason"],
        rows,
    )


FACILITY_COLUMNS = [("facility_id", "Mã cơ sở / Facility"), ("facility_name", "Tên / Name")]
PROGRAMME_LABELS = {
    "methadone": "Methadone",
    "buprenorphine": "Buprenorphine",
    "community_detox": "Cai tại cộng đồng / community detox",
    "centre_detox": "Cai tại cơ sở / centre detox",
}


@dataclass(frozen=True)
class ReportView:
    """How a report is asked for and shown: its help, filters and table."""

    name: str
    summary: str
    title: str
    columns: list[tuple[str, str]]
    dated: bool = False
    item: bool = False
    # --by choices (the first is the default), and the column each adds to the table.
    by: tuple[tuple[str, tuple[str, str] | None], ...] = ()


REPORT_VIEWS = (
    ReportView(
        "stock",
        "Per facility and item: on hand at T, 14-day average daily use, days of supply.",
        "Tồn kho / Stock on hand",
        [
            *FACILITY_COLUMNS,
            ("item", "Mặt hàng / Item"),
            ("unit", "Đơn vị / Unit"),
            ("on_hand", "Tồn kho / On hand"),
            ("avg_daily_use", "Dùng TB/ngày / Avg daily use"),
            ("days_of_supply", "Đủ dùng (ngày) / Days of supply"),
        ],
        item=True,
    ),
    ReportView(
        "dispensing",
        "Per facility and local day: patients dosed, doses by mode, milligrams.",
        "Cấp phát thuốc / Dispensing",
        [
            *FACILITY_COLUMNS,
            ("date", "Ngày / Date"),
            ("patients_dosed", "Số người bệnh / Patients dosed"),
            ("observed_doses", "Uống tại chỗ / Observed"),
            ("take_home_handouts", "Cấp nhiều ngày / Take-home"),
            ("mg_observed", "mg tại chỗ / mg observed"),
            ("mg_take_home", "mg mang về / mg take-home"),
        ],
        dated=True,
    ),
    ReportView(
        "patients",
        "Per facility and programme: active patients (and those with take-home approval).",
        "Người bệnh đang điều trị / Active patients",
        [
            *FACILITY_COLUMNS,
            ("programme_label", "Chương trình / Programme"),
            ("active", "Đang điều trị / Active"),
            ("take_home_approved", "Được cấp nhiều ngày / Take-home approved"),
        ],
    ),
    ReportView(
        "tests",
        "Per facility and month: drug tests performed and positives per substance.",
        "Xét nghiệm ma túy / Drug tests",
        [
            *FACILITY_COLUMNS,
            ("month", "Tháng / Month"),
            ("tests", "Số test / Tests"),
            ("positive", "Dương tính / Positive"),
        ],
        dated=True,
        by=(("month", None), ("purpose", ("purpose", "Mục đích / Purpose"))),
    ),
    ReportView(
        "targets",
        "Per unit and year: each target beside its actual, rolled up over the units below.",
        "Chỉ tiêu / Targets",
        [
            *FACILITY_COLUMNS,
            ("year", "Năm / Year"),
            ("routine_target", "Thường quy: chỉ tiêu / Routine target"),
            ("routine_actual", "thực hiện / actual"),
            ("routine_pct", "%"),
            ("take_home_target", "Nhiều ngày: chỉ tiêu / Take-home target"),
            ("take_home_actual", "thực hiện / actual"),
            ("take_home_pct", "%"),
            ("community_detox_target", "Cai cộng đồng: chỉ tiêu / Community detox target"),
            ("community_detox_actual", "thực hiện / actual"),
            ("community_detox_pct", "%"),
        ],
    ),
)


ALERT_COLUMNS = [
    ("severity_label", "Mức độ / Severity"),
    ("status_label", "Trạng thái / Status"),
    ("kind_label", "Loại / Kind"),
    ("facility_id", "Mã cơ sở / Facility"),
    ("subject", "Đối tượng / Subject"),
    ("raised_local", "Phát sinh / Raised"),
    ("message_vi", "Nội dung / Message"),
    ("alert_id", "Mã cảnh báo / Alert id"),
]
ALERTS_VIEW = ReportView(
    "alerts",
    "Every alert (CONTRACT §4): open first, by severity. Without --as-of, as the live stream "
    "keeps them, deadlines judged against the current time; with --as-of, judged afresh "
    "from the events up to T.",
    "Cảnh báo / Alerts",
    ALERT_COLUMNS,
)
SEVERITY_LABELS = {
    "critical": "Nghiêm trọng / critical",
    "warning": "Cảnh báo / warning",
    "info": "Thông tin / info",
}
STATUS_LABELS = {"open": "Đang mở / open", "resolved": "Đã xử lý / resolved"}


def scope_options(view: ReportView) -> Callable[[F], F]:
    """The filters every report takes, plus dates or item where they apply."""

    def decorate(func: F) -> F:
        options = [
            click.option(
                "--facility",
                "facilities",
                multiple=True,
                metavar="ID",
                help="Only this facility (repeatable).",
            ),
            click.option(
                "--under",
                multiple=True,
                metavar="ID",
                help="This unit and every facility below it in the registry (repeatable).",
            ),
            click.option(
                "--district", help="Only facilities of this district (as in the registry)."
            ),
            click.option(
                "--province", help="Only facilities of this province (as in the registry)."
            ),
        ]
        if view.dated:
            options += [
                click.option("--from", "date_from", metavar="YYYY-MM-DD", help="First local day."),
                click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Last local day."),
            ]
        if view.item:
            options.append(click.option("--item", help="Only this item code."))
        if view.by:
            choices = [name for name, _ in view.by]
            options.append(
                click.option(
                    "--by",
                    type=click.Choice(choices),
                    default=choices[0],
                    show_default=True,
                    help="Rows per facility and "
                    + ", or per facility, month and ".join(choices)
                    + ".",
                )
            )
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


TARGET_KINDS = ("routine", "take_home", "community_detox")


def with_names(rows: list[dict[str, Any]], names: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for a table: facility names, programme labels and target shares beside the codes."""
    from sinks.reports import percent

    facilities = names.get("facilities", {})
    shown = []
    for row in rows:
        extra = {
            "facility_name": facilities.get(row.get("facility_id"), ""),
            "programme_label": PROGRAMME_LABELS.get(row.get("programme", ""), row.get("programme")),
        }
        if "alert_id" in row:
            extra |= alert_labels(row)
        if "year" in row:
            extra["year"] = str(row["year"])  # a year, not a number to group by thousands
        for kind in TARGET_KINDS:
            if f"{kind}_target" in row:
                extra[f"{kind}_pct"] = percent(row[f"{kind}_actual"], row[f"{kind}_target"])
        shown.append({**row, **extra})
    return shown


def alert_labels(row: dict[str, Any]) -> dict[str, str]:
    """Bilingual labels and a local time for one alert row."""
    from ostwatch.timeutil import LOCAL_TZ
    from schemas.alerts import KIND_LABELS

    english, vietnamese = KIND_LABELS.get(row["kind"], (row["kind"], row["kind"]))
    raised = datetime.fromisoformat(row["raised_at"]).astimezone(LOCAL_TZ)
    status = STATUS_LABELS.get(row["status"], row["status"])
    if row.get("escalated"):
        status += " ↑"
    return {
        "severity_label": SEVERITY_LABELS.get(row["severity"], row["severity"]),
        "status_label": status,
        "kind_label": f"{vietnamese} / {english}",
        "raised_local": raised.strftime("%d/%m/%Y %H:%M"),
    }


def add_report_command(view: ReportView) -> None:
    """Declare `ostwatch report <name>`: JSON for programs, a bilingual table for people."""

    @report.command(
        view.name,
        help=f"{view.summary}\n\nWithout --as-of, T is the latest "
        "occurred_at of any accepted event.",
    )
    @data_dir_option
    @export_format_option()
    @as_of_option
    @scope_options(view)
    @friendly_errors
    def command(
        data_dir: Path, output_format: str, out: Path | None, as_of: str | None, **filters: Any
    ) -> None:
        extra = dict(view.by).get(filters.get("by") or "")
        columns = view.columns if extra is None else [*view.columns[:3], extra, *view.columns[3:]]
        show_rows(
            data_dir,
            output_format,
            f"report_{view.name}",
            view.title + (f" — tính đến / as of {as_of}" if as_of else ""),
            columns,
            out=out,
            as_of=as_of,
            **{
                key: list(value) if isinstance(value, tuple) else value
                for key, value in filters.items()
            },
        )


def show_rows(
    data_dir: Path,
    output_format: str,
    operation: str,
    title: str,
    columns: list[tuple[str, str]],
    out: Path | None = None,
    **kwargs: Any,
) -> None:
    """Ask the store for rows: JSON, CSV or xlsx for programs, a bilingual table for people."""
    gateway = open_gateway(data_dir)
    try:
        rows = gateway.call(operation, **kwargs)
        names = gateway.call("names") if output_format == "table" else {}
    finally:
        gateway.close()
    if emit_rows(rows, operation.removeprefix("report_"), output_format, out):
        return
    from infra.tables import print_table

    print_table(title, columns, with_names(rows, names))


for _view in (*REPORT_VIEWS, ALERTS_VIEW):
    add_report_command(_view)


@report.command("monthly")
@data_dir_option
@click.option(
    "--period", required=True, metavar="YYYY-MM", help="The local month (Asia/Ho_Chi_Minh)."
)
@click.option(
    "--unit",
    metavar="ID",
    help="This unit and every facility below it (default: every top unit of the registry).",
)
@export_format_option("html")
@as_of_option
@friendly_errors
def report_monthly(
    data_dir: Path,
    period: str,
    unit: str | None,
    output_format: str,
    out: Path | None,
    as_of: str | None,
) -> None:
    """The month's figures a unit sends on (CONTRACT §6): patient flows per programme,
    dispensing and the stock ledger per item, tests per purpose, timeliness of the reports
    due that month — for the unit and every facility below it, each unit rolling up its own.

    csv writes one file per list into --out DIR; xlsx one sheet per list; html one
    printable A4 document with signature lines. Guide: docs/reports-monthly.md.
    """
    from infra.exports import monthly_csv_files, monthly_workbook
    from infra.monthly_doc import monthly_html

    gateway = open_gateway(data_dir)
    try:
        document = gateway.call("report_monthly", period=period, unit=unit, as_of=as_of)
    finally:
        gateway.close()
    if output_format == "json":
        if out is None:
            emit_json(document)
        else:
            text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
            write_output(text, out, "the monthly report")
    elif output_format == "csv":
        if out is None:
            raise UserError("--format csv writes one file per list: give --out DIRECTORY")
        out.mkdir(parents=True, exist_ok=True)
        for name, text in monthly_csv_files(document).items():
            (out / name).write_text(text, encoding="utf-8")
        click.echo(f"ostwatch: wrote one csv file per list to {out}", err=True)
    elif output_format == "xlsx":
        write_output(monthly_workbook(document), out, "the monthly report (xlsx)")
    elif output_format == "html":
        write_output(monthly_html(document), out, "the monthly report (html)")
    else:
        _print_monthly(document)


def _print_monthly(document: dict[str, Any]) -> None:
    """One bilingual table per list, unit names indented under their parents."""
    from infra.labels import LIST_TITLES
    from infra.monthly_doc import COLUMNS
    from infra.tables import print_table

    names = {u["facility_id"]: "· " * u["depth"] + u["name"] for u in document["units"]}
    for name, fields in COLUMNS.items():
        vi, en = LIST_TITLES[name]
        columns = [("unit_name", "Đơn vị / Unit")] + [(f, f"{v} / {e}") for f, v, e in fields]
        rows = [{**row, "unit_name": names.get(row["facility_id"], "")} for row in document[name]]
        print_table(f"{vi} / {en} — {document['period']}", columns, rows)


# -- exports for other systems ---------------------------------------------------------------


@main.group("export")
def export_group() -> None:
    """Files for other systems, from the monthly report (docs/reports-monthly.md)."""


@export_group.command("dhis2")
@data_dir_option
@click.option("--period", required=True, metavar="YYYY-MM", help="The local month.")
@click.option(
    "--mapping",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV kind,code,uid,category_option_combo: facilities → org units, figures → data "
    "elements (sample: producers/simulator/data/dhis2_mapping_bac_giang.csv).",
)
@click.option("--unit", metavar="ID", help="Only this unit and the facilities below it.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the dataValueSet JSON here instead of stdout.",
)
@click.option(
    "--unmapped",
    "unmapped_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write what the mapping left out (figures, facilities) to this JSON file.",
)
@output_format_option(default="json")  # DHIS2 reads the JSON document; no other form
@as_of_option
@friendly_errors
def export_dhis2(
    data_dir: Path,
    output_format: str,
    period: str,
    mapping: Path,
    unit: str | None,
    out: Path | None,
    unmapped_out: Path | None,
    as_of: str | None,
) -> None:
    """DHIS2 dataValueSets JSON of the month's report, through a mapping file.

    Nothing is guessed: figures and facilities the mapping does not name are left out and
    listed on stderr (and in --unmapped FILE); DHIS2's period is written YYYYMM.
    """
    from infra.dhis2 import Dhis2Error, data_value_set, parse_mapping

    try:
        table = parse_mapping(mapping.read_text(encoding="utf-8"), str(mapping))
    except Dhis2Error as exc:
        raise UserError(f"{len(str(exc).splitlines())} problem(s) in the mapping: {exc}") from exc
    gateway = open_gateway(data_dir)
    try:
        document = gateway.call("report_monthly", period=period, unit=unit, as_of=as_of)
    finally:
        gateway.close()
    try:
        value_set, unmapped = data_value_set(document, table)
    except Dhis2Error as exc:
        raise UserError(f"the mapping sends two figures to one value: {exc}") from exc
    text = orjson.dumps(value_set, option=orjson.OPT_INDENT_2).decode() + "\n"
    write_output(text, out, f"{len(value_set['dataValues'])} DHIS2 data values")
    if unmapped_out is not None:
        unmapped_out.write_text(
            orjson.dumps(unmapped.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n",
            encoding="utf-8",
        )
    for line in _unmapped_lines(unmapped.as_dict()):
        click.echo(f"ostwatch: {line}", err=True)


def _unmapped_lines(unmapped: dict[str, Any], most: int = 40) -> list[str]:
    """What the export left out, for stderr (every item in --unmapped FILE)."""
    lines = [
        f"not exported (no data element): {f['figure']} ({f['rows']} row(s))"
        for f in unmapped["figures"]
    ]
    for facility in unmapped["facilities"]:
        via = ", ".join(facility["mapped_below"])
        note = f"; its facilities {via} are exported" if via else ""
        lines.append(f"not exported (no org unit): {facility['facility_id']}{note}")
    if len(lines) > most:
        lines = [*lines[:most], f"… and {len(lines) - most} more (--unmapped FILE lists all)"]
    return lines


# -- alerts -------------------------------------------------------------------------------


@main.group(invoke_without_command=True)
@data_dir_option
@format_option
@click.option("--all", "show_all", is_flag=True, help="Resolved alerts too (default: open only).")
@click.option("--kind", "kinds", multiple=True, metavar="KIND", help="Only this kind (repeatable).")
@click.option("--facility", "facilities", multiple=True, metavar="ID", help="Only this facility.")
@click.pass_context
@friendly_errors
def alerts(
    ctx: click.Context,
    data_dir: Path,
    output_format: str,
    show_all: bool,
    kinds: tuple[str, ...],
    facilities: tuple[str, ...],
) -> None:
    """The alerts people act on: open ones first, by severity (`alerts ack ID` to acknowledge)."""
    if ctx.invoked_subcommand is not None:
        return
    show_rows(
        data_dir,
        output_format,
        "report_alerts",
        "Cảnh báo / Alerts" + ("" if show_all else " — đang mở / open"),
        ALERT_COLUMNS,
        status=None if show_all else "open",
        kinds=list(kinds),
        facilities=list(facilities),
    )


@alerts.command("ack")
@click.argument("alert_ids", nargs=-1, metavar="[ALERT_ID]...")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="Every open alert of this kind, e.g. commune_notification (repeatable).",
)
@click.option(
    "--commune", "communes", multiple=True, metavar="CODE", help="Notices for this commune."
)
@click.option(
    "--facility", "facilities", multiple=True, metavar="ID", help="Alerts of this facility."
)
@click.option(
    "--before",
    metavar="DATE|TIME",
    help="Alerts raised before this local day (YYYY-MM-DD) or instant (RFC 3339).",
)
@click.option("--note", default="", help="Why, or what was done (kept with the acknowledgement).")
@data_dir_option
@format_option
@friendly_errors
def alerts_ack(
    alert_ids: tuple[str, ...],
    kinds: tuple[str, ...],
    communes: tuple[str, ...],
    facilities: tuple[str, ...],
    before: str | None,
    note: str,
    data_dir: Path,
    output_format: str,
) -> None:
    """Acknowledge alerts: those named by ALERT_ID, or every open, unacknowledged alert that
    matches all the filters given (one note for all). A commune notification or an incident
    is then resolved; a stock or deadline alert stays open until its condition clears, marked
    as acknowledged. E.g. after sending a commune its month's letter:
    `ostwatch alerts ack --kind commune_notification --commune 07216 --before 2024-04-01`.
    """
    filters = {"kinds": list(kinds), "communes": list(communes), "facilities": list(facilities)}
    gateway = open_gateway(data_dir)
    try:
        outcome = gateway.call(
            "alerts_ack", alert_ids=list(alert_ids), before=before, note=note, **filters
        )
    finally:
        gateway.close()
    if output_format == "json":
        emit_json(outcome)
        return
    for change in outcome["changes"][:20]:
        alert = change["alert"]
        click.echo(f"{alert['alert_id']}: {alert['status']} ({alert['kind']}, {alert['subject']})")
    count, already = outcome["acknowledged"], outcome["already_acknowledged"]
    more = f" (and {already} acknowledged before)" if already else ""
    click.echo(f"Đã xác nhận {count} cảnh báo / {count} alert(s) acknowledged{more}")


@alerts.command("deliveries")
@data_dir_option
@format_option
@click.option(
    "--status",
    type=click.Choice(["pending", "sent", "failed"]),
    help="Only alerts with a delivery in this state.",
)
@click.option("--alert", "alert_id", metavar="ID", help="Only this alert.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@friendly_errors
def alerts_deliveries(
    data_dir: Path, output_format: str, status: str | None, alert_id: str | None, limit: int
) -> None:
    """Delivery state per alert: each change, to whom, sent / pending / failed, attempts.

    Newest alerts first. Reads the delivery ledger (OSTWATCH_NOTIFY_STATE_PATH, default
    DATA_DIR/notify.sqlite) directly, with or without a running stack.
    """
    from infra.notify_cli import delivery_lines, ledger_path
    from streams.notify.ledger import delivery_report

    report = delivery_report(ledger_path(data_dir), status=status, alert_id=alert_id, limit=limit)
    if output_format == "json":
        emit_json(report)
        return
    click.echo("\n".join(delivery_lines(report)))


@alerts.command("redeliver")
@data_dir_option
@click.option("--alert", "alert_id", metavar="ID", help="Only this alert's deliveries.")
@format_option
@friendly_errors
def alerts_redeliver(data_dir: Path, alert_id: str | None, output_format: str) -> None:
    """Try failed deliveries again, after fixing their cause (a wrong address, a dead hook).

    A running worker picks them up within seconds, otherwise the next one to start.
    """
    from infra.notify_cli import ledger_path
    from streams.notify.ledger import Ledger

    path = ledger_path(data_dir)
    if not path.exists():
        raise UserError(f"no delivery state at {path} (has a worker delivered alerts here?)")
    ledger = Ledger(path)
    try:
        count = ledger.retry_failed(time.time(), alert_id)
    finally:
        ledger.close()
    if output_format == "json":
        emit_json({"queued": count})
        return
    click.echo(f"{count} failed deliver{'y' if count == 1 else 'ies'} queued again")


# -- letters to communes ---------------------------------------------------------------------


def letter_format_option(func: F) -> F:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["html", "csv", "json"]),
        default="html",
        show_default=True,
        help="html to print and sign; csv or json for programs and for `notices resolve`.",
    )(func)


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (a letter with names is personal data)."""
    import os

    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


@main.group(invoke_without_command=True)
@click.option("--month", metavar="YYYY-MM", help="The local calendar month of the events.")
@click.option(
    "--commune", "communes", multiple=True, metavar="CODE", help="Only this commune (repeatable)."
)
@click.option(
    "--facility",
    "facilities",
    multiple=True,
    metavar="ID",
    help="Only events at this facility (a facility sending its own letters).",
)
@click.option(
    "--communes-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV commune_code,commune_name,… (the notification recipients file) to name communes.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@letter_format_option
@data_dir_option
@click.pass_context
@friendly_errors
def notices(
    ctx: click.Context,
    month: str | None,
    communes: tuple[str, ...],
    facilities: tuple[str, ...],
    communes_file: Path | None,
    out: Path | None,
    output_format: str,
    data_dir: Path,
) -> None:
    """The month's letters to communes: one per commune of residence, every event its
    People's Committee must be told of (enrolment, violation, self-termination, completion,
    positive test) with the facility, local date and pseudonymous reference. The facility
    then adds the names: `ostwatch notices resolve LETTER --export REGISTER.csv`."""
    if ctx.invoked_subcommand is not None:
        return
    from infra.letters import render, with_communes

    if not month:
        raise UserError("--month YYYY-MM is required (e.g. --month 2024-03)")
    names: dict[str, str] = {}
    if communes_file is not None:
        from streams.notify.recipients import RecipientsError, load_recipients

        try:
            names = {code: c.name for code, c in load_recipients(communes_file).items()}
        except RecipientsError as exc:
            raise UserError(str(exc)) from exc
    gateway = open_gateway(data_dir)
    try:
        document = gateway.call(
            "notices", month=month, communes=list(communes), facilities=list(facilities)
        )
    finally:
        gateway.close()
    document = with_communes(document, communes, names)
    data = render(document, output_format)
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    out.write_bytes(data)
    lines = sum(len(letter["lines"]) for letter in document["letters"])
    click.echo(f"{len(document['letters'])} letter(s), {lines} line(s) written to {out}", err=True)


OUT_FORMATS = {".html": "html", ".htm": "html", ".csv": "csv", ".json": "json"}


@notices.command("resolve")
@click.argument("letter", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--export",
    "export",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The facility's register export (the CSV `ostwatch pseudonymize` reads).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The letter with names, as .html (default: LETTER's name + .names.html), .csv or "
    ".json; readable by its owner only.",
)
@identifier_option
@click.option(
    "--name-column", default="full_name", show_default=True, help="The export's name column."
)
@click.option(
    "--with",
    "extra",
    multiple=True,
    metavar="COLUMN",
    help="Another column of the export to print beside the name, e.g. address (repeatable).",
)
@format_option
@friendly_errors
@ignored_data_dir_option
def notices_resolve(
    letter: Path,
    export: Path,
    out: Path | None,
    identifier: str,
    name_column: str,
    extra: tuple[str, ...],
    output_format: str,
) -> None:
    """At the facility: put the names from its own register beside the references of a
    LETTER written by `ostwatch notices --format csv|json`, with the province's key
    (OSTWATCH_PSEUDONYM_KEY_FILE, as for `pseudonymize`). Runs offline; the result goes to a
    local file only, never to the platform, a topic, a table or a log; what it prints are
    counts."""
    from infra.letters import LetterError, read_letter, render
    from producers.commune_letters import add_names, register_of
    from producers.facility_export import ExportError

    target = out or letter.with_name(f"{letter.stem}.names.html")
    written_as = OUT_FORMATS.get(target.suffix.lower())
    if written_as is None:
        raise UserError(f"--out {target.name}: name it .html, .csv or .json")
    try:
        document = read_letter(letter.read_text(encoding="utf-8-sig"))
    except (LetterError, UnicodeDecodeError) as exc:
        raise UserError(f"{letter}: {exc}") from exc
    key, previous = pseudonym_keys()
    keys = [key] if previous is None else [key, previous]
    columns = [name_column, *(c for c in extra if c != name_column)]
    try:
        text = export.read_text(encoding="utf-8-sig")
        register = register_of(text, keys, as_kind(identifier), columns)
    except (ExportError, UnicodeDecodeError) as exc:
        raise UserError(f"{export}: {exc}") from exc
    resolved, outcome = add_names(document, register)
    write_private(target, render(resolved, written_as))
    summary = {
        "named": outcome.named,
        "not_in_register": outcome.not_in_register,
        "without_reference": outcome.without_reference,
        "unreadable_register_rows": register.unreadable,
        "key_ids": [k.key_id for k in keys],
        "out": str(target),
    }
    if output_format == "json":
        emit_json(summary)
        return
    unreadable = register.unreadable
    click.echo(
        f"{outcome.named} line(s) named from {export.name}; {outcome.not_in_register} of "
        f"patients not in this register; {outcome.without_reference} without a reference"
        + (f"; {unreadable} register row(s) with an unreadable identifier" if unreadable else "")
        + f". Written to {target} (readable by you only)."
    )


# -- dashboards -----------------------------------------------------------------------------


@main.group()
def dashboards() -> None:
    """Grafana dashboards and alert rules as code (see README, "Dashboards")."""


@dashboards.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@format_option
@friendly_errors
@ignored_data_dir_option
def dashboards_export(directory: Path, output_format: str) -> None:
    """Write Grafana's provisioning files (data source, dashboards, alert rules) into DIRECTORY."""
    from dashboards.provisioning import export

    written = export(directory)
    if output_format == "json":
        emit_json({"written": [str(p) for p in written]})
        return
    click.echo(f"wrote {len(written)} provisioning files under {directory}")


@dashboards.command("push")
@click.option(
    "--grafana-url",
    required=True,
    envvar="GRAFANA_URL",
    show_envvar=True,
    help="Grafana's base URL, e.g. https://grafana.example.org",
)
@click.option(
    "--token",
    required=True,
    envvar="GRAFANA_TOKEN",
    show_envvar=True,
    help="A Grafana service-account token with editor rights.",
)
@click.option(
    "--clickhouse-host",
    default="clickhouse",
    show_default=True,
    help="ClickHouse host for the data source, if Grafana does not have it yet.",
)
@click.option(
    "--viewer-password",
    envvar="OSTWATCH_VIEWER_PASSWORD",
    show_envvar=True,
    default=None,
    help="Password of the read-only ClickHouse user (to create the data source).",
)
@format_option
@friendly_errors
@ignored_data_dir_option
def dashboards_push(
    grafana_url: str,
    token: str,
    clickhouse_host: str,
    viewer_password: str | None,
    output_format: str,
) -> None:
    """Push the dashboards and alert rules into a running Grafana through its HTTP API."""
    from dataclasses import asdict

    from dashboards.push import PushError, push

    try:
        result = push(
            grafana_url, token, clickhouse_host=clickhouse_host, viewer_password=viewer_password
        )
    except PushError as exc:
        raise UserError(str(exc)) from exc
    if output_format == "json":
        emit_json(asdict(result))
        return
    click.echo(
        f"folder {result.folder}, data source {result.datasource}, "
        f"{len(result.dashboards)} dashboards, alert rules: {len(result.rules_created)} created, "
        f"{len(result.rules_updated)} updated"
    )


# -- replay and the portable archive ----------------------------------------------------

EXIT_DIFFERENT = 3  # `replay --verify` found differences (1 = could not verify, 2 = usage)


def show_verification(result: dict[str, Any]) -> None:
    """A person's view of `replay --verify`: the verdict, what was compared, the differences."""
    from infra.tables import print_table

    verdict = "khớp / equal" if result["equal"] else "KHÁC / DIFFERENT"
    click.echo(
        f"Phát lại từ kho lưu trữ / replay from the archive: {verdict} — "
        f"{result['events']} events, {result['difference_count']} differences, "
        f"{result['seconds']} s"
    )
    print_table(
        "Đã so sánh / Compared (rows)",
        [("table", "Bảng / Table"), ("rows", "Số dòng / Rows")],
        [{"table": name, "rows": rows} for name, rows in result["checked"].items()],
    )
    if result["differences"]:
        print_table(
            "Khác biệt / Differences",
            [
                ("table", "Bảng / Table"),
                ("key", "Khóa / Key"),
                ("column", "Cột / Column"),
                ("live", "Hiện tại / Live"),
                ("replayed", "Phát lại / Replayed"),
            ],
            [{**d, "key": orjson.dumps(d["key"]).decode()} for d in result["differences"]],
        )


def absolute(path: Path) -> str:
    """Paths go to the stack's worker, which does not share this shell's directory."""
    return str(path.expanduser().resolve())


@main.command("replay")
@data_dir_option
@format_option
@click.option(
    "--verify",
    is_flag=True,
    help="Rebuild every aggregate from the archive into a fresh store and compare it with "
    f"the live one. Exit 0 when equal, {EXIT_DIFFERENT} when they differ.",
)
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    help="Build a complete snapshot data directory here (new or empty), readable with "
    "`ostwatch report … --data-dir DIR`.",
)
@click.option(
    "--as-of",
    metavar="T",
    help="With --into: only the events with occurred_at at or before T (RFC 3339).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="With --verify: list at most this many differences (all are counted).",
)
@friendly_errors
def replay_command(
    data_dir: Path,
    output_format: str,
    verify: bool,
    into: Path | None,
    as_of: str | None,
    limit: int,
) -> None:
    """Replay the archived events: verify the live aggregates, or build a snapshot store.

    Works from the ClickHouse archive (the system of record), not from Kafka, so it does
    not depend on topic retention.
    """
    if verify == (into is not None):
        raise click.UsageError("give either --verify or --into DIR")
    if verify and as_of:
        raise click.UsageError("--as-of goes with --into (verify compares the whole archive)")
    if into is not None:
        result = replay_into(data_dir, into, as_of)
        if output_format == "json":
            emit_json(result)
        else:
            click.echo(
                f"snapshot in {result['into']}: {result['imported']} events"
                + (f" up to {as_of}" if as_of else "")
                + f", {result['registry_versions']} registry versions ({result['seconds']} s)"
            )
        return
    # No repair on opening: verify must see the live rows as they are.
    gateway = open_gateway(data_dir, reconcile=False)
    try:
        result = gateway.call("replay_verify", limit=limit)
    finally:
        gateway.close()
    if output_format == "json":
        emit_json(result)
    else:
        show_verification(result)
    if not result["equal"]:
        click.echo(
            f"ostwatch: replay differs from the live store: "
            f"{result['difference_count']} differences",
            err=True,
        )
        sys.exit(EXIT_DIFFERENT)


def replay_into(data_dir: Path, into: Path, as_of: str | None) -> dict[str, Any]:
    """Export the archive up to T from the live store, import it into a fresh directory.

    The embedded engine opens one data directory per process, so the import runs in a
    child process of its own on the new directory.
    """
    import os
    import shutil
    import subprocess
    import tempfile

    from sinks.api import OperationError, parse_as_of

    if as_of is not None:
        try:
            parse_as_of(as_of)
        except OperationError as exc:
            raise UserError(str(exc)) from None
    target = into.expanduser().resolve()
    if target == data_dir.expanduser().resolve():
        raise UserError("--into must be another directory than --data-dir")
    if target.exists() and any(target.iterdir()):
        raise UserError(f"--into {target}: not empty; give a new or empty directory")
    target.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=".replay-archive-", dir=target))
    try:
        gateway = open_gateway(data_dir)
        try:
            exported = gateway.call(
                "archive_export", out=absolute(staging / "archive"), as_of=as_of
            )
        finally:
            gateway.close()
        env = {k: v for k, v in os.environ.items() if k != "OSTWATCH_CLICKHOUSE_URL"}
        env["OSTWATCH_DATA_DIR"] = str(target)
        child = subprocess.run(  # noqa: S603 - our own CLI, arguments are paths
            [sys.executable, "-m", "infra.cli", "archive", "import", str(staging / "archive"),
             "--data-dir", str(target), "--format", "json"],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        if child.returncode != 0:
            reason = (child.stderr.strip().splitlines() or ["failed"])[-1]
            raise UserError(f"importing into {target}: {reason}")
        imported = orjson.loads(child.stdout)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "into": str(target),
        "as_of": as_of,
        "exported": exported["events"],
        "imported": imported["imported"],
        "registry_versions": imported["registry_versions"],
        "seconds": round(time.monotonic() - started, 3),
    }


@main.group()
def archive() -> None:
    """The portable archive: accepted events as Avro files per facility and month."""


@archive.command("export")
@data_dir_option
@format_option
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New or empty directory to write events/<facility>/<YYYY-MM>.avro, registry.avro "
    "and manifest.json into.",
)
@as_of_option
@click.option("--facility", "facilities", multiple=True, metavar="ID", help="Only this facility.")
@click.option("--from", "date_from", metavar="YYYY-MM-DD", help="First local day.")
@click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Last local day.")
@friendly_errors
def archive_export(
    data_dir: Path,
    output_format: str,
    out: Path,
    as_of: str | None,
    facilities: tuple[str, ...],
    date_from: str | None,
    date_to: str | None,
) -> None:
    """Write archived events as Avro object container files (schema embedded) and the
    registry history; any Avro tool reads them."""
    gateway = open_gateway(data_dir)
    try:
        result = gateway.call(
            "archive_export",
            out=absolute(out),
            as_of=as_of,
            facilities=list(facilities),
            date_from=date_from,
            date_to=date_to,
        )
    finally:
        gateway.close()
    if output_format == "json":
        emit_json(result)
    else:
        click.echo(
            f"exported {result['events']} events in {result['files']} files and "
            f"{result['registry_versions']} registry versions to {result['out']} "
            f"({result['seconds']} s)"
        )


@archive.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@data_dir_option
@format_option
@friendly_errors
def archive_import(directory: Path, data_dir: Path, output_format: str) -> None:
    """Add an exported archive's events to this store (event_ids already there are
    ignored), restore its registry history into a store that has none, and bring the
    aggregates level."""
    gateway = open_gateway(data_dir)
    try:
        result = gateway.call("archive_import", directory=absolute(directory))
    finally:
        gateway.close()
    if output_format == "json":
        emit_json(result)
    else:
        click.echo(
            f"imported {result['imported']} events from {result['files']} files "
            f"({result['duplicates']} already present); registry: {result['registry']} "
            f"({result['seconds']} s)"
        )


# -- audit ----------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """What an inspector asks for: the narcotics ledger, and proof that nothing was altered."""


@audit.command("ledger")
@data_dir_option
@click.option("--facility", required=True, metavar="ID", help="The facility (registry id).")
@click.option("--month", required=True, metavar="YYYY-MM", help="Local month (Asia/Ho_Chi_Minh).")
@click.option("--item", help="Only this item code (default: every item with stock events).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv", "html"]),
    default="table",
    show_default=True,
    help="json/csv for programs, html for a printable stock card, table for a quick look.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the document to this file instead of stdout.",
)
@friendly_errors
def audit_ledger(
    data_dir: Path,
    facility: str,
    month: str,
    item: str | None,
    output_format: str,
    out: Path | None,
) -> None:
    """Stock card per item for a month: opening, received, used, losses by reason,
    transfers, counts and their differences, closing — reconciled with `report stock`.

    opening + received − used by doses − used by tests + adjustments (signed as sent)
    + count differences = closing, exactly; "reconciles" checks the closing against
    `report stock --as-of` the month's last instant.
    """
    from infra.ledger_doc import ledger_csv, ledger_html

    gateway = open_gateway(data_dir)
    try:
        document = gateway.call("audit_ledger", facility=facility, month=month, item=item)
    finally:
        gateway.close()
    if output_format == "json":
        text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    elif output_format == "csv":
        text = ledger_csv(document)
    elif output_format == "html":
        text = ledger_html(document)
    else:
        _print_ledger(document)
        return
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"ostwatch: wrote {out}", err=True)
    unreconciled = [card["item"] for card in document["items"] if not card["reconciles"]]
    if unreconciled:
        raise UserError(
            f"ledger does not agree with the stock report for {', '.join(unreconciled)} "
            "(run `ostwatch replay --verify`)"
        )


def _print_ledger(document: dict[str, Any]) -> None:
    """One small table per item: the card's lines top to bottom, as on paper."""
    from infra.ledger_doc import LINE_LABELS
    from infra.tables import print_table
    from sinks.ledger import LINES, SUBTRACTED

    labels = {
        "opening_balance": ("Tồn đầu kỳ", "Opening balance"),
        **LINE_LABELS,
        "closing_balance": ("Tồn cuối kỳ", "Closing balance"),
    }
    for card in document["items"]:
        rows = [
            {
                "line": f"{labels[name][0]} / {labels[name][1]}",
                "quantity": 0.0 - card[name] if name in SUBTRACTED else card[name],  # never -0
            }
            for name in ("opening_balance", *LINES, "closing_balance")
        ]
        agrees = "khớp / agrees" if card["reconciles"] else "KHÔNG KHỚP / DOES NOT AGREE"
        print_table(
            f"Thẻ kho / Stock card — {document['facility_name']} ({document['facility_id']}), "
            f"{document['month']}: {card['item_name']} ({card['unit']}); "
            f"báo cáo tồn kho / stock report {card['stock_report_on_hand']}: {agrees}",
            [("line", "Nội dung / Line"), ("quantity", "Số lượng / Quantity (±)")],
            rows,
        )


@audit.command("verify")
@data_dir_option
@format_option
@click.option(
    "--facility",
    "facilities",
    multiple=True,
    metavar="ID",
    help="Only this facility's chain (repeatable; default: every facility).",
)
@friendly_errors
def audit_verify(data_dir: Path, output_format: str, facilities: tuple[str, ...]) -> None:
    """Recompute the archive's hash chains; name every changed, deleted or inserted event.

    Exits 1 when anything was altered. The chain heads printed are worth writing down:
    a chain rewritten from scratch would end in another head.
    """
    gateway = open_gateway(data_dir)
    try:
        result = gateway.call("audit_verify", facilities=list(facilities))
    finally:
        gateway.close()
    if output_format == "json":
        emit_json(result)
    else:
        _print_verification(result)
    if not result["intact"]:
        findings = result["findings"]
        first = findings[0]
        where = (
            "(not in the chain)"
            if first["position"] is None
            else f"at chain position {first['position']}"
        )
        raise UserError(
            f"archive altered: {len(findings)} finding(s), first {first['problem']} "
            f"event {first['event_id']} of {first['facility_id']} {where}"
        )


def _print_verification(result: dict[str, Any]) -> None:
    from infra.tables import print_table

    rate = result["events_per_s"]
    click.echo(
        f"{result['events']} archived events, {result['chain_rows']} chain links, "
        f"{result['facilities']} facilities, {result['seconds']} s"
        + (f" ({rate:,} events/s)" if rate else "")
    )
    if result["findings"]:
        print_table(
            "Bất thường / Findings",
            [
                ("facility_id", "Mã cơ sở / Facility"),
                ("position", "Vị trí / Position"),
                ("event_id", "Mã sự kiện / Event id"),
                ("problem", "Lỗi / Problem"),
                ("detail", "Chi tiết / Detail"),
            ],
            result["findings"],
        )
    else:
        click.echo("Nguyên vẹn / intact: no archived event was changed, deleted or inserted")
    print_table(
        "Đầu chuỗi / Chain heads",
        [
            ("facility_id", "Mã cơ sở / Facility"),
            ("length", "Số sự kiện / Events"),
            ("head_hash", "Băm đầu chuỗi / Head hash"),
            ("repaired_links", "Nối bù khi khởi động / Chained at start"),
        ],
        result["heads"],
    )


if __name__ == "__main__":
    main()
