"""The portable archive: accepted events as Avro object container files, and back.

Layout of an export directory::

    manifest.json                   what was exported, with which filters, file by file
    registry.avro                   every registry version as loaded (schema
                                    schemas/avro/archive/registry_version.avsc)
    events/<facility>/<YYYY-MM>.avro  the facility's archived events of that local month

Event files are written and read by ClickHouse itself (``file()`` table function, one
``INSERT … SELECT`` for the whole export or import): it is far faster than a Python loop,
and the result is a standard Avro object container file with its schema embedded
(deflate codec, strings as Avro ``string``), readable by fastavro or any Avro tool. Every
archive column is kept, the canonical ``payload`` included, so a round trip is exact.

Import ignores any ``event_id`` already archived (or repeated across files), then brings
the aggregates level: a full rebuild into an empty store, otherwise a reconcile of the keys
whose rows no longer match the archive.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro

from ostwatch.timeutil import utc_now
from sinks.archive_columns import ARCHIVE_COLUMNS, column_list
from sinks.clickhouse import as_utc
from sinks.queries import Sql, all_of, identifier, sql
from sinks.store import Store

log = logging.getLogger(__name__)

ARCHIVE_FORMAT = "ostwatch-archive"
ARCHIVE_VERSION = 1
MANIFEST = "manifest.json"
REGISTRY_FILE = "registry.avro"
EVENTS_DIR = "events"
_UNSAFE = r"[^A-Za-z0-9_-]"  # as in sql/archive_export.sql
_GLOB_CHARACTERS = set("*?{}[]'\\")


class ArchiveError(ValueError):
    """The export or import cannot be done as asked (the message says why)."""


@cache
def registry_schema() -> Any:
    text = resources.files("schemas").joinpath("avro", "archive", "registry_version.avsc")
    return fastavro.parse_schema(json.loads(text.read_text(encoding="utf-8")))


def facility_dir(facility_id: str) -> str:
    """The directory name of a facility's files (the rule of ``sql/archive_export.sql``)."""
    return re.sub(_UNSAFE, "_", facility_id)


@dataclass(frozen=True)
class Filters:
    """Which archived events an export takes; None means no restriction."""

    as_of: datetime | None = None
    facilities: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None

    def where(self) -> tuple[Sql, dict[str, Any]]:
        clauses: list[Sql] = []
        parameters: dict[str, Any] = {}
        if self.as_of is not None:
            clauses.append(sql("archive_filters.as_of"))
            parameters["as_of"] = self.as_of
        if self.facilities:
            clauses.append(sql("archive_filters.facilities"))
            parameters["facilities"] = list(self.facilities)
        if self.date_from is not None:
            clauses.append(sql("archive_filters.date_from"))
            parameters["date_from"] = self.date_from
        if self.date_to is not None:
            clauses.append(sql("archive_filters.date_to"))
            parameters["date_to"] = self.date_to
        return all_of(clauses), parameters

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "facilities": list(self.facilities),
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
        }


def _plain_path(path: Path) -> str:
    """An absolute path ClickHouse's file() takes literally (no glob or quote characters)."""
    text = str(path.resolve())
    if _GLOB_CHARACTERS & set(text):
        raise ArchiveError(f"{text}: use a directory path without * ? {{ }} [ ] ' or \\")
    return text


def _structure(store: Store) -> str:
    """The archive columns with their ClickHouse types, as file()'s structure argument."""
    types = dict(store.db.query_rows(sql("archive_structure")))
    return ", ".join(f"{name} {types[name]}" for name in ARCHIVE_COLUMNS)


def export(store: Store, out: Path, filters: Filters) -> dict[str, Any]:
    """Write the archived events matching ``filters`` (and the registry history) to ``out``."""
    if out.exists() and any(out.iterdir()):
        raise ArchiveError(f"{out}: not empty; export into a new or empty directory")
    root = _plain_path(out)
    started = time.monotonic()
    where, parameters = filters.where()
    groups = store.db.query_rows(sql("archive_export_files", where=where), parameters)
    out.mkdir(parents=True, exist_ok=True)
    if groups:
        store.db.command(
            sql("archive_export", columns=column_list(), where=where),
            {**parameters, "path": f"{root}/{EVENTS_DIR}/{{_partition_id}}.avro"},
        )
    history = store.registry_versions.history()
    with (out / REGISTRY_FILE).open("wb") as handle:
        fastavro.writer(
            handle,
            registry_schema(),
            [{**row, "loaded_at": as_utc(row["loaded_at"]), "files": dict(row["files"])}
             for row in history],
            codec="deflate",
        )  # fmt: skip
    files = [
        {
            "path": f"{EVENTS_DIR}/{facility_dir(facility)}/{month}.avro",
            "facility_id": facility,
            "month": month,
            "events": int(count),
        }
        for facility, month, count in groups
    ]
    manifest = {
        "format": ARCHIVE_FORMAT,
        "version": ARCHIVE_VERSION,
        "exported_at": utc_now().isoformat(),
        "filters": filters.as_dict(),
        "events": sum(f["events"] for f in files),
        "registry_versions": len(history),
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), "utf-8")
    seconds = time.monotonic() - started
    log.info(
        "archive export: %d events in %d files to %s (%.1f s)",
        manifest["events"],
        len(files),
        out,
        seconds,
        extra={"events": manifest["events"], "files": len(files)},
    )
    return {
        "out": str(out),
        "events": manifest["events"],
        "files": len(files),
        "registry_versions": len(history),
        "seconds": round(seconds, 3),
    }


