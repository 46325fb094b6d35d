"""The worker's local HTTP API, served by Faust's web server inside the process that owns
ClickHouse (the embedded engine allows only one process per data directory).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from faust.web import Request, Response, View

from ostwatch.metrics import resident_memory_mb
from schemas.alerts import AlertChange
from sinks import api
from sinks.clickhouse import StoreUnavailable
from streams.app import WorkerContext
from streams.web_guard import authenticated

log = logging.getLogger(__name__)


def intake_assigned(app: faust.App, topic: str) -> bool:
    """True when this worker consumes at least one partition of the events topic."""
    consumer = getattr(app, "_consumer", None)
    if consumer is None or app.rebalancing:
        return False
    return any(tp.topic == topic for tp in consumer.assignment())


def register(app: faust.App, context: WorkerContext) -> None:
    """Declare the API views: readiness and the operations table of ``sinks.api``."""
    service, events_topic, offsets = context.service, context.broker.events_topic, context.offsets

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
                kwargs = await request.json()
            except ValueError:
                return self.json({"error": "request body is not JSON"}, status=400)
            loop = asyncio.get_running_loop()
            # The judge acknowledges through its live engine (alerts/judge.py: one writer);
            # any other worker writes through the operations table and publishes here.
            live_ack = name == "alerts_ack" and service.judges_alerts
            try:
                if live_ack:
                    result = await service.acknowledge_alerts(kwargs)
                else:
                    result = await loop.run_in_executor(None, api.run, service.store, name, kwargs)
            except (api.OperationError, ValueError) as exc:
                return self.json({"error": str(exc)}, status=400)
            except StoreUnavailable as exc:
                return self.json({"error": f"ClickHouse unavailable: {exc}"}, status=503)
            if name == "registry_load":
                await loop.run_in_executor(None, service.refresh_registry, True)
            if name == "alerts_ack" and not live_ack:
                changes = [AlertChange.model_validate(c) for c in result["changes"]]
                await service.context.publish_alerts(changes)
            if name in api.RELOADS_INTAKE:
                await loop.run_in_executor(None, service.warm_up)
            return self.json({"result": result})
