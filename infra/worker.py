"""The stream worker process: owns ClickHouse, runs the Faust app and the local API.

Production runs it as ``ostwatch worker`` against a Kafka cluster and a ClickHouse server;
the embedded stack runs the same entry point as a child of ``ostwatch up``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from pathlib import Path

import faust

from infra import http
from infra.http.guard import web_options
from ostwatch import logs
from ostwatch.files import private_dir, private_umask, write_private
from ostwatch.settings import (
    AlertSettings,
    BrokerSettings,
    ClickHouseSettings,
    NotifySettings,
    StackSettings,
    StreamSettings,
)
from sinks.store import Store
from streams.alerts.agent import alert_publisher
from streams.alerts.engine import AlertEngine
from streams.alerts.signing import AlertSigner
from streams.app import WorkerContext, create_app, register_domains
from streams.intake.agent import dead_letter_sender
from streams.intake.offsets import OffsetLedger
from streams.intake.pipeline import IntakeConfig, IntakeContext
from streams.intake.service import IntakeService
from streams.notify.service import NotifyService, build_notify

log = logging.getLogger(__name__)

API_TOKEN_FILE = "api.token"  # noqa: S105 - a file name, not a token


def intake_service(
    store: Store,
    stream: StreamSettings,
    clickhouse: ClickHouseSettings,
    alerts: AlertSettings,
    app: faust.App | None = None,
    *,
    broker: BrokerSettings | None = None,
    signer: AlertSigner | None = None,
) -> IntakeService:
    """The intake as the worker runs it (limits, refresh, retries from the settings; the alert
    engine as OSTWATCH_ALERT_ENABLED says), so that benchmarks drive exactly the same one.

    With the Faust ``app`` (and its ``broker`` settings and alert ``signer``) the intake
    publishes alert changes and dead letters on its topics and stops retrying when the app
    stops; without one (benchmarks) it only writes to the store."""
    engine = AlertEngine(store, alerts, live=True) if alerts.enabled else None
    context = IntakeContext(
        store=store, config=IntakeConfig.from_settings(stream, clickhouse), alerts=engine
    )
    if app is not None:
        if broker is None or signer is None:
            raise ValueError("an intake on a Faust app needs the broker settings and the signer")
        running = app
        context = replace(
            context,
            send_dead_letters=dead_letter_sender(app, broker),
            should_stop=lambda: bool(running.should_stop),
        )
        if engine is not None:
            context = replace(context, publish_alerts=alert_publisher(app, broker, signer))
    return IntakeService(context)


def api_token(stack: StackSettings, data_dir: Path) -> str:
    """The API's token: ``ostwatch up`` passes its own; a worker run alone keeps one in
    DATA_DIR/api.token (0600), for whoever runs the CLI there (docs/security.md)."""
    if stack.api_token is not None:
        return stack.api_token.get_secret_value()
    path = data_dir / API_TOKEN_FILE
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32).encode())
        log.info("API token written to %s (send it as 'Authorization: Bearer …')", path)
    return path.read_text(encoding="utf-8").strip()


def run_worker(
    stack: StackSettings,
    broker: BrokerSettings,
    clickhouse: ClickHouseSettings,
    stream: StreamSettings,
    alerts: AlertSettings,
    notify_settings: NotifySettings,
) -> None:
    """Open the store, warm the intake from it, then run Faust until SIGTERM/SIGINT.

    Every setting comes from the entry point (``ostwatch worker``), built once there."""
    if broker.bootstrap_servers is None:
        raise SystemExit(
            "ostwatch worker needs OSTWATCH_BROKER_BOOTSTRAP_SERVERS "
            "(the embedded stack sets it; use `ostwatch up` for everything at once)"
        )
    private_umask()  # before anything is created: chDB parts, SQLite, logs (ostwatch/files.py)
    data_dir = Path(stack.data_dir)
    private_dir(data_dir)
    logs.configure(stack.log_level, data_dir / "logs" / "worker.jsonl", console=True)
    # Before ClickHouse: a wrong notification setting fails the start, not the first alert.
    notify: NotifyService | None = None
    signer = AlertSigner.for_stack(data_dir, alerts.signing_key_file)
    if notify_settings.enabled:
        notify = build_notify(notify_settings, data_dir, signer=signer)
        log.info("alert delivery on", extra={"notifiers": sorted(notify.dispatcher.notifiers)})
    store = Store.open(clickhouse, data_dir)
    applied = store.migrate()
    if applied:
        log.info("migrations applied: %s", ", ".join(applied))
    app = create_app(
        broker,
        stream,
        bootstrap=broker.bootstrap_servers,
        web_host=stack.api_host,
        web_port=stack.api_port,
        data_dir=data_dir,
        web_options=web_options(stack, api_token(stack, data_dir)),
    )
    service = intake_service(store, stream, clickhouse, alerts, app, broker=broker, signer=signer)
    service.warm_up()
    context = WorkerContext(
        broker=broker,
        stream=stream,
        service=service,
        offsets=OffsetLedger(broker.events_topic),
        alert_signer=signer,
        alerts=alerts,
        notify=notify,
    )
    register_domains(app, context)
    http.register(app, context)
    worker = faust.Worker(
        app,
        loglevel=stack.log_level.lower(),
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    try:
        worker.execute_from_commandline()
    finally:
        if notify is not None:
            notify.close()
        store.close()
