"""`ostwatch replay` and `ostwatch archive` through the command line, as a user runs them:
with a stack running (the CLI asks its worker) and without (the CLI opens the store).

The snapshot built from the ClickHouse archive must answer every report as the live store
did at T, and replaying the Kafka events topic from the beginning — a fresh worker with
its own consumer group, on the same broker, into a fresh store — must answer the same as
the archive replay.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from infra.gateway import GatewayError, StackInfo, http_json
from sinks.replay import REPORT_KEYS
from tests.integration.conftest import OSTWATCH, RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

T = "2024-04-01T09:00:00+07:00"  # a Monday morning: doses, counts and tests before it
ALTER_ONE_ROW = """
import sys
from pathlib import Path
from ostwatch.settings import ClickHouseSettings
from sinks.clickhouse import ClickHouse
db = ClickHouse.connect(ClickHouseSettings(), Path(sys.argv[1]))
# The last count of a stock line read from the day rows (not on the latest day, which a
# report reads from the archive): changing it changes that line's stock on hand.
facility, item, day = db.query_rows(
    "SELECT facility_id, item, local_date FROM stock_daily FINAL WHERE counted = 1 "
    "AND local_date < (SELECT max(local_date) FROM stock_daily) "
    "AND (facility_id, item) NOT IN (SELECT facility_id, item FROM stock_daily FINAL "
    "    WHERE counted = 1 AND local_date = (SELECT max(local_date) FROM stock_daily)) "
    "ORDER BY local_date DESC, facility_id, item LIMIT 1")[0]
db.command(
    "ALTER TABLE stock_daily UPDATE count_on_hand = count_on_hand + 1 WHERE facility_id = %(f)s "
    "AND item = %(i)s AND local_date = %(d)s SETTINGS mutations_sync = 2",
    {"f": facility, "i": item, "d": day})
# And a dispensing day row deleted: the store opened without a stack must not repair it
# before verify has seen it.
db.command(
    "ALTER TABLE dispensing_daily DELETE WHERE (facility_id, local_date) IN "
    "(SELECT facility_id, min(local_date) FROM dispensing_daily GROUP BY facility_id "
    " ORDER BY facility_id LIMIT 1) SETTINGS mutations_sync = 2")
gone = db.query_rows(
    "SELECT facility_id, min(local_date) FROM events_archive "
    "WHERE event_type = 'dose.dispensed' GROUP BY facility_id ORDER BY facility_id LIMIT 1")[0]
