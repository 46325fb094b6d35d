"""`ostwatch audit ledger` and `ostwatch audit verify` end to end: a stack of its own (the
test alters its archive), events ingested through Kafka, the ledger reconciled with
`ostwatch report stock --as-of`, then the archive edited directly in ClickHouse with the
stack stopped and each edit named by `audit verify` (exit 1).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.integration.conftest import FIXTURES, RunningStack
from tests.integration.test_ledger import APRIL, FEBRUARY, LATE, MARCH

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EVENTS = FEBRUARY + MARCH + APRIL + LATE


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = RunningStack(tmp_path_factory.mktemp("audit") / "data")
    running.start()
    running.cli("registry", "load", str(FIXTURES / "registry"))
    path = running.data_dir.parent / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in EVENTS))
    assert running.ingest(path) == {"accepted": len(EVENTS), "rejected": 0, "duplicates": 0}
    yield running
    running.stop()


def in_clickhouse(stack: RunningStack, *statements: str) -> None:
    """Edit the stopped stack's ClickHouse directly, as someone with file access could."""
    script = (
        "import sys\nfrom pathlib import Path\nfrom ostwatch.settings import ClickHouseSettings\n"
        "from sinks.clickhouse import ClickHouse\n"
        "db = ClickHouse.connect(ClickHouseSettings(), Path(sys.argv[1]))\n"
        "for sql in sys.argv[2:]:\n    db.command(sql)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(stack.data_dir), *statements],
        check=True,
        env=stack.env(),
        timeout=120,
    )


def ledger(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    return stack.cli("audit", "ledger", "--facility", "TF-01", "--month", "2024-03", *args)


def on_hand(stack: RunningStack, item: str, as_of: str) -> float:
    rows: list[dict[str, Any]] = stack.json(
        "report", "stock", "--facility", "TF-01", "--item", item, "--as-of", as_of
    )
    return float(rows[0]["on_hand"])


def test_ledger_formats_agree_with_the_stock_report(audited: RunningStack) -> None:
    document = json.loads(ledger(audited, "--format", "json").stdout)
    cards = {card["item"]: card for card in document["items"]}
    assert sorted(cards) == ["BUP2", "MET10"]
    for item, card in cards.items():
        assert card["closing_balance"] == on_hand(audited, item, "2024-03-31T23:59:59.999+07:00")
        assert card["reconciles"] and card["balanced"]
    assert cards["MET10"]["opening_balance"] == on_hand(
        audited, "MET10", "2024-02-29T23:59:59.999+07:00"
    )
    assert (cards["MET10"]["closing_balance"], cards["BUP2"]["closing_balance"]) == (1487, 32)

    rows = list(csv.DictReader(io.StringIO(ledger(audited, "--format", "csv").stdout)))
    assert [(r["item"], r["unit"], float(r["closing_balance"]), r["counts"]) for r in rows] == [
        ("BUP2", "tablet", 32.0, "1"),
        ("MET10", "ml", 1487.0, "2"),
    ]

    out = audited.data_dir.parent / "card.html"
    ledger(audited, "--item", "MET10", "--format", "html", "--out", str(out))
    page = out.read_text(encoding="utf-8")
    for text in (
        "Cơ sở điều trị Methadone Lục Ngạn",
        "Tồn đầu kỳ",
        "Opening balance",
        "Hao hụt: rơi vãi",
        "Chênh lệch kiểm kê",
        "1.487",  # closing balance, Vietnamese digit grouping
        "−12,5",  # the first count's difference
        "Thủ kho",
        "Ký, ghi rõ họ tên",
        "Khớp với báo cáo tồn kho",
    ):
        assert text in page, text
    assert "BUP2" not in page


def test_ledger_refuses_bad_requests_in_one_line(audited: RunningStack) -> None:
    result = audited.cli(
        "audit", "ledger", "--facility", "TF-01", "--month", "March", "--format", "json",
        check=False,
    )  # fmt: skip
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "YYYY-MM" in result.stderr


def test_verify_names_each_direct_edit_of_the_archive(audited: RunningStack) -> None:
    intact = audited.cli("audit", "verify", "--format", "json")
    doc = json.loads(intact.stdout)
    assert doc["intact"] and doc["events"] == len(EVENTS) == doc["chain_rows"]

    changed, deleted = MARCH[4]["event_id"], MARCH[5]["event_id"]
    forged, source = "00000000-0000-4000-8000-000000000001", MARCH[6]["event_id"]
    audited.stop()
    try:
        sync = "SETTINGS mutations_sync = 2"
        in_clickhouse(
            audited,
            f"ALTER TABLE events_archive UPDATE quantity_delta = -0.5 "
            f"WHERE event_id = '{changed}' {sync}",
            f"ALTER TABLE events_archive DELETE WHERE event_id = '{deleted}' {sync}",
            f"INSERT INTO events_archive SELECT * REPLACE (toUUID('{forged}') AS event_id) "  # noqa: S608
            f"FROM (SELECT * FROM events_archive WHERE event_id = '{source}')",
        )
        # No stack: the CLI opens the store itself.
        result = audited.cli("audit", "verify", "--format", "json", check=False)
        assert result.returncode == 1
        assert "archive altered: 3 finding(s)" in result.stderr
        findings = json.loads(result.stdout)["findings"]
        # Every event is TF-01's, ingested in file order: position = line − 1.
        position = {e["event_id"]: i for i, e in enumerate(EVENTS)}
        assert sorted((f["event_id"], f["problem"], f["position"]) for f in findings) == sorted(
            [
                (changed, "changed", position[changed]),
                (deleted, "deleted", position[deleted]),
                (forged, "inserted", None),
            ]
        )
        assert {f["facility_id"] for f in findings} == {"TF-01"}
        table = audited.cli("audit", "verify", check=False)
        assert table.returncode == 1 and "Findings" in table.stdout
        assert f"first inserted event {forged} of TF-01 (not in the chain)" in table.stderr
    finally:
        audited.start()
