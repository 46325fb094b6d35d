"""The worker's local HTTP API: entry points served by Faust's web server inside the process
that owns ClickHouse, registered on the app by the worker's assembly (infra/worker.py).

``guard`` is the front door (token, Host, JSON-only bodies: docs/security.md), ``api`` the
typed operations (infra/application/) and readiness, ``live_view`` the live view's pages.
"""

from __future__ import annotations

import faust

from infra.http import api, live_view
from streams.app import WorkerContext


def register(app: faust.App, context: WorkerContext) -> None:
    """Declare every page of the API and the live view on ``app``."""
    api.register(app, context)
    live_view.register(app, context)
