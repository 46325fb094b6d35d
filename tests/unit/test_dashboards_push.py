"""``ostwatch dashboards push`` against a local RECORDING HTTP server — not Grafana (none can
run here). The server answers like Grafana's API in the few ways the push depends on (404 for
what does not exist yet, 200 with a JSON body otherwise) and records every request, so the
test checks the exchange: paths, methods, the token, and the bodies Grafana would receive."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboards.alert_rules import rules
from dashboards.grafana import DATASOURCE_UID, FOLDER_UID, all_dashboards
from ostwatch.settings import AlertSettings


class RecordingGrafana(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict[str, Any]] = []
        self.existing: set[str] = set()  # paths that answer 200 to GET


class Handler(BaseHTTPRequestHandler):
    server: RecordingGrafana

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "body": body,
            }
        )
        if self.command == "GET" and self.path not in self.server.existing:
            status, doc = 404, {"message": "not found"}
        else:
            status, doc = 200, {"status": "success", "uid": "x"}
            if self.command in ("POST", "PUT") and self.path.startswith(
                "/api/v1/provisioning/alert-rules"
            ):
                self.server.existing.add(f"/api/v1/provisioning/alert-rules/{body['uid']}")
        payload = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def grafana() -> Iterator[RecordingGrafana]:
    server = RecordingGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_push(url: str, *extra: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "infra.cli", "dashboards", "push", "--grafana-url", url]
    return subprocess.run(
        [*command, *extra], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def push(
    server: RecordingGrafana,
    password: str | None = "s3cret",  # noqa: S107 - the test's own
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if password:
        env["OSTWATCH_VIEWER_PASSWORD"] = password
    url = f"http://127.0.0.1:{server.server_address[1]}"
    return run_push(url, "--token", "glsa_test", "--format", "json", env=env)


def test_first_push_creates_everything(grafana: RecordingGrafana) -> None:
    result = push(grafana)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["folder"] == "created" and doc["datasource"] == "created"
    assert doc["rules_created"] == [r.uid for r in rules(AlertSettings())]
    assert {r["auth"] for r in grafana.requests} == {"Bearer glsa_test"}
    writes = [(r["method"], r["path"]) for r in grafana.requests if r["method"] != "GET"]
    assert writes[:2] == [("POST", "/api/folders"), ("POST", "/api/datasources")]
    dashboards = [r["body"] for r in grafana.requests if r["path"] == "/api/dashboards/db"]
    assert [d["dashboard"]["uid"] for d in dashboards] == list(all_dashboards(AlertSettings()))
    assert all(d["folderUid"] == FOLDER_UID and d["overwrite"] for d in dashboards)
    source = next(r["body"] for r in grafana.requests if r["path"] == "/api/datasources")
    assert source["uid"] == DATASOURCE_UID and source["jsonData"]["username"] == "ostwatch_viewer"
    assert source["secureJsonData"] == {"password": "s3cret"}
    posted = [
        r["body"] for r in grafana.requests if r["path"] == "/api/v1/provisioning/alert-rules"
    ]
    assert [r["uid"] for r in posted] == [r.uid for r in rules(AlertSettings())]
    assert all(r["folderUID"] == FOLDER_UID and r["condition"] == "B" for r in posted)


def test_second_push_updates_rules_in_place(grafana: RecordingGrafana) -> None:
    assert push(grafana).returncode == 0
    grafana.existing |= {f"/api/folders/{FOLDER_UID}", f"/api/datasources/uid/{DATASOURCE_UID}"}
    grafana.requests.clear()
    result = push(grafana, password=None)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (
        doc["rules_updated"] == [r.uid for r in rules(AlertSettings())]
        and doc["rules_created"] == []
    )
    assert not [r for r in grafana.requests if r["method"] == "POST" and "alert-rules" in r["path"]]
    assert [
        r["method"]
        for r in grafana.requests
        if r["path"].startswith("/api/v1/provisioning/alert-rules/")
    ].count("PUT") == len(rules(AlertSettings()))


def test_missing_data_source_without_password_is_a_one_line_error(
    grafana: RecordingGrafana,
) -> None:
    result = push(grafana, password=None)
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "OSTWATCH_VIEWER_PASSWORD" in result.stderr


def test_unreachable_grafana_is_a_one_line_error() -> None:
    result = run_push("http://127.0.0.1:9", "--token", "t", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
