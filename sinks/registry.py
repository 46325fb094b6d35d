"""The registry repository: reference data (facilities, items, targets, deadlines) as
numbered versions, each stored with its files verbatim and the rows derived from them."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ostwatch.timeutil import utc_now
from schemas.reference import RegistrySnapshot, parse_registry_texts, target_total_mismatches
from sinks.clickhouse import ClickHouse
from sinks.queries import sql

log = logging.getLogger(__name__)

VERSION_COLUMNS = ("version", "loaded_at", "source", "sha256", "files", "warnings")


@dataclass(frozen=True)
class RegistryLoad:
    """What a registry load did. ``total_mismatches`` are warnings, not errors: each printed
    total of targets.csv that differs from its rows, as ``{year, column, printed, derived,
    difference, line}`` (``difference`` = printed − derived); ``warnings`` the same as text."""

    version: int
    unchanged: bool
    facilities: int
    items: int
    targets: int
    deadlines: int
    total_mismatches: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _rows(version: int, snapshot: RegistrySnapshot) -> dict[str, tuple[tuple[str, ...], list[Any]]]:
    """Each registry table's columns and rows for one version (every row leads with it)."""
    return {
        "registry_facilities": (
            ("version", "facility_id", "name", "type", "parent_id", "district", "province",
             "live_from"),
            [(version, f.facility_id, f.name, f.type, f.parent_id or "", f.district, f.province,
              f.live_from) for f in snapshot.facilities.values()],
        ),
        "registry_items": (
            ("version", "item", "name", "kind", "unit", "mg_per_unit"),
            [(version, i.item, i.name, i.kind, i.unit, i.mg_per_unit)
             for i in snapshot.items.values()],
        ),
        "registry_targets": (
            ("version", "facility_id", "year", "routine_target", "take_home_target",
             "community_detox_target"),
            [(version, t.facility_id, t.year, t.routine_target, t.take_home_target,
              t.community_detox_target) for t in snapshot.targets],
        ),
        "registry_deadlines": (
            ("version", "report_type", "frequency", "due_day", "reporter_type", "recipient_id"),
            [(version, d.report_type, d.frequency, d.due_day, d.reporter_type,
              d.recipient_id or "") for d in snapshot.deadlines.values()],
        ),
    }  # fmt: skip


class RegistryRepository:
    """Loads, restores and reads registry versions; the newest parsed one is cached."""

    def __init__(self, db: ClickHouse) -> None:
        self._db = db
        self._cached: tuple[int, RegistrySnapshot | None] = (-1, None)

    def version(self) -> int:
        rows = self._db.query_rows(sql("registry_version"))
        return int(rows[0][0] or 0) if rows else 0

    def current(self) -> tuple[int, RegistrySnapshot | None]:
        """The newest registry, parsed from the files exactly as they were loaded."""
        rows = self._db.query_rows(sql("registry_latest"))
        if not rows:
            return 0, None
        version, files, _ = rows[0]
        return int(version), parse_registry_texts(dict(files))

    def snapshot(self) -> RegistrySnapshot | None:
        """The newest registry, re-read only when a newer version was loaded."""
        version = self.version()
        if version != self._cached[0]:
            self._cached = self.current()
        return self._cached[1]

    def load(self, texts: Mapping[str, str], source: str) -> RegistryLoad:
        """Validate and store a new registry version; an identical load keeps the version."""
        snapshot = parse_registry_texts(texts)
        digest = hashlib.sha256(
            b"".join(f"{name}\x00{texts[name]}\x00".encode() for name in sorted(texts))
        ).hexdigest()
        current = self._db.query_rows(sql("registry_latest"))
        counts = (
            len(snapshot.facilities),
            len(snapshot.items),
            len(snapshot.targets),
            len(snapshot.deadlines),
        )
        # A property of the files, so an unchanged reload reports them again.
        mismatches = target_total_mismatches(snapshot)
        checks = (
            [mismatch.as_dict() for mismatch in mismatches],
            [mismatch.message for mismatch in mismatches],
        )
        latest = int(current[0][0]) if current else 0
        unchanged = bool(current) and current[0][2] == digest
        version = latest if unchanged else latest + 1
        for mismatch in mismatches:
            log.warning(
                "registry version %d from %s: %s",
                version,
                source,
                mismatch.message,
                extra={"version": version, **mismatch.as_dict()},
            )
        if unchanged:
            return RegistryLoad(version, True, *counts, *checks)
        self._insert(
            version, snapshot, (version, utc_now(), source, digest, dict(texts), checks[1])
        )
        log.info("registry version %d loaded from %s", version, source, extra={"version": version})
        return RegistryLoad(version, False, *counts, *checks)

    def history(self) -> list[dict[str, Any]]:
        """Every registry version as loaded (files verbatim), oldest first: what an archive
        export carries so that a restored store reads the reference data it was built with."""
        return self._db.query_dicts(sql("registry_history"))

    def restore(
        self,
        version: int,
        loaded_at: datetime,
        source: str,
        sha256: str,
        files: Mapping[str, str],
        warnings: Sequence[str],
    ) -> None:
        """Store one registry version exactly as it was (from an archive), with its rows
        derived from its files the same way a load derives them."""
        row = (version, loaded_at, source, sha256, dict(files), list(warnings))
        self._insert(version, parse_registry_texts(files), row)

    def _insert(self, version: int, snapshot: RegistrySnapshot, row: tuple[Any, ...]) -> None:
        """The version's rows first, its ``registry_versions`` entry last: readers take the
        newest entry as the sign that its rows are in place."""
        for table, (names, rows) in _rows(version, snapshot).items():
            self._db.insert_rows(table, rows, names, dedup_token=f"{table}-v{version}")
        self._db.insert_rows("registry_versions", [row], VERSION_COLUMNS)
