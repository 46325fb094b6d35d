"""How the CLI reaches the running stack: its ``stack.json``, and JSON over its local API.

The embedded ClickHouse allows one process per data directory, so while ``ostwatch up``
runs, every command asks its worker over loopback HTTP. This module is the transport (the
token, TLS, waiting through a worker restart); the typed operations on top of it are
``infra.application.client.RemoteOperations``.
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
from typing import Any

import orjson

from ostwatch.files import write_private

STACK_FILE = "stack.json"
LONG_TIMEOUT_S = 3600.0


class GatewayError(RuntimeError):
    """The request failed; the message is meant for the user as it is."""


class WorkerAway(GatewayError):
    """Nothing listens on the worker's port: it is down, or restarting."""


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
        """Operation ``operation`` with ``kwargs`` as its JSON body; its JSON result."""
        return self.post(operation, kwargs)

    def post(self, operation: str, body: dict[str, Any], timeout: float = 60.0) -> Any:
        """``POST /api/op/<operation>`` with ``body``; the JSON result, or GatewayError with
        the worker's one-line reason."""
        url = f"{self.api_url}/api/op/{operation}"
        deadline = time.monotonic() + self.restart_wait_s
        waiting = False
        while True:
            try:
                status, doc = http_json(url, body, timeout, token=self.token, cafile=self.cafile)
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
