"""The live view in a real headless browser: Debian's chromium driven by Playwright, against a
real ``ostwatch up`` fed with simulated province files through the CLI. The page loads, the
charts draw with data, the tables fill, refreshes keep coming, and a screenshot is saved
under test-artifacts/ (gitignored). One facility is named like a stored-XSS attack, and its
name must stay text."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import RunningStack
from tests.support.browser import CHROMIUM, FLAGS, needs_chromium, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


# A facility name that runs script if a page puts it in as markup (issue 15, item 5).
XSS_NAME = "<img src=x onerror=window.__xss=1>"


def name_a_facility(registry: Path, name: str) -> str:
    """Rename the first treatment facility of a registry's facilities.csv; returns its id."""
    path = registry / "facilities.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    row = next(r for r in rows if r["type"] == "treatment_facility")
    row["name"] = name
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return row["facility_id"]


class SimulatedStack(RunningStack):
    """The stack with the first three simulated days ingested; ``later`` holds the fourth."""

    later: Path


@pytest.fixture(scope="module")
def simulated_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedStack]:
    tmp = tmp_path_factory.mktemp("live")
    stack = SimulatedStack(tmp / "data")
    stack.start()
    try:
        stack.cli(
            "simulate",
            "--start",
            "2024-03-24",
            "--days",
            "4",
            "--out",
            str(tmp / "all.jsonl"),
            "--registry-out",
            str(tmp / "registry"),
        )
        lines = (tmp / "all.jsonl").read_bytes().splitlines(keepends=True)
        later_day = b'"occurred_at":"2024-03-27'
        (tmp / "events.jsonl").write_bytes(b"".join(x for x in lines if later_day not in x))
        stack.later = tmp / "later.jsonl"
        stack.later.write_bytes(b"".join(x for x in lines if later_day in x))
        name_a_facility(tmp / "registry", XSS_NAME)
        stack.cli("registry", "load", str(tmp / "registry"))
        counts = stack.ingest(tmp / "events.jsonl")
        assert counts["accepted"] > 1000 and counts["rejected"] == 0
        yield stack
    finally:
        stack.stop()


def api_url(stack: RunningStack) -> str:
    return str(json.loads((stack.data_dir / "stack.json").read_text())["api_url"])


def live_link(stack: RunningStack) -> str:
    """The link `ostwatch up` prints: the live view with the stack's token."""
    doc = json.loads((stack.data_dir / "stack.json").read_text())
    return f"{doc['api_url']}/live/?token={doc['token']}"


@needs_chromium
def test_live_view_renders_charts_and_tables_with_data(simulated_stack: SimulatedStack) -> None:
    from playwright.sync_api import sync_playwright

    url = live_link(simulated_stack)
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, timeout=60_000)
            wait_until(page, "() => Number(document.body.dataset.refreshes || 0) >= 2")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "live-view.png"), full_page=True)
            # Charts: plotly drew bars with data in each chart panel.
            for key in ("dosing_progress", "alerts_by_severity"):
                bars = page.locator(f"#panel-{key} .point path").count()
                assert bars > 0, f"{key}: no bars drawn"
            for key in ("targets", "timeliness"):
                assert page.locator(f"#panel-{key} tbody tr").count() > 0, key
            # The stock table: rows, Vietnamese numbers, status cells in the shared colours.
            stock_rows = page.locator("#panel-stock tbody tr")
            assert stock_rows.count() > 10
            text = page.locator("#panel-stock tbody").inner_text()
            assert "," in text and "Cảnh báo · warning" in text and "Ổn · ok" in text
            amber = page.locator("#panel-stock td.status", has_text="warning").first
            assert amber.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 152, 48)"
            assert "/" in page.locator("#updated").inner_text()  # dd/mm/yyyy
            # Live: a new day arrives through the stack and the page shows it without a reload.
            before = page.locator("#panel-dosing_progress").inner_text()
            simulated_stack.ingest(simulated_stack.later)
            changed = "b => document.querySelector('#panel-dosing_progress').innerText !== b"
            wait_until(page, changed, before)
        finally:
            browser.close()
    assert all(r.startswith(api_url(simulated_stack)) for r in requests), "no CDN, nothing remote"
    assert (ARTIFACTS / "live-view.png").stat().st_size > 20_000


def test_live_data_is_json_of_every_live_panel(simulated_stack: SimulatedStack) -> None:
    from infra.gateway import StackInfo

    info = StackInfo.read(simulated_stack.data_dir)
    assert info is not None
    deadline = time.monotonic() + 30
    status, doc = info.api("/live/data")
    while status != 200 and time.monotonic() < deadline:
        time.sleep(1)
        status, doc = info.api("/live/data")
    assert status == 200
    assert [p["key"] for p in doc["panels"]] == [
        "targets",
        "dosing_progress",
        "alerts_by_severity",
        "stock",
        "timeliness",
    ]
    assert all(p["rows"] for p in doc["panels"]), "no live panel is empty on simulator data"


@needs_chromium
def test_a_facility_name_with_markup_stays_text(simulated_stack: SimulatedStack) -> None:
    """Stored XSS: the name goes into the tables as text (no element is made of it, its
    handler never runs), and the page's Content-Security-Policy allows no inline script."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            violations: list[str] = []
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security" in m.text else None,
            )
            response = page.goto(live_link(simulated_stack), timeout=60_000)
            assert response is not None and response.url == api_url(simulated_stack) + "/live/"
            policy = response.headers["content-security-policy"]
            assert (
                "script-src 'self'" in policy
                and "unsafe-inline" not in policy.split("style-src")[0]
            )
            wait_until(page, "() => Number(document.body.dataset.refreshes || 0) >= 1")
            cells = page.locator("#panels td", has_text=XSS_NAME)
            assert cells.count() > 0, "the facility's name is not shown as text"
            assert page.locator("#panels img").count() == 0, "the name became an element"
            assert page.evaluate("window.__xss") is None, "the name's onerror handler ran"
            # Even markup put in by some other bug could not run inline script.
            page.evaluate(
                "document.body.insertAdjacentHTML('beforeend', "
                "'<img src=x onerror=\"window.__xss=2\">')"
            )
            page.wait_for_timeout(500)
            assert page.evaluate("window.__xss") is None, "CSP let an inline handler run"
            assert any("Content Security Policy" in text for text in violations), violations
        finally:
            browser.close()
