"""The one ostwatch Faust application.

Built by a factory rather than at import time (no client may be created on import), with
an explicit list of the domain modules that register agents and views on it.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import faust

from ostwatch.settings import AlertSettings, BrokerSettings, StreamSettings
from streams.kafka_compat import EMBEDDED_GROUP_TIMINGS, limit_fetch_wait

if TYPE_CHECKING:  # the domain modules import this one
    from streams.alerts.signing import AlertSigner
    from streams.intake.offsets import OffsetLedger
    from streams.intake.service import IntakeService
    from streams.notify.service import NotifyService

# Each module has ``register(app, context: WorkerContext)``; order does not matter. The web
# pages (the API, the live view) are entry points, registered by the worker's assembly
# (infra/http/).
DOMAIN_MODULES: tuple[str, ...] = (
    "streams.intake.agent",
    "streams.alerts.agent",
    "streams.notify.agent",
)


def _credentials(broker: BrokerSettings) -> Any:
    if broker.sasl_mechanism:
        security = broker.kafka_python_security()
        return faust.SASLCredentials(
            username=str(security["sasl_plain_username"]),
            password=str(security["sasl_plain_password"]),
            mechanism=broker.sasl_mechanism,
            ssl_context=_ssl_context(broker) if broker.security_protocol == "SASL_SSL" else None,
        )
    if broker.security_protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(broker))
    return None


def _ssl_context(broker: BrokerSettings) -> Any:
    import ssl

    context = ssl.create_default_context(
        cafile=str(broker.ssl_cafile) if broker.ssl_cafile else None
    )
    return context


def create_app(
    broker: BrokerSettings,
    stream: StreamSettings,
    *,
    bootstrap: str,
    web_host: str,
    web_port: int,
    data_dir: Path,
    web_options: Mapping[str, Any] | None = None,
) -> faust.App:
    """Configure the Faust app: at-least-once, acks=all, earliest offsets, memory tables.

    ``web_options`` put the API's guard and TLS in front of the web server
    (``infra.http.guard.web_options``)."""
    limit_fetch_wait(stream.fetch_max_wait_ms)
    options: dict[str, Any] = {
        "broker": [f"kafka://{server.strip()}" for server in bootstrap.split(",")],
        "broker_credentials": _credentials(broker),
        "store": "memory://",
        "processing_guarantee": "at_least_once",
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        "topic_partitions": broker.partitions,
        "topic_replication_factor": broker.replication_factor,
        "topic_disable_leader": True,
        "broker_commit_interval": 1.0,
        "stream_buffer_maxsize": max(4096, 2 * stream.batch_max),
        "web_enabled": True,
        "web_bind": web_host,
        "web_host": web_host,
        "web_port": web_port,
        "web_in_thread": False,
        "datadir": str(data_dir / "faust"),
        "autodiscover": False,
    }
    if broker.quirks:
        options.update(EMBEDDED_GROUP_TIMINGS)
    options.update(web_options or {})
    return faust.App(stream.group_id, **options)


def raw_topic(app: faust.App, broker: BrokerSettings, name: str) -> Any:
    """A topic of raw bytes (keys and values are encoded by ostwatch itself), laid out as
    the broker settings say; every domain module declares its topics through this."""
    return app.topic(
        name,
        partitions=broker.partitions,
        replicas=broker.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
    )


def on_assignment(
    app: faust.App,
    topic: str,
    handle: Callable[[set[int]], Awaitable[None]],
    *,
    revoked: bool = False,
) -> None:
    """Call ``handle`` with this worker's partitions of ``topic`` after every assignment
    (Faust signals the whole new assignment), or with ``revoked`` those taken away (Faust
    signals that once the streams have finished the messages they were working on)."""

    async def changed(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        tps: set[Any] = args[0] if args else kwargs.get("revoked" if revoked else "assigned", set())
        await handle({tp.partition for tp in tps if tp.topic == topic})

    # mode types the handler as a plain function; the signal awaits coroutine handlers.
    signal = app.on_partitions_revoked if revoked else app.on_partitions_assigned
    signal.connect(cast(Any, changed))


@dataclass(frozen=True)
class WorkerContext:
    """Everything the domain modules are given, built once by the worker (``infra/worker.py``):
    the settings, the intake, its offset ledger, delivery (None when off) and the signer."""

    broker: BrokerSettings
    stream: StreamSettings
    service: IntakeService
    offsets: OffsetLedger
    alert_signer: AlertSigner
    alerts: AlertSettings
    notify: NotifyService | None = None


def register_domains(app: faust.App, context: WorkerContext) -> None:
    """Import each domain module and let it declare its agents/views on the app."""
    for name in DOMAIN_MODULES:
        importlib.import_module(name).register(app, context)
