"""How the CLI reaches the store: through the running stack's API, or by opening it itself.

The embedded ClickHouse allows one process per data directory, so while ``ostwatch up``
runs, every command asks its worker over loopback HTTP; with no stack running (or with a
ClickHouse server configured) the command opens the store directly. Both run the same
operations table (``sinks.api``).
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from ostwatch.files import private_dir, private_umask, write_private
from ostwatch.settings import ClickHouseSettings
from sinks import api
from sinks.store import Store

STACK_FILE = "stack.json"
LONG_TIMEOUT_S = 3600.0


class GatewayError(RuntimeError):
    """The request failed; the message is meant for the user as it is."""


class WorkerAway(GatewayError):
    """Nothing listens on the worker's port: it is down, or restarting."""


class Gateway(Protocol):
    def call(self, operation: str, **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class StackInfo:
    """What a running ``ostwatch up`` publishes about itself in its data directory.

    ``token`` is the API's bearer token (a new one per start), so the file is written
    readable by its owner only; ``tls_cafile`` is the certificate to trust when the API is
    served over HTTPS."""

    api_url: str
    bootstrap: str
    supervisor_pid: int
    events_topic: str
    token: str = field(default="", repr=False)
    tls_cafile: str | None = None

    @classmethod
    def read(cls, data_dir: Path) -> StackInfo | None:
        """The running stack of this data directory, or None (missing or stale file)."""
        path = data_dir / STACK_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            info = cls(**doc)
        except (OSError, ValueError, TypeError):
            return None
        return info if _alive(info.supervisor_pid) else None

    def write(self, data_dir: Path) -> None:
        write_private(data_dir / STACK_FILE, json.dumps(asdict(self), indent=2).encode())

    @property
    def live_url(self) -> str:
        """The live view's link, token included: opening it sets the view's cookie."""
        return f"{self.api_url}/live/?token={self.token}"

    def api(self, path: str, body: Any | None = None, timeout: float = 60.0) -> tuple[int, Any]:
        """GET ``path`` (POST with a JSON ``body``) on this stack's API, with its token."""
        return http_json(
            f"{self.api_url}{path}", body, timeout, token=self.token, cafile=self.tls_cafile
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def client_ssl_context(cafile: str | None) -> ssl.SSLContext | None:
    """Trust the stack's own certificate (which may be self-signed or a leaf) for HTTPS."""
    if cafile is None:
        return None
    context = ssl.create_default_context(cafile=cafile)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def http_json(
    url: str,
    body: Any | None = None,
    timeout: float = 60.0,
    *,
    token: str = "",
    cafile: str | None = None,
) -> tuple[int, Any]:
    """GET (or POST with a JSON body) on the stack's API; returns (status, decoded JSON)."""
    data = orjson.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 - URL built from our own stack file
        url, data=data, headers=headers
    )
    context = client_ssl_context(cafile)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            return response.status, orjson.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        try:
            return exc.code, orjson.loads(payload)
        except orjson.JSONDecodeError:
            return exc.code, {"error": payload.decode("utf-8", errors="replace")[:300]}
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        refused = isinstance(getattr(exc, "reason", exc), ConnectionRefusedError)
        error = WorkerAway if refused else GatewayError
        raise error(f"the stack at {url} did not answer: {exc}") from exc


class HttpGateway:
    """Operations run by the stack's worker (which owns the embedded ClickHouse).

    Given the supervisor's pid, a refused connection while that supervisor lives means its
    worker is restarting (``ostwatch up`` restarts a worker that died, on the same port):
    the call waits up to ``restart_wait_s`` for it instead of failing. A refused request
    never reached the worker, so sending it again is safe for every operation.
    """

    def __init__(
        self,
        api_url: str,
        supervisor_pid: int | None = None,
        restart_wait_s: float = 120.0,
        *,
        token: str = "",
        cafile: str | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.supervisor_pid = supervisor_pid
        self.restart_wait_s = restart_wait_s
        self.token = token
        self.cafile = cafile

    @classmethod
    def of(cls, info: StackInfo) -> HttpGateway:
        return cls(info.api_url, info.supervisor_pid, token=info.token, cafile=info.tls_cafile)

    def call(self, operation: str, **kwargs: Any) -> Any:
        timeout = LONG_TIMEOUT_S if operation in api.LONG_OPERATIONS else 60.0
        url = f"{self.api_url}/api/op/{operation}"
        deadline = time.monotonic() + self.restart_wait_s
        waiting = False
        while True:
            try:
                status, doc = http_json(url, kwargs, timeout, token=self.token, cafile=self.cafile)
                break
            except WorkerAway:
                if self.supervisor_pid is None or not _alive(self.supervisor_pid):
                    raise
                if not waiting:
                    waiting = True
                    print(
                        f"the stream worker is restarting; waiting up to "
                        f"{self.restart_wait_s:.0f} s for it",
                        file=sys.stderr,
                    )
                if time.monotonic() > deadline:
                    raise GatewayError(
                        f"the stream worker at {self.api_url} did not come back within "
                        f"{self.restart_wait_s:.0f} s; see the stack's logs/worker.jsonl"
                    ) from None
                time.sleep(0.5)
        if status != 200:
            message = doc.get("error") if isinstance(doc, dict) else doc
            raise GatewayError(str(message))
        return doc["result"]

    def close(self) -> None:
        return None


class LocalGateway:
    """Operations run in this process on a store it opens itself."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def open(
        cls, clickhouse: ClickHouseSettings, data_dir: Path, *, reconcile: bool = True
    ) -> LocalGateway:
        """Open the store; ``reconcile`` first repairs aggregate keys the last worker may
        have left behind (off for `replay --verify`, which must see the rows as they are)."""
        if clickhouse.url is None:  # the embedded engine writes into the data directory
            private_umask()
            private_dir(data_dir)
        store = Store.open(clickhouse, data_dir)
        store.migrate()
        if reconcile:
            store.aggregates.reconcile()  # the last worker may have died mid-batch
        return cls(store)

    def call(self, operation: str, **kwargs: Any) -> Any:
        try:
            result = api.run(self.store, operation, kwargs)
        except ValueError as exc:
            raise GatewayError(str(exc)) from exc
        # Same JSON shapes as over HTTP.
        return orjson.loads(orjson.dumps(result, default=str))

    def close(self) -> None:
        self.store.close()


def open_gateway(
    data_dir: Path, clickhouse: ClickHouseSettings, *, reconcile: bool = True
) -> Gateway:
    """The running stack's API if there is one for this data directory, else the store."""
    info = StackInfo.read(data_dir)
    if info is not None:
        return HttpGateway.of(info)
    return LocalGateway.open(clickhouse, data_dir, reconcile=reconcile)
