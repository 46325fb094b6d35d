"""The whole path, with personal data planted at the start: none of it may come out anywhere.

A facility's CSV export carries names, national ID numbers, phones and an address; it goes
through ``ostwatch pseudonymize``, and a careless facility system adds lines of its own with
raw IDs, phones, an e-mail and names in them. Everything is ingested through the real stack
(Tansu broker, Faust worker, chDB). Then every message of every topic, every row of every
ClickHouse table, every log file, every CLI output, every report and every dashboard panel's
query is searched: none of the
planted values may be found — while the pseudonymous references are (so the search reads).
The month's letter to the patient's commune holds the reference only; resolved at the
facility (``notices resolve``) it gets the name, in that local file and nowhere else: not in
the stack's files, logs, tables or topics.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from infra.gateway import StackInfo
from ostwatch.settings import AlertSettings, ClickHouseSettings
from producers.pseudonym import PseudonymKey
from sinks.clickhouse import ClickHouse
from streams.kafka_compat import end_offsets
from tests.integration.conftest import FIXTURES, OSTWATCH, RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

KEY_TEXT = "test-province-key-Bac-Giang-0123456789-abcdefgh"
# Everything planted, as it could appear in clear (names with and without diacritics).
NEEDLES = [
    "Nguyễn Văn An",
    "Nguyen Van An",
    "Trần Thị Bình",
    "Lê Văn Cường",
    "Lê Lợi",
    "001085012345",
    "079123456789",
    "079123456780",
    "0901234567",
    "0912345678",
    "an.nguyen@gmail.com",
]
EVENT = {
    "schema_version": 1,
    "occurred_at": "2024-03-05T10:00:00+07:00",
    "facility_id": "TF-01",
}


def planted_lines() -> list[bytes]:
    """What a careless facility system might send straight to ostwatch ingest."""
    dose = {
        **EVENT,
        "event_type": "dose.dispensed",
        "item": "MET10",
        "dose_mg": 80,
        "mode": "observed",
        "patient_ref": "pbg_harmlessref01",
    }
    docs = [
        {**dose, "patient_ref": "001085012345"},  # the CCCD itself as the reference
        {**dose, "patient_name": "Nguyen Van An"},  # a name in an extra field
        {**dose, "mode": "Nguyễn Văn An"},  # a name where a code is expected
        {**dose, "facility_id": "0912345678"},  # a phone as the facility
        {
            **EVENT,
            "event_type": "stock.received",
            "item": "MET10",
            "quantity": 100,
            "lot": "0901234567",
        },
        {
            **EVENT,
            "event_type": "patient.enrolled",
            "patient_ref": "pbg_harmlessref02",
            "programme": "methadone",
            "residence_commune": "an.nguyen@gmail.com",
        },
        {
            **EVENT,
            "event_type": "test.performed",
            "item": "KIT-MOR",
            "purpose": "screening",
            "results": {"0901234567": "positive"},
        },
    ]
    lines = [
        orjson.dumps({**doc, "event_id": f"00000000-0000-4000-8000-{n:012d}"})
        for n, doc in enumerate(docs, start=900)
    ]
    lines.append("Nguyễn Văn An,001085012345,0901234567,12 Lê Lợi".encode())  # not JSON
    # over the line limit (16 KiB), with a name all along it
    lines.append(
        orjson.dumps(
            {
                **dose,
                "event_id": "00000000-0000-4000-8000-000000000999",
                "note": "Nguyen Van An 0901234567 " * 1000,
            }
        )
    )
    return lines


def found_in(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


def read_topics(bootstrap: str) -> dict[str, str]:
    """Every message of every topic (keys, values, headers), decoded leniently."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        topics = [t for t in admin.list_topics() if not t.startswith("__")]
    finally:
        admin.close()
    contents: dict[str, str] = {}
    for topic in topics:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
            ends = end_offsets(consumer, partitions, quirks=True)
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            chunks: list[bytes] = []
            remaining = {tp for tp, end in ends.items() if end > 0}
            while remaining:
                for tp, records in consumer.poll(timeout_ms=1000).items():
                    for record in records:
                        chunks += [record.key or b"", record.value or b""]
                        chunks += [value or b"" for _, value in record.headers]
                    if consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
            contents[topic] = b"\n".join(chunks).decode("utf-8", errors="replace")
        finally:
            consumer.close(autocommit=False)
    return contents


