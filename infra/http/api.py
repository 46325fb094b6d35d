"""The worker's local API: readiness, and the typed operations (infra/application/) the CLI's
``RemoteOperations`` calls, run here on the store this process owns (the embedded engine
allows only one process per data directory).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from faust.web import Request, Response, View

from infra.application.common import OperationError
from infra.application.operations import LocalOperations, run_named
from infra.http.guard import authenticated
from ostwatch.metrics import resident_memory_mb
from schemas.alerts import AckSelection
from sinks.clickhouse import StoreUnavailable
from streams.alerts.engine import Acknowledged
from streams.app import WorkerContext

log = logging.getLogger(__name__)

# Operations after which the worker must re-read the archive (its duplicate filter) and
# the registry: they change both behind the intake's back.
RELOADS_INTAKE = frozenset({"archive_import"})


def intake_assigned(app: faust.App, topic: str) -> bool:
    """True when this worker consumes at least one partition of the events topic."""
    consumer = getattr(app, "_consumer", None)
    if consumer is None or app.rebalancing:
        return False
    return any(tp.topic == topic for tp in consumer.assignment())


def worker_operations(context: WorkerContext, loop: asyncio.AbstractEventLoop) -> LocalOperations:
    """The operations on the worker's store; acknowledgements go through its live alert
    engine (``IntakeService.acknowledge_alerts``: published, then stored, between two
    judgements), the one writer of alerts. The operations run in an executor thread, so the
    acknowledgement is handed to the event loop and waited for."""

    service = context.service

    def acknowledge(selection: AckSelection, note: str) -> Acknowledged:
        future = asyncio.run_coroutine_threadsafe(service.acknowledge_alerts(selection, note), loop)
        return future.result()

    return LocalOperations(
        service.store, context.alerts, acknowledge if service.alerts is not None else None
    )


def register(app: faust.App, context: WorkerContext) -> None:
    """Declare the API views: readiness and the operations of ``infra.application``."""
    service, events_topic, offsets = context.service, context.broker.events_topic, context.offsets
    operations: list[LocalOperations] = []  # built on the first request, on the app's loop
    # The operations' own threads: an acknowledgement waits in one for the event loop, which
    # runs the engine in the default executor, so the two pools must not be the same.
    threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="api-operation")

    @app.page("/api/status")
    class Status(View):
        async def get(self, request: Request) -> Response:
            assigned = intake_assigned(app, events_topic)
            ready = assigned and service.stats.store_healthy and service.stats.failure is None
            if not authenticated(request):
                # A probe without the token learns only what the open port already says.
                return self.json({"ready": ready}, status=200 if ready else 503)
            body: dict[str, Any] = {
                "ready": ready,
                "intake_assigned": assigned,
                "store": {"healthy": service.stats.store_healthy, "dsn": service.store.dsn},
                "registry_version": service.registry_version,
                "intake": service.stats.as_dict(),
                "duplicate_filter": service.duplicate_filter.summary(),
                "alert_role": service.alert_role.as_dict() if service.alerts else None,
                "memory_mb": resident_memory_mb(),
                "commits": offsets.as_dict(),
            }
            return self.json(body, status=200 if body["ready"] else 503)

    @app.page("/api/freshness/reset")
    class FreshnessReset(View):
        async def post(self, request: Request) -> Response:
            """Start a new freshness measurement (benchmarks reset it before each run)."""
            service.stats.freshness.reset()
            return self.json({"reset": True})

    @app.page("/api/op/{name}")
    class Operation(View):
        async def post(self, request: Request, name: str) -> Response:
            try:
                body = await request.json()
            except ValueError:
                return self.json({"error": "request body is not JSON"}, status=400)
            loop = asyncio.get_running_loop()
            if not operations:
                operations.append(worker_operations(context, loop))
            try:
                result = await loop.run_in_executor(threads, run_named, operations[0], name, body)
            except (OperationError, ValueError) as exc:
                return self.json({"error": str(exc)}, status=400)
            except StoreUnavailable as exc:
                return self.json({"error": f"ClickHouse unavailable: {exc}"}, status=503)
            if name == "registry_load":
                await loop.run_in_executor(None, service.refresh_registry, True)
            if name in RELOADS_INTAKE:
                await loop.run_in_executor(None, service.warm_up)
            return self.json({"result": result.model_dump(mode="json")})
