"""The local API's front door: who may call it, from where, and how every failure looks.

The worker's web server answers the CLI and the live view, and it can change the stack
(acknowledge alerts, load a registry, export the archive). A page open in the operator's
browser, or a DNS name re-bound to 127.0.0.1, must not be able to drive it. So every request
passes one aiohttp middleware that

- accepts only a loopback ``Host`` (``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT``,
  plus the configured host when the API is served over TLS beyond loopback): a re-bound name
  never matches (403);
- asks for the per-stack token: ``Authorization: Bearer …`` (the CLI, from ``stack.json``), or
  the live view's cookie, set once by ``GET /live/?token=…`` (the link ``ostwatch up`` prints)
  and then dropped from the URL by a redirect, as notebook servers do (401 without either);
- lets a cookie-authenticated request through only from the API's own origin (``Origin`` /
  ``Sec-Fetch-Site``): the browser sends a SameSite cookie to every port of 127.0.0.1, so
  another local web app could otherwise ride on it (403);
- takes request bodies as ``application/json`` only (415), which a cross-origin page cannot
  send without a CORS preflight that this server never grants;
- answers every failure, its own and the views', as ``{"error": …}`` JSON with a status code,
  and never a traceback;
- adds a Content-Security-Policy (no inline script; data is shown with ``textContent``).

One request is public: ``GET /api/status`` without a token answers only ``{"ready": …}``
(the view reads ``request[AUTHENTICATED]``), for probes that hold no secret; the rest of the
status needs the token. See docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ostwatch.settings import LOOPBACK_HOSTS, StackSettings

log = logging.getLogger(__name__)

AUTHENTICATED = web.RequestKey("ostwatch.authenticated", bool)
TOKEN_QUERY = "token"  # noqa: S105 - the query parameter's name
LIVE_PATH = "/live/"
PUBLIC = frozenset({("GET", "/api/status"), ("HEAD", "/api/status")})
SAFE_METHODS = frozenset({"GET", "HEAD"})
# Operations whose body may exceed aiohttp's default 1 MiB: a national registry's files.
LARGE_BODIES: Mapping[str, int] = {"/api/op/registry_load": 64 * 1024 * 1024}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    # plotly.js injects its own <style> rules; no script runs from inline text or attributes.
    "style-src 'self' 'unsafe-inline'; font-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str) -> web.Response:
    """The one shape of every API failure."""
    return web.json_response({"error": message}, status=status)


def _host_names(host: str) -> set[str]:
    """How a browser writes ``host`` in a Host header: IPv6 literals in brackets."""
    return {f"[{host}]" if ":" in host else host}


@dataclass(frozen=True)
class ApiGuard:
    """The decisions of the middleware, kept apart from aiohttp so they are easy to test."""

    token: str
    tls: bool = False
    extra_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, stack: StackSettings, token: str) -> ApiGuard:
        extra = frozenset() if stack.api_on_loopback else frozenset(_host_names(stack.api_host))
        return cls(token=token, tls=stack.api_tls_cert is not None, extra_hosts=extra)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def host_allowed(self, host_header: str | None, port: int | None) -> bool:
        """Only the names this API is reached by on this machine, with its own port."""
        if not host_header or port is None:
            return False
        names: set[str] = set(self.extra_hosts)
        for host in LOOPBACK_HOSTS:
            names |= _host_names(host)
        allowed = {f"{name}:{port}" for name in names}
        if port == (443 if self.tls else 80):
            allowed |= names  # the default port may be left out
        return host_header.lower() in allowed

    def bearer_ok(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        return hmac.compare_digest(authorization[7:].strip().encode(), self.token.encode())

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.token.encode())

    @property
    def cookie_value(self) -> str:
        """Derived from the token, so that the cookie itself is no bearer token."""
        return hmac.new(self.token.encode(), b"ostwatch live view", hashlib.sha256).hexdigest()

    def cookie_ok(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self.cookie_value.encode())

    @staticmethod
    def cookie_name(port: int) -> str:
        """One cookie per port: cookies are shared by every port of a host."""
        return f"ostwatch_{port}"

    def same_origin(self, method: str, host_header: str, headers: Mapping[str, str]) -> bool:
        """Whether a cookie-carrying request comes from the API's own pages.

        ``Origin`` (sent by browsers on every POST) must be this very origin; without it,
        ``Sec-Fetch-Site`` must say same-origin (or "none", a typed address, for a GET). A
        request carrying neither is no browser's: only a GET is let through then.
        """
        origin = headers.get("Origin")
        if origin is not None:
            return origin.lower() == f"{self.scheme}://{host_header.lower()}"
        site = headers.get("Sec-Fetch-Site")
        if site is not None:
            return site == "same-origin" or (site == "none" and method in SAFE_METHODS)
        return method in SAFE_METHODS


def authenticated(request: Any) -> bool:
    """Whether the middleware found the token on this request (public paths pass without)."""
    return bool(request.get(AUTHENTICATED, False))


def _port_of(request: web.Request) -> int | None:
    """The port this request came in on (the socket's, not what the client claims)."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    return int(sockname[1]) if sockname else None


def _json_content(request: web.Request) -> bool:
    return request.content_type == "application/json"


def middleware(guard: ApiGuard) -> Any:
    """The aiohttp middleware applying ``guard`` to every request of the web server."""

    async def refuse_or_pass(request: web.Request, handler: Handler) -> web.StreamResponse:
        port = _port_of(request)
        host = request.headers.get("Host")
        if not guard.host_allowed(host, port):
            return json_error(403, "Host not allowed: use 127.0.0.1, localhost or [::1]")
        assert host is not None and port is not None  # noqa: S101 - checked just above
        method, path = request.method, request.path
        if method in SAFE_METHODS and path == LIVE_PATH and TOKEN_QUERY in request.query:
            return _log_in(guard, request.query[TOKEN_QUERY], port)
        cookie = request.cookies.get(guard.cookie_name(port))
        by_bearer = guard.bearer_ok(request.headers.get("Authorization"))
        by_cookie = not by_bearer and guard.cookie_ok(cookie)
        if by_cookie and not guard.same_origin(method, host, request.headers):
            return json_error(403, "cross-origin request refused")
        authenticated = by_bearer or by_cookie
        if not authenticated and (method, path) not in PUBLIC:
            return json_error(
                401,
                "token required: the CLI sends the one in stack.json; open the live view "
                "through the link `ostwatch up` prints",
            )
        if method not in SAFE_METHODS and not _json_content(request):
            return json_error(415, "request body must be Content-Type: application/json")
        request[AUTHENTICATED] = authenticated
        limit = LARGE_BODIES.get(path)
        if limit is not None:
            request = request.clone(client_max_size=limit)
            request[AUTHENTICATED] = authenticated
        return await handler(request)

    @web.middleware
    async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await refuse_or_pass(request, handler)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            detail = f": {exc.text}" if exc.status == 413 and exc.text else ""
            response = json_error(exc.status, (exc.reason or "refused") + detail)
        except Exception as exc:
            log.exception("API request %s %s failed", request.method, request.path)
            response = json_error(500, f"internal error ({type(exc).__name__}); see the worker log")
        if response.status >= 400 and response.content_type != "application/json":
            response = json_error(response.status, response.reason or "refused")
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return guard_middleware


def _log_in(guard: ApiGuard, given: str, port: int) -> web.StreamResponse:
    """The live view's link: a right token becomes a cookie, and the URL loses the token."""
    if not guard.token_ok(given):
        return json_error(401, "wrong token: open the link `ostwatch up` printed")
    response = web.Response(status=303, headers={"Location": LIVE_PATH})
    response.set_cookie(
        guard.cookie_name(port),
        guard.cookie_value,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=guard.tls,
    )
    return response


def server_ssl_context(stack: StackSettings) -> ssl.SSLContext | None:
    """The TLS context of the API when a certificate is configured (settings checked both)."""
    if stack.api_tls_cert is None or stack.api_tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(stack.api_tls_cert), str(stack.api_tls_key))
    return context


def web_options(stack: StackSettings, token: str) -> dict[str, Any]:
    """Faust app options putting the guard (and TLS, if configured) in front of every view."""
    guard = ApiGuard.from_settings(stack, token)
    return {
        "web_application_options": {"middlewares": [middleware(guard)]},
        "web_ssl_context": server_ssl_context(stack),
    }
