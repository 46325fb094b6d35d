"""The API's front door (infra/http/guard.py) on a real aiohttp server: the token, the Host
check against DNS rebinding, JSON-only bodies, the live view's cookie and its same-origin
rule, the larger body allowed for a registry, and JSON for every failure."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestServer

from infra.http.guard import ApiGuard, authenticated, middleware
from ostwatch.settings import SettingsError, StackSettings, load

TOKEN = secrets.token_urlsafe(16)
GUARD = ApiGuard(token=TOKEN)
Calls = list[str]


def guarded_app(calls: Calls) -> web.Application:
    async def op(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append(request.match_info["name"])
        return web.json_response({"result": len(str(body))})

    async def status(request: web.Request) -> web.Response:
        return web.json_response({"ready": True, "full": authenticated(request)})

    async def data(request: web.Request) -> web.Response:
        return web.json_response({"panels": []})

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app = web.Application(middlewares=[middleware(GUARD)])
    app.router.add_post("/api/op/{name}", op)
    app.router.add_get("/api/status", status)
    app.router.add_get("/live/", data)
    app.router.add_get("/live/data", data)
    app.router.add_get("/broken", broken)
    return app


Scenario = Callable[[ClientSession, str, int], Awaitable[None]]


def serve(scenario: Scenario) -> Calls:
    """Run ``scenario(session, base_url, port)`` against the guarded app; returns the
    operations that reached their handler."""
    calls: Calls = []

    async def main() -> None:
        server = TestServer(guarded_app(calls), host="127.0.0.1")
        await server.start_server()
        try:
            async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
                await scenario(session, f"http://127.0.0.1:{server.port}", int(server.port or 0))
        finally:
            await server.close()

    asyncio.run(main())
    return calls


BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def post(
    session: ClientSession, url: str, *, headers: dict[str, str], data: bytes = b"{}"
) -> tuple[int, Any]:
    async with session.post(url, data=data, headers=headers, allow_redirects=False) as response:
        return response.status, await response.json(content_type=None)


def test_operations_need_the_token() -> None:
    async def scenario(session: ClientSession, base: str, port: int) -> None:
        json_type = {"Content-Type": "application/json"}
        status, doc = await post(session, f"{base}/api/op/alerts_ack", headers=json_type)
        assert status == 401 and "token required" in doc["error"]
        wrong = {**json_type, "Authorization": "Bearer not-the-token"}
        assert (await post(session, f"{base}/api/op/alerts_ack", headers=wrong))[0] == 401
        status, doc = await post(
            session, f"{base}/api/op/alerts_ack", headers={**json_type, **BEARER}
        )
        assert status == 200 and doc == {"result": 2}

    assert serve(scenario) == ["alerts_ack"]


def test_a_foreign_host_header_is_refused_even_with_the_token() -> None:
    """DNS rebinding: evil.example resolving to 127.0.0.1 sends Host: evil.example:PORT."""

    async def scenario(session: ClientSession, base: str, port: int) -> None:
        headers = {**BEARER, "Content-Type": "application/json"}
        for host in (f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}", "evil.example"):
            status, doc = await post(
                session, f"{base}/api/op/registry_load", headers={**headers, "Host": host}
            )
            assert status == 403 and "Host" in doc["error"], host
        for host in (f"localhost:{port}", f"[::1]:{port}", f"127.0.0.1:{port}"):
            status, _ = await post(
                session, f"{base}/api/op/names", headers={**headers, "Host": host}
            )
            assert status == 200, host

    assert serve(scenario) == ["names"] * 3


def test_bodies_must_be_json() -> None:
    async def scenario(session: ClientSession, base: str, port: int) -> None:
        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            status, doc = await post(
                session, f"{base}/api/op/alerts_ack", headers={**BEARER, "Content-Type": kind}
            )
            assert status == 415 and "application/json" in doc["error"], kind

    assert serve(scenario) == []


def test_status_without_the_token_is_readiness_only() -> None:
    async def scenario(session: ClientSession, base: str, port: int) -> None:
        async with session.get(f"{base}/api/status") as response:
            assert response.status == 200
            assert await response.json() == {"ready": True, "full": False}
        async with session.get(f"{base}/api/status", headers=BEARER) as response:
            assert await response.json() == {"ready": True, "full": True}
        async with session.get(f"{base}/live/data") as response:
            assert response.status == 401

    serve(scenario)


def test_the_live_link_sets_a_strict_cookie_and_drops_the_token() -> None:
    async def scenario(session: ClientSession, base: str, port: int) -> None:
        async with session.get(f"{base}/live/?token=wrong", allow_redirects=False) as response:
            assert response.status == 401
        async with session.get(f"{base}/live/?token={TOKEN}", allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/live/"
            cookie = response.headers["Set-Cookie"]
        assert cookie.startswith(f"ostwatch_{port}=") and TOKEN not in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        # The session now carries the cookie: the page's own fetches work …
        same = {"Sec-Fetch-Site": "same-origin"}
        async with session.get(f"{base}/live/data", headers=same) as response:
            assert response.status == 200
        origin = {"Origin": f"http://127.0.0.1:{port}", "Content-Type": "application/json"}
        assert (await post(session, f"{base}/api/op/report_stock", headers=origin))[0] == 200
        # … but not a page of another origin (another port of 127.0.0.1 is same-site, so the
        # browser sends the SameSite cookie there too).
        other = {"Origin": f"http://127.0.0.1:{port + 1}", "Content-Type": "application/json"}
        status, doc = await post(session, f"{base}/api/op/alerts_ack", headers=other)
        assert status == 403 and "cross-origin" in doc["error"]
        null = {"Origin": "null", "Content-Type": "application/json"}
        assert (await post(session, f"{base}/api/op/alerts_ack", headers=null))[0] == 403
        site = {"Sec-Fetch-Site": "same-site"}
        async with session.get(f"{base}/live/data", headers=site) as response:
            assert response.status == 403
        # A cookie-carrying POST with no browser metadata at all is no page of ours.
        bare = {"Content-Type": "application/json"}
        assert (await post(session, f"{base}/api/op/alerts_ack", headers=bare))[0] == 403

    assert serve(scenario) == ["report_stock"]


def test_every_failure_is_json_with_security_headers() -> None:
    async def scenario(session: ClientSession, base: str, port: int) -> None:
        for path in ("/broken", "/nowhere"):
            async with session.get(f"{base}{path}", headers=BEARER) as response:
                assert response.content_type == "application/json"
                doc = await response.json()
                assert set(doc) == {"error"}
                assert "Traceback" not in doc["error"]
                assert "script-src 'self'" in response.headers["Content-Security-Policy"]
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                statuses.append(response.status)

    statuses: list[int] = []
    serve(scenario)
    assert statuses == [500, 404]


def test_a_registry_may_exceed_one_mebibyte_other_operations_may_not() -> None:
    big = b'{"files": {"facilities.csv": "' + b"x" * (3 * 1024 * 1024) + b'"}}'

    async def scenario(session: ClientSession, base: str, port: int) -> None:
        headers = {**BEARER, "Content-Type": "application/json"}
        status, _ = await post(session, f"{base}/api/op/registry_load", headers=headers, data=big)
        assert status == 200
        status, doc = await post(session, f"{base}/api/op/alerts_ack", headers=headers, data=big)
        assert status == 413 and "error" in doc

    assert serve(scenario) == ["registry_load"]


def test_the_api_off_loopback_needs_tls(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="OSTWATCH_API_TLS_CERT"):
        load(StackSettings, api_host="0.0.0.0")  # noqa: S104
    with pytest.raises(SettingsError, match="go together"):
        load(StackSettings, api_tls_cert=tmp_path / "cert.pem")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-")
    key.write_text("-")
    settings = load(StackSettings, api_host="10.0.0.5", api_tls_cert=cert, api_tls_key=key)
    assert settings.api_scheme == "https"
    assert ApiGuard.from_settings(settings, TOKEN).host_allowed("10.0.0.5:8443", 8443)
    assert load(StackSettings, api_host="127.0.0.1").api_scheme == "http"
    with pytest.raises(SettingsError, match="at least 16"):
        load(StackSettings, api_token=secrets.token_urlsafe(3))