def read_store(data_dir: Path) -> dict[str, str]:
    """Every row of every table of every database in the stack's ClickHouse."""
    db = ClickHouse.connect(ClickHouseSettings(), data_dir)
    try:
        tables = db.query_rows(
            "SELECT database, name FROM system.tables WHERE database NOT IN "
            "('system', 'INFORMATION_SCHEMA', 'information_schema') AND NOT is_temporary"
        )
        return {
            f"{database}.{name}": repr(db.query_rows(f"SELECT * FROM `{database}`.`{name}`"))  # noqa: S608
            for database, name in tables
        }
    finally:
        db.close()


def read_dashboards(data_dir: Path) -> dict[str, str]:
    """Every dashboard panel's query result, variables resolved as Grafana does with "All"."""
    from dashboards.catalog import all_panels
    from dashboards.model import VARIABLES
    from dashboards.render import TimeRange, render

    span = TimeRange(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 10, tzinfo=UTC))
    db = ClickHouse.connect(ClickHouseSettings(), data_dir)
    try:
        chosen: dict[str, list[str]] = {}
        for variable in VARIABLES:
            rows = db.query_rows(render(variable.sql(), chosen, span))
            chosen[variable.name] = [str(row[0]) for row in rows]
        return {
            f"{dashboard.uid} / {panel.key}": repr(
                db.query_rows(render(panel.sql(AlertSettings()), chosen, span))
            )
            for dashboard, panel in all_panels()
        }
    finally:
        db.close()


def read_files(data_dir: Path) -> dict[str, str]:
    """Every file the stack keeps, as raw bytes read leniently (ClickHouse's parts too, whose
    compression keeps short literals as they are): after a letter was resolved beside it."""
    return {
        str(path): path.read_bytes().decode("utf-8", errors="replace")
        for path in sorted(data_dir.rglob("*"))
        if path.is_file()
    }


def read_logs(data_dir: Path, extra: list[Path]) -> dict[str, str]:
    texts = {}
    for path in [*sorted((data_dir / "logs").glob("*")), *extra]:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".jsonl":  # JSON logs escape non-ASCII; read them as values
            text += "\n".join(
                json.dumps(json.loads(line), ensure_ascii=False)
                for line in text.splitlines()
                if line.startswith("{")
            )
        texts[str(path)] = text
    return texts


