"""Issue 15's poison pills through the real stack (`ostwatch up`, `ostwatch ingest`): each one
used to stop all ingestion (a crash loop), kill the CLI, or poison the figures. Among 10,000
good lines they are now rejected with their reasons, the counts are exact, later events flow
and the worker never restarts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra.gateway import StackInfo
from tests.integration.conftest import FIXTURES, RunningStack
from tests.support.events import contract_event
from tests.support.processes import child_pid

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

GOOD = 10_000
FACILITIES = ("TF-01", "TF-02", "DP-01")


def receipt(n: int, **changes: Any) -> dict[str, Any]:
    day, minute = divmod(n, 1440)
    at = f"2024-03-{1 + day % 20:02d}T{minute // 60:02d}:{minute % 60:02d}:00+07:00"
    doc = contract_event("stock.received", at, FACILITIES[n % 3], item="MET10", quantity=1 + n % 7)
    return {**doc, **changes}


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def poison_lines() -> dict[str, tuple[bytes, str]]:
    """Each poison of the issue as sent, with the start of the reason it must get."""
    future = "occurred_at: more than 1 day after the platform received"
    past = "occurred_at: before 2008-01-01T00:00:00+07:00"
    deep = "nested too deep: more than 32 levels"
    valid = orjson.dumps(receipt(0, event_id=str(uuid.uuid4())))
    return {
        "9999-12-31": (orjson.dumps(receipt(1, occurred_at="9999-12-31T23:59:59+00:00")), future),
        "0001-01-01": (orjson.dumps(receipt(2, occurred_at="0001-01-01T00:00:00+00:00")), past),
        "1971": (orjson.dumps(receipt(3, occurred_at="1971-06-01T08:00:00+07:00")), past),
        "2100": (orjson.dumps(receipt(4, occurred_at="2100-01-01T00:00:00+07:00")), future),
        "1e308 a": (orjson.dumps(receipt(5, quantity=1e308)), "quantity: must be greater than 0"),
        "1e308 b": (orjson.dumps(receipt(6, quantity=1e308)), "quantity: must be greater than 0"),
        "nesting 500": (valid[:-1] + b',"extra":' + nested(500) + b"}", deep),
        "nesting 1500": (nested(1500), deep),  # 9 KB, past the JSON parser's own limit
        "invalid UTF-8": (valid.replace(b"MET10", b"MET\xe910"), "not valid UTF-8"),
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = RunningStack(tmp_path_factory.mktemp("poison") / "data")
    running.start()
    running.cli("registry", "load", str(FIXTURES / "registry"))
    yield running
    running.stop()


def worker_pid(stack: RunningStack) -> int:
    info = StackInfo.read(stack.data_dir)
    assert info is not None
    return child_pid(info.supervisor_pid, "infra.cli worker")


def test_poisons_among_ten_thousand_good_lines(stack: RunningStack, tmp_path: Path) -> None:
    worker = worker_pid(stack)
    poisons = poison_lines()
    good = [orjson.dumps(receipt(n)) for n in range(GOOD)]
    lines = list(good)
    for index, (line, _) in enumerate(poisons.values()):
        lines.insert(1 + index * 1000, line)  # spread through the file, in several batches
    path = tmp_path / "poisoned.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = stack.cli("ingest", str(path), "--no-progress")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert json.loads(result.stdout) == {
        "accepted": GOOD, "rejected": len(poisons), "duplicates": 0,
    }  # fmt: skip

    rejected = stack.json("report", "rejected")
    by_line = {row["line"]: row["reason"] for row in rejected}
    for index, (name, (_, reason)) in enumerate(poisons.items()):
        assert by_line[2 + index * 1000].startswith(reason), (name, by_line[2 + index * 1000])

    # The figures stay finite and exact: on hand is the sum of the good receipts.
    stock = {(r["facility_id"], r["item"]): r["on_hand"] for r in stack.json("report", "stock")}
    for k, facility in enumerate(FACILITIES):
        expected = sum(1 + n % 7 for n in range(k, GOOD, 3))
        assert stock[(facility, "MET10")] == expected

    # Later events flow, the same worker decides them, and nothing needed the quarantine.
    later = tmp_path / "later.jsonl"
    later.write_bytes(b"\n".join(orjson.dumps(receipt(GOOD + n)) for n in range(3)) + b"\n")
    assert stack.ingest(later) == {"accepted": 3, "rejected": 0, "duplicates": 0}
    status = stack.json("status")
    assert status["intake"]["failure"] is None and status["intake"]["quarantined"] == 0
    assert worker_pid(stack) == worker


def test_an_as_of_no_report_can_answer_is_one_line_with_and_without_a_stack(
    stack: RunningStack, tmp_path: Path
) -> None:
    for text in ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"):
        result = stack.cli("report", "stock", "--as-of", text, check=False)
        assert result.returncode == 1, result.stdout
        assert result.stderr.startswith("ostwatch: --as-of: must be between 1900-02-01")
        assert len(result.stderr.splitlines()) == 1, result.stderr
    alone = RunningStack(tmp_path / "no-stack")
    result = alone.cli("report", "alerts", "--as-of", "0001-01-01T00:00:00+00:00", check=False)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "--as-of: must be between" in result.stderr