print(f"{facility} {item} {day.isoformat()} {gone[0]} {gone[1].isoformat()}")
"""


def reports(stack: RunningStack, data_dir: Path, *args: str) -> dict[str, Any]:
    return {
        name: stack.json("report", name, "--data-dir", str(data_dir), *args) for name in REPORT_KEYS
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def replay_kafka_into(stack: RunningStack, data_dir: Path, registry: Path, events: int) -> None:
    """A fresh worker (new app and consumer group) reads the events topic from the start
    into a fresh store, until it has archived ``events`` events; then it is stopped."""
    stack.cli("registry", "load", str(registry), "--data-dir", str(data_dir))
    info = StackInfo.read(stack.data_dir)
    assert info is not None
    port, name = free_port(), f"replay-{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex
    env = stack.env() | {
        "OSTWATCH_DATA_DIR": str(data_dir),
        "OSTWATCH_BROKER_BOOTSTRAP_SERVERS": info.bootstrap,
        "OSTWATCH_BROKER_EMBEDDED_QUIRKS": "true",
        "OSTWATCH_STREAM_APP_ID": name,
        "OSTWATCH_STREAM_GROUP_ID": name,
        "OSTWATCH_API_PORT": str(port),
        "OSTWATCH_API_TOKEN": token,
    }
    log = (data_dir.parent / "kafka-worker.log").open("ab")
    worker = subprocess.Popen([*OSTWATCH, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, archived = time.monotonic() + 300, -1
        while time.monotonic() < deadline and archived != events:
            time.sleep(1)
            assert worker.poll() is None, "the replaying worker exited"
            try:
                status, doc = http_json(
                    f"http://127.0.0.1:{port}/api/op/intake_totals", {}, token=token
                )
            except GatewayError:  # not listening yet
                continue
            if status == 200:
                archived = sum(f["events"] for f in doc["result"]["facilities"])
        assert archived == events
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)


def test_replay_with_and_without_a_running_stack(tmp_path: Path) -> None:
    live = RunningStack(tmp_path / "live")
    registry, events_file = tmp_path / "registry", tmp_path / "events.jsonl"
    live.cli("simulate", "--start", "2024-03-30", "--days", "3", "--scale", "0.3",
             "--seed", "3", "--out", str(events_file), "--registry-out", str(registry))  # fmt: skip
    live.start()
    try:
        live.cli("registry", "load", str(registry))
        counts = live.ingest(events_file)
        assert counts["accepted"] > 1000

        verified = live.json("replay", "--verify")
        assert verified["equal"] is True and verified["differences"] == []
        assert verified["events"] == counts["accepted"]
        assert verified["checked"]["stock_daily"] > 0

        # A snapshot as of T, read by the normal reports, answers as the live store at T.
        snapshot = tmp_path / "snapshot"
        built = live.json("replay", "--as-of", T, "--into", str(snapshot))
        assert 0 < built["imported"] == built["exported"] < counts["accepted"]
        at_t = reports(live, live.data_dir, "--as-of", T)
        assert all(at_t.values())
        assert reports(live, snapshot, "--as-of", T) == at_t
        days = {row["date"] for row in reports(live, snapshot)["dispensing"]}
        assert max(days) == "2024-04-01"  # nothing after T is in the snapshot

        # The whole archive replayed, and the events topic replayed from its beginning.
        everything = tmp_path / "everything"
        live.json("replay", "--into", str(everything))
        archive_replay = reports(live, everything)
        assert archive_replay == reports(live, live.data_dir)
        from_kafka = tmp_path / "from-kafka"
        replay_kafka_into(live, from_kafka, registry, counts["accepted"])
        assert reports(live, from_kafka) == archive_replay

        # The portable archive through the CLI: export from the stack, import elsewhere.
        exported = live.json("archive", "export", "--out", str(tmp_path / "avro"))
        assert exported["events"] == counts["accepted"]
    finally:
        live.stop()

    imported_dir = tmp_path / "imported"
    result = live.json("archive", "import", str(tmp_path / "avro"), "--data-dir", str(imported_dir))
    assert result["imported"] == counts["accepted"] and result["registry_versions"] == 1
    assert reports(live, imported_dir) == archive_replay
    again = live.json("archive", "import", str(tmp_path / "avro"), "--data-dir", str(imported_dir))
    assert again["imported"] == 0 and again["duplicates"] == counts["accepted"]

    # No stack running: the CLI opens the store itself; a row altered behind its back is
    # named, the JSON says so, and the exit status is 3 with one line on stderr.
    assert live.json("replay", "--verify")["equal"] is True
    altered = subprocess.run(
        [OSTWATCH[0], "-c", ALTER_ONE_ROW, str(live.data_dir)],
        capture_output=True, text=True, check=True, env=live.env(),
    ).stdout.split()  # fmt: skip
    differs = live.cli("replay", "--verify", "--format", "json", check=False)
    assert differs.returncode == 3
    assert differs.stderr.strip().count("\n") == 0 and "differ" in differs.stderr
    doc = json.loads(differs.stdout)
    assert doc["equal"] is False
    stock = [d for d in doc["differences"] if d["table"] == "stock_daily"]
    assert [(d["key"], d["column"], d["live"] - d["replayed"]) for d in stock] == [
        ({"facility_id": altered[0], "item": altered[1], "local_date": altered[2]},
         "count_on_hand", 1.0)
    ]  # fmt: skip
    # The stock report over that row differs too (on hand is one unit more).
    assert [d["key"] for d in doc["differences"] if d["table"] == "report stock"] == [
        {"facility_id": altered[0], "item": altered[1]}
    ]
    missing = [d for d in doc["differences"] if d["table"] == "dispensing_daily"]
    assert [(d["key"], d["column"], d["live"], d["replayed"]) for d in missing] == [
        ({"facility_id": altered[3], "local_date": altered[4]}, "(row)", "missing", "present")
    ]
    table = live.cli("replay", "--verify", check=False)
    assert table.returncode == 3 and "count_on_hand" in table.stdout
    assert os.path.isdir(live.data_dir)