def test_planted_personal_data_is_found_nowhere(tmp_path: Path) -> None:
    key_file = tmp_path / "province.key"
    key_file.write_text(KEY_TEXT, encoding="utf-8")
    key_file.chmod(0o600)
    stack = RunningStack(tmp_path / "data")
    outputs: list[str] = []
    stack.start()
    try:
        stack.cli("registry", "load", str(FIXTURES / "registry"))
        events = tmp_path / "events.jsonl"
        # On the facility's side: the key is there, not in the platform's environment.
        converted = subprocess.run(
            [
                *OSTWATCH,
                "pseudonymize",
                str(FIXTURES / "facility_export.csv"),
                "--out",
                str(events),
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, "OSTWATCH_PSEUDONYM_KEY_FILE": str(key_file)},
        )
        assert converted.returncode == 1  # four bad rows refused
        summary = json.loads(converted.stdout)
        assert summary["events"] == 4 and summary["dropped_columns"] == [
            "full_name",
            "phone",
            "address",
        ]
        outputs += [converted.stdout, converted.stderr]
        planted = planted_lines()
        events.write_bytes(events.read_bytes() + b"\n".join(planted) + b"\n")

        ingested = stack.cli("ingest", str(events), "--no-progress")
        outputs += [ingested.stdout, ingested.stderr]
        assert json.loads(ingested.stdout) == {
            "accepted": 4,
            "rejected": len(planted),
            "duplicates": 0,
        }
        rejected = stack.json("report", "rejected")
        assert len(rejected) == len(planted)
        assert sum(r["reason"].startswith("line too long") for r in rejected) == 1
        reasons = sorted(r["reason"] for r in rejected)
        assert all(
            "not shown" in reason
            or reason.startswith(("unknown field", "not JSON", "line too long"))
            for reason in reasons
        ), reasons
        reports = {"rejected": json.dumps(rejected, ensure_ascii=False)}
        for name in ("stock", "dispensing", "patients", "tests", "targets", "alerts"):
            result = stack.cli("report", name, "--format", "json", check=False)
            if "No such command" in result.stderr:
                continue  # a report this branch does not have yet
            assert result.returncode == 0, result.stderr
            reports[name] = result.stdout
            table = stack.cli("report", name, check=False)
            reports[f"{name} (table)"] = table.stdout + table.stderr
        status = stack.cli("status", "--format", "json")
        outputs.append(status.stdout)

        # The month's letter to commune 07216 (platform side: references only), then the
        # names added at the facility from its own export, with its key, while the stack runs.
        letter = tmp_path / "letter-07216.csv"
        made = stack.cli("notices", "--month", "2024-03", "--commune", "07216", "--format",
                         "csv", "--out", str(letter))  # fmt: skip
        printed = stack.cli("notices", "--month", "2024-03")
        outputs += [made.stdout, made.stderr, printed.stdout, letter.read_text(encoding="utf-8")]
        named = tmp_path / "named" / "letter-07216.html"
        named.parent.mkdir()
        resolved = subprocess.run(
            [*OSTWATCH, "notices", "resolve", str(letter), "--export",
             str(FIXTURES / "facility_export.csv"), "--with", "address", "--with", "phone",
             "--out", str(named)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, "OSTWATCH_PSEUDONYM_KEY_FILE": str(key_file)},
        )  # fmt: skip
        assert resolved.returncode == 0, resolved.stderr
        outputs += [resolved.stdout, resolved.stderr]
        with_names = named.read_text(encoding="utf-8")
        assert {"Nguyễn Văn An", "Lê Lợi", "0901234567"} <= set(found_in(with_names))

        info = StackInfo.read(stack.data_dir)
        assert info is not None
        topics = read_topics(info.bootstrap)
    finally:
        stack.stop()

    store = read_store(stack.data_dir)
    files = read_files(stack.data_dir)
    panels = read_dashboards(stack.data_dir)
    assert len(panels) > 10 and any("TF-01" in text for text in panels.values())
    logs = read_logs(stack.data_dir, [tmp_path / "data-up.log"])

    ref = PseudonymKey("1", KEY_TEXT.encode()).patient_ref("national_id", "001085012345")
    assert ref in letter.read_text(encoding="utf-8") and ref in with_names
    assert any(ref in text for text in files.values())  # the raw scan reads
    # the search reads what it searches: the pseudonym is where it should be
    assert ref in topics["ostwatch.events"]
    assert ref in store["ostwatch.events_archive"]
    assert ref in reports.get("dispensing", "") or ref in store["ostwatch.events_archive"]
    assert "dose.dispensed" in topics["ostwatch.events.dlq"]

    leaks = {
        f"{kind} {where}": found
        for kind, texts in (
            ("topic", topics),
            ("table", store),
            ("log", logs),
            ("report", reports),
            ("output", dict(enumerate(outputs))),
            ("file", files),
        )
        for where, text in texts.items()
        if (found := found_in(str(text)))
    }
    assert leaks == {}
    # and no ID-shaped digit run survived in any kept rejection (event_ids and masks aside)
    uuid_re = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    for row in rejected:
        runs = re.findall(r"\d{9,}", re.sub(uuid_re, "", str(row.get("raw", ""))))
        assert all(set(run) == {"0"} for run in runs), row
