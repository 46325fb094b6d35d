"""A JSON Lines file mixing valid, invalid, duplicate and late events, through the real stack.

Every line must be accounted for exactly, and a restarted stack must not accept the same
events again.
"""

from __future__ import annotations

import copy
import uuid
from pathlib import Path

import orjson
import pytest

from tests.fixtures.contract_cases import INVALID_LINES, UNKNOWN_REFERENCE_EVENTS, VALID_EVENTS
from tests.integration.conftest import RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def fresh(event: dict, **changes: object) -> dict:
    """A copy of a valid event with a new event_id (so tests sharing a stack stay apart)."""
    doc = copy.deepcopy(event)
    doc["event_id"] = str(uuid.uuid4())
    doc.update(changes)
    return doc


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_mixed_file_is_counted_exactly_and_survives_a_restart(tmp_path: Path) -> None:
    stack = RunningStack(tmp_path / "data")
    stack.start()
    try:
        stack.cli("registry", "load", str(Path(__file__).parent.parent / "fixtures" / "registry"))
        valid = [fresh(e) for e in VALID_EVENTS]
        # Late and out of order: the same kinds of events, days earlier, sent after.
        late = [fresh(e, occurred_at="2024-02-27T06:15:00+07:00") for e in VALID_EVENTS[:4]]
        resent_same = [valid[0], valid[1]]  # identical lines sent again
        # the same event_id again, with other content
        resent_changed = [dict(valid[2], occurred_at="2024-03-20T08:00:00+07:00")]
        lines = (
            [orjson.dumps(e) for e in valid]
            + [line.encode() if isinstance(line, str) else line for line, _ in INVALID_LINES]
            + [orjson.dumps(fresh(e)) for e in UNKNOWN_REFERENCE_EVENTS]
            + [orjson.dumps(e) for e in late]
            + [orjson.dumps(e) for e in resent_same + resent_changed]
        )
        path = write_lines(tmp_path / "mixed.jsonl", lines)
        expected = {
            "accepted": len(valid) + len(late),
            "rejected": len(INVALID_LINES) + len(UNKNOWN_REFERENCE_EVENTS),
            "duplicates": len(resent_same) + len(resent_changed),
        }
        assert stack.ingest(path) == expected

        rejected = stack.json("report", "rejected")
        assert len(rejected) == expected["rejected"]
        assert all(row["reason"] for row in rejected)
        lines_reported = sorted(row["line"] for row in rejected)
        first_invalid = len(valid) + 1
        assert lines_reported == list(range(first_invalid, first_invalid + expected["rejected"]))

        # Restart on the same data directory: nothing is accepted twice, days later or not.
        assert stack.stop() == 0
        stack.start()
        again = stack.ingest(path)
        assert again == {
            "accepted": 0,
            "rejected": expected["rejected"],
            "duplicates": expected["accepted"] + expected["duplicates"],
        }
    finally:
        stack.stop()


def test_ingest_without_a_stack_fails_with_one_clear_line(tmp_path: Path) -> None:
    idle = RunningStack(tmp_path / "nothing-running")
    path = write_lines(tmp_path / "one.jsonl", [orjson.dumps(VALID_EVENTS[0])])
    result = idle.cli("ingest", str(path), check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "no running stack" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_status_is_not_ready_without_a_stack(tmp_path: Path) -> None:
    idle = RunningStack(tmp_path / "idle")
    result = idle.cli("status", "--format", "json", check=False)
    assert result.returncode != 0
    assert orjson.loads(result.stdout)["ready"] is False


def test_registry_load_keeps_history_and_rejects_bad_files(
    stack: RunningStack, tmp_path: Path
) -> None:
    registry = Path(__file__).parent.parent / "fixtures" / "registry"
    first = stack.json("registry", "load", str(registry))
    assert first["unchanged"] is True or first["version"] >= 1
    changed = tmp_path / "registry"
    changed.mkdir()
    for name in ("facilities.csv", "items.csv", "targets.csv", "deadlines.csv"):
        (changed / name).write_text((registry / name).read_text(encoding="utf-8"), encoding="utf-8")
    with (changed / "items.csv").open("a", encoding="utf-8") as handle:
        handle.write("KIT-NEW,Test kit mới,test_kit,kit,\n")
    second = stack.json("registry", "load", str(changed))
    assert second["version"] == first["version"] + 1
    assert second["items"] == first["items"] + 1

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "facilities.csv").write_text("facility_id,name\nX,Y\n", encoding="utf-8")
    (broken / "items.csv").write_text((registry / "items.csv").read_text(encoding="utf-8"))
    result = stack.cli("registry", "load", str(broken), check=False)
    assert result.returncode != 0
    assert "facilities.csv" in result.stderr
    # the failed load did not replace the current version
    assert stack.json("registry", "load", str(changed))["unchanged"] is True
