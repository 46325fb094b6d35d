"""The local API against a hostile neighbour, on a real ``ostwatch up`` (issue 15, items 4
and 7): the token, the Host check, JSON-only bodies, a page of another origin in Chromium
that tries to acknowledge an alert, load a registry and export the archive, a refused second
``ostwatch up`` that must leave the running stack alone, and a data directory only its owner
can read."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from infra.gateway import StackInfo
from tests.integration.conftest import FIXTURES, OSTWATCH, RunningStack
from tests.support.alert_events import dose, enrol
from tests.support.browser import CHROMIUM, FLAGS, needs_chromium, wait_until
from tests.support.notify import alert_change, outbox_keys, publish

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack with the test registry and a few events: an open commune notification."""
    tmp = tmp_path_factory.mktemp("apisec")
    running = RunningStack(tmp / "data")
    running.start()
    try:
        running.cli("registry", "load", str(FIXTURES / "registry"))
        events = tmp / "events.jsonl"
        docs = [enrol("01 07:00"), dose("01 08:00"), dose("02 08:00")]
        events.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
        assert running.ingest(events)["accepted"] == 3
        yield running
    finally:
        running.stop()


def info_of(stack: RunningStack) -> StackInfo:
    info = StackInfo.read(stack.data_dir)
    assert info is not None, "the stack is not running"
    return info


