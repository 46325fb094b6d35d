"""Debian's chromium driven by Playwright (never a browser Playwright downloads), for the
live-view and cross-origin tests."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium not installed: run `make browser`"
)


def wait_until(page: Any, expression: str, arg: Any = None, timeout: float = 60.0) -> Any:
    """Poll ``expression`` (a JavaScript function of ``arg``) until it is truthy.

    Playwright's ``wait_for_function`` compiles its predicate with ``eval`` inside the page,
    which the live view's Content-Security-Policy forbids; ``evaluate`` is not subject to it.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:.0f} s: {expression}")
        time.sleep(0.2)