def event_files(directory: Path) -> list[Path]:
    return sorted((directory / EVENTS_DIR).glob("*/*.avro"))


def _read_registry(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as handle:
        return [dict(record) for record in fastavro.reader(handle)]  # type: ignore[arg-type]


def _restore_registry(store: Store, directory: Path) -> dict[str, Any]:
    path = directory / REGISTRY_FILE
    if not path.is_file():
        return {"registry_versions": 0, "registry": "none in the archive"}
    current = store.registry_versions.version()
    if current:
        return {"registry_versions": 0, "registry": f"kept this store's (version {current})"}
    versions = _read_registry(path)
    for row in versions:
        store.registry_versions.restore(
            row["version"],
            row["loaded_at"],
            row["source"],
            row["sha256"],
            row["files"],
            row["warnings"],
        )
    return {"registry_versions": len(versions), "registry": "restored from the archive"}


def _expected_events(directory: Path, files: Sequence[Path]) -> int | None:
    """How many events the manifest says the files hold (None without a usable manifest)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    listed = {entry["path"]: int(entry["events"]) for entry in manifest.get("files", [])}
    names = [path.relative_to(directory).as_posix() for path in files]
    if sorted(listed) != sorted(names):
        return None
    return sum(listed.values())


def _insert_files(store: Store, source: str, *, deduplicate: bool) -> None:
    """One INSERT … SELECT of every event file; ``deduplicate`` skips event_ids already
    archived and repeated ones (costs about a quarter of the import's speed)."""
    statement = sql(
        "archive_import",
        columns=column_list(),
        not_archived=sql("archive_filters.not_archived") if deduplicate else Sql(""),
    )
    store.db.command(statement, {"source": source, "structure": _structure(store)})


def _keep_one_per_event_id(store: Store) -> int:
    """After an import into an empty archive without the (costly) duplicate filter: if the
    files repeated an event_id (hand-assembled directories), keep one row of each.

    Checking afterwards is nearly free (one uniqExact); the repair is rare and small.
    """
    rows, unique = store.db.query_rows(sql("archive_repeats"))[0]
    if rows == unique:
        return 0
    keep = identifier(f"archive_keep_{uuid.uuid4().hex[:10]}")
    store.db.command(sql("archive_keep_one.create", keep=keep))
    try:
        for step in ("copy", "delete", "restore"):
            store.db.command(sql(f"archive_keep_one.{step}", keep=keep))
    finally:
        store.db.command(sql("archive_keep_one.drop", keep=keep))
    log.warning(
        "archive import: %d rows repeated an event_id; kept one of each",
        int(rows) - int(unique),
        extra={"repeated": int(rows) - int(unique)},
    )
    return int(rows) - int(unique)


def import_archive(store: Store, directory: Path) -> dict[str, Any]:
    """Add the archive's events (new event_ids only) and registry, then level the aggregates."""
    if not directory.is_dir():
        raise ArchiveError(f"{directory}: not a directory")
    files = event_files(directory)
    if not files and not (directory / REGISTRY_FILE).is_file():
        raise ArchiveError(f"{directory}: no {EVENTS_DIR}/*/*.avro files and no {REGISTRY_FILE}")
    started = time.monotonic()
    registry = _restore_registry(store, directory)
    before = store.archive.count()
    repeated: int | None = None
    if files:
        source = f"{_plain_path(directory)}/{EVENTS_DIR}/*/*.avro"
        _insert_files(store, source, deduplicate=before > 0)
        if before == 0:
            repeated = _keep_one_per_event_id(store)
    after = store.archive.count()
    imported_s = time.monotonic() - started
    if after > before:
        if before == 0:
            store.aggregates.rebuild()
        else:
            store.aggregates.reconcile()
    seconds = time.monotonic() - started
    expected = _expected_events(directory, files)
    result = {
        "directory": str(directory),
        "files": len(files),
        "imported": after - before,
        "duplicates": repeated if expected is None else expected - (after - before),
        **registry,
        "seconds": round(seconds, 3),
        "import_seconds": round(imported_s, 3),
    }
    log.info(
        "archive import: %d events from %d files in %.1f s",
        after - before,
        len(files),
        seconds,
        extra={"imported": after - before, "files": len(files)},
    )
    return result
