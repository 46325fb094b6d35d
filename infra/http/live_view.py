"""The live view's pages, served by the worker's web server (it owns ClickHouse): the page,
its script, plotly.js from the plotly wheel, and the panels' data (``dashboards.live``)."""

from __future__ import annotations

import asyncio
import logging

import faust
from faust.web import Request, Response, View

from dashboards import live
from sinks.clickhouse import StoreUnavailable
from streams.app import WorkerContext

log = logging.getLogger(__name__)

STATIC = {
    "": ("live.html", "text/html"),
    "live.js": ("live.js", "text/javascript"),
}


def register(app: faust.App, context: WorkerContext) -> None:
    service, alerts = context.service, context.alerts

    @app.page("/live/")
    class Page(View):
        async def get(self, request: Request) -> Response:
            name, kind = STATIC[""]
            return self.bytes(live.static_file(name), content_type=kind)

    @app.page("/live/live.js")
    class Script(View):
        async def get(self, request: Request) -> Response:
            name, kind = STATIC["live.js"]
            return self.bytes(live.static_file(name), content_type=kind)

    @app.page("/live/plotly.min.js")
    class Plotly(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(live.plotly_js(), content_type="text/javascript")

    @app.page("/live/data")
    class Data(View):
        async def get(self, request: Request) -> Response:
            loop = asyncio.get_running_loop()
            try:
                doc = await loop.run_in_executor(
                    None, live.panel_data, service.store.panels, alerts
                )
            except StoreUnavailable as exc:
                return self.json({"error": f"ClickHouse unavailable: {exc}"}, status=503)
            return self.json(doc)
