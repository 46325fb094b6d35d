"""The stack: ``up`` (everything in the foreground), ``status`` (ready or not, and each part),
``worker`` (the stream worker alone, as production runs it)."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from infra.cli.common import (
    UserError,
    data_dir_option,
    emit_json,
    format_option,
    friendly_errors,
    stack_settings,
)
from ostwatch import logs
from ostwatch.settings import (
    BrokerSettings,
    ClickHouseSettings,
    SettingsError,
    StreamSettings,
    SupervisorSettings,
    load,
)


def _supervisor_default(name: str) -> Any:
    return SupervisorSettings.model_fields[name].default


SUPERVISOR_EPILOG = (
    '\b\nSupervision (docs/operations.md, "Reliability"), also from the environment:\n'
    + "\n".join(
        f"  OSTWATCH_SUPERVISOR_{name.upper()} [default: {field.default}]: {field.description}"
        for name, field in SupervisorSettings.model_fields.items()
    )
)


@click.command(epilog=SUPERVISOR_EPILOG)
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
    from infra.simulation import start_simulation
    from infra.stack import StackSupervisor
    from ostwatch.files import private_umask

    private_umask()  # before the first log file: the data directory is its owner's alone
    stack = stack_settings(data_dir)
    broker = load(BrokerSettings)
    supervision = load(
        SupervisorSettings, start_failures=start_failures, watchdog_stall_s=watchdog_stall_s
    )
    logs.configure(stack.log_level, Path(data_dir) / "logs" / "supervisor.jsonl", console=True)
    stream = load(StreamSettings)
    supervisor = StackSupervisor(stack, broker, supervision, group_id=stream.group_id)
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
            feeder = start_simulation(
                info, speed or None, seed, days, supervisor.stopping, broker=broker, stream=stream
            )
        show_live = sys.stdout.isatty() if live is None else live
        view = LiveView(info, data_dir, feeder, interactive=show_live)
        with view:
            supervisor.run_until_stopped(tick=view.refresh, every=1.0 if show_live else 10.0)
    finally:
        supervisor.stop()
        if info is not None:  # a start that failed says why in its one line, nothing more
            click.echo("ostwatch: stopped", err=True)


@click.command()
@data_dir_option
@format_option
@click.option("--wait", type=float, default=0.0, help="Wait up to this many seconds for ready.")
def status(data_dir: Path, output_format: str, wait: float) -> None:
    """Exit 0 once the stack of the data directory is ready to ingest, non-zero before."""
    from infra.gateway import GatewayError, StackInfo
    from infra.stack import broker_unavailable, read_supervisor_state

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
            down = broker_unavailable(read_supervisor_state(data_dir), info.bootstrap)
            if doc.get("ready") and down:
                doc.update(ready=False, reason=down)
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

    from infra.application.client import RemoteOperations
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
        # No waiting through a worker restart: status says what it finds now.
        gateway = HttpGateway(info.api_url, token=info.token, cafile=info.tls_cafile)
        found["offsets"] = check_offsets(probe, RemoteOperations(gateway), since)
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


@click.command(hidden=False)
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


COMMANDS = (up, status, worker)