def raw(
    info: StackInfo, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, Any]:
    """One request with exactly these headers (Host included), as any client could send."""
    url = urlsplit(info.api_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def commune_notice(stack: RunningStack) -> dict[str, Any]:
    rows = stack.json("report", "alerts")
    (notice,) = [r for r in rows if r["kind"] == "commune_notification"]
    return notice


def test_requests_need_the_token_a_loopback_host_and_json(stack: RunningStack) -> None:
    info = info_of(stack)
    host = urlsplit(info.api_url).netloc
    bearer = {"Authorization": f"Bearer {info.token}"}
    body = b'{"alert_id": "x"}'
    json_type = {"Host": host, "Content-Type": "application/json"}
    status, doc = raw(info, "POST", "/api/op/alerts_ack", json_type, body)
    assert status == 401 and "token" in doc["error"]
    rebound = {**json_type, **bearer, "Host": f"attacker.example:{urlsplit(info.api_url).port}"}
    status, doc = raw(info, "POST", "/api/op/alerts_ack", rebound, body)
    assert status == 403 and "Host" in doc["error"]
    text = {**bearer, "Host": host, "Content-Type": "text/plain"}
    status, doc = raw(info, "POST", "/api/op/alerts_ack", text, body)
    assert status == 415
    status, doc = raw(info, "POST", "/api/op/alerts_ack", {**json_type, **bearer}, body)
    assert (status, doc) == (400, {"error": "no alert with id 'x'"})
    status, doc = raw(info, "GET", "/nowhere", {"Host": host, **bearer})
    assert status == 404 and set(doc) == {"error"}
    # Readiness without the token, and nothing else; everything with it.
    status, doc = raw(info, "GET", "/api/status", {"Host": host})
    assert (status, doc) == (200, {"ready": True})
    status, doc = raw(info, "GET", "/api/status", {"Host": host, **bearer})
    assert status == 200 and doc["intake"]["accepted"] == 3
    status, doc = raw(info, "GET", "/live/data", {"Host": host})
    assert status == 401


def test_the_stack_files_are_its_owners_alone(stack: RunningStack) -> None:
    data_dir = stack.data_dir
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    stack_file = data_dir / "stack.json"
    assert stat.S_IMODE(stack_file.stat().st_mode) == 0o600
    assert len(json.loads(stack_file.read_text())["token"]) >= 32
    shared = [
        f"{path.relative_to(data_dir)} {stat.S_IMODE(path.lstat().st_mode):o}"
        for path in data_dir.rglob("*")
        if not path.is_symlink() and path.lstat().st_mode & 0o077
    ]
    files = sum(1 for _ in data_dir.rglob("*"))
    assert files > 50 and shared == [], f"readable by others: {shared[:10]}"


def test_a_forged_alert_change_on_the_topic_is_never_delivered(stack: RunningStack) -> None:
    """Anything that can write to the broker can put an AlertChange on the alerts topic;
    only the one the judge signed reaches the outbox (same key: same partition, in order)."""
    forged = alert_change(900, kind="commune_notification", severity="critical",
                          details={"commune": "C-07", "note": "gọi 0912345678"})  # fmt: skip
    genuine = alert_change(901)
    key = forged.alert.alert_id.encode()
    publish(stack.data_dir, [(key, forged.to_bytes())], signed=False)
    publish(stack.data_dir, [(key, genuine.to_bytes())])
    deadline = time.monotonic() + 60
    while genuine.idempotency_key not in outbox_keys(stack.data_dir):
        assert time.monotonic() < deadline, "the signed change never reached the outbox"
        time.sleep(0.2)
    assert forged.idempotency_key not in outbox_keys(stack.data_dir)
    log = (stack.data_dir / "logs" / "worker.jsonl").read_text(encoding="utf-8")
    assert "not signed by this stack's alert judge" in log
    assert "0912345678" not in log


def test_an_ack_note_with_personal_data_is_refused_in_one_line(stack: RunningStack) -> None:
    notice = commune_notice(stack)
    note = "gọi 0912345678"
    refused = stack.cli("alerts", "ack", notice["alert_id"], "--note", note, check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "phone" in refused.stderr and "0912345678" not in refused.stderr
    assert commune_notice(stack)["acknowledged_at"] is None


def test_a_registry_over_one_mebibyte_loads_through_the_running_stack(
    stack: RunningStack, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(FIXTURES / "registry", registry)
    stations = 12_000
    with (registry / "facilities.csv").open("a", encoding="utf-8") as handle:
        for n in range(stations):
            name = f"Trạm Y tế xã số {n} thuộc huyện Lục Ngạn tỉnh Bắc Giang (điểm {n})"
            handle.write(f"CHS-{n:05d},{name},commune_health_station,DHC-01,Lục Ngạn,Bắc Giang\n")
    size = sum(path.stat().st_size for path in registry.iterdir())
    assert size > 1024 * 1024
    try:
        loaded = stack.json("registry", "load", str(registry))
        assert loaded["facilities"] == 8 + stations and not loaded["unchanged"]
    finally:
        stack.cli("registry", "load", str(FIXTURES / "registry"))


def test_a_refused_second_up_leaves_the_running_stack_alone(stack: RunningStack) -> None:
    before = (stack.data_dir / "stack.json").read_bytes()
    second = subprocess.run(
        [*OSTWATCH, "up", "--data-dir", str(stack.data_dir), "--no-live"],
        capture_output=True, text=True, env=stack.env(), timeout=120, check=False,
    )  # fmt: skip
    assert second.returncode != 0
    assert "already running" in second.stderr
    assert (stack.data_dir / "stack.json").read_bytes() == before
    assert stack.cli("status").returncode == 0


class AttackerSite:
    """A web page on another origin (another port of 127.0.0.1: same site, so the browser
    even sends the live view's SameSite cookie along)."""

    def __init__(self, page: str) -> None:
        body = page.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AttackerSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


ATTACK = """<!doctype html><html><body><script>
const api = %(api)s;
const results = {};
async function attempt(name, url, init) {
  try {
    const response = await fetch(url, init);
    let text = null;
    try { text = await response.text(); } catch (e) { text = "unreadable: " + e; }
    results[name] = {type: response.type, status: response.status, text: text};
  } catch (e) {
    results[name] = {error: String(e)};
  }
}
async function run() {
  const plain = {"Content-Type": "text/plain"};
  for (const credentials of ["omit", "include"]) {
    const sneak = {method: "POST", mode: "no-cors", headers: plain, credentials: credentials};
    await attempt("ack-" + credentials, api + "/api/op/alerts_ack",
                  {...sneak, body: JSON.stringify({alert_id: %(alert)s, note: "pwned"})});
    await attempt("registry-" + credentials, api + "/api/op/registry_load",
                  {...sneak, body: JSON.stringify({files: %(files)s, source: "attacker"})});
    await attempt("export-" + credentials, api + "/api/op/archive_export",
                  {...sneak, body: JSON.stringify({out: %(out)s})});
  }
  await attempt("ack-cors-json", api + "/api/op/alerts_ack", {method: "POST", mode: "cors",
                credentials: "include", headers: {"Content-Type": "application/json"},
                body: JSON.stringify({alert_id: %(alert)s})});
  await attempt("read-data", api + "/live/data", {credentials: "include"});
  await attempt("read-status", api + "/api/status", {credentials: "include"});
  window.results = results;
}
run();
</script></body></html>"""


@needs_chromium
def test_a_page_of_another_origin_cannot_drive_or_read_the_stack(
    stack: RunningStack, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    info = info_of(stack)
    notice = commune_notice(stack)
    assert notice["status"] == "open" and notice["acknowledged_at"] is None
    version = stack.json("registry", "load", str(FIXTURES / "registry"))["version"]
    stolen = tmp_path / "stolen"
    registry = {"facilities.csv": "facility_id,name,type,parent_id,district,province\n"
                "EVIL-1,Evil,provincial_cdc,,,Evil\n"}  # fmt: skip
    page_text = ATTACK % {
        "api": json.dumps(info.api_url),
        "alert": json.dumps(notice["alert_id"]),
        "files": json.dumps(registry),
        "out": json.dumps(str(stolen)),
    }
    with AttackerSite(page_text) as site, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            # The worst case: the operator has the live view open in this browser (cookie set).
            page.goto(info.live_url, timeout=60_000)
            wait_until(page, "() => Number(document.body.dataset.refreshes || 0) >= 1")
            page.goto(site.url)
            wait_until(page, "() => window.results !== undefined")
            results: dict[str, Any] = page.evaluate("window.results")
        finally:
            browser.close()

    # Nothing changed: the alert is still unacknowledged, no registry version was added, no
    # archive was written where the page asked.
    after = commune_notice(stack)
    assert (after["status"], after["acknowledged_at"]) == ("open", None)
    assert stack.json("registry", "load", str(FIXTURES / "registry"))["version"] == version
    assert stack.json("report", "rejected") == []
    assert not stolen.exists()
    # And nothing could be read: opaque answers, or the browser refused the request outright.
    for name, result in results.items():
        assert "error" in result or (result["type"] == "opaque" and result["text"] == ""), (
            name,
            result,
        )
    assert "error" in results["ack-cors-json"]  # the preflight found no CORS grant
    assert "error" in results["read-data"] and "error" in results["read-status"]
    assert os.path.exists(stack.data_dir / "stack.json")


class TlsStack(RunningStack):
    """A stack serving its API over HTTPS with a self-signed certificate for 127.0.0.1."""

    def __init__(self, data_dir: Path, cert: Path, key: Path) -> None:
        super().__init__(data_dir)
        self.tls = {"OSTWATCH_API_TLS_CERT": str(cert), "OSTWATCH_API_TLS_KEY": str(key)}

    def env(self) -> dict[str, str]:
        return super().env() | self.tls


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_the_api_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    stack = TlsStack(tmp_path / "data", cert, key)
    stack.start()
    try:
        info = info_of(stack)
        assert info.api_url.startswith("https://127.0.0.1:") and info.tls_cafile == str(cert)
        assert stack.json("registry", "load", str(FIXTURES / "registry"))["version"] == 1
        url = urlsplit(info.api_url)
        plain = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            plain.request("GET", "/api/status")
            plain.getresponse()
        plain.close()
    finally:
        stack.stop()


def test_the_api_beyond_loopback_needs_tls(tmp_path: Path) -> None:
    env = dict(os.environ, OSTWATCH_API_HOST="0.0.0.0")  # noqa: S104
    refused = subprocess.run(
        [*OSTWATCH, "up", "--data-dir", str(tmp_path / "data"), "--no-live"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and "OSTWATCH_API_TLS_CERT" in refused.stderr


def test_an_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    """`ingest` and `up` against a broker that is not there: one line each, exit 1."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(enrol("01 07:00")) + b"\n")
    env = dict(os.environ, OSTWATCH_BROKER_BOOTSTRAP_SERVERS="127.0.0.1:1")
    commands = {
        "ingest": ["ingest", str(events), "--data-dir", str(tmp_path / "a"), "--no-progress"],
        "up": ["up", "--data-dir", str(tmp_path / "b"), "--no-live"],
    }
    running = {
        name: subprocess.Popen(
            [*OSTWATCH, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, args in commands.items()
    }
    for name, process in running.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 1, (name, stderr)
        assert stderr.count("\n") == 1 and "cannot reach the Kafka broker" in stderr, (name, stderr)
