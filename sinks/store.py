"""The ostwatch store: one ClickHouse connection and the repositories over it.

Callers name what they read or write: ``store.archive`` (accepted events and their hash
chain), ``store.submissions`` (a decision per message), ``store.registry_versions`` (reference
data), ``store.aggregates`` (the daily tables) and, built on demand, the alert table and the
reports. Every write is safe to repeat: a batch retried after a failure carries the same
deduplication token, and submissions live in a ReplacingMergeTree keyed by (source, seq).

The methods below the repositories keep the names callers used before the split; each is
one line onto its repository.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ostwatch.settings import ClickHouseSettings
from schemas.reference import RegistrySnapshot
from sinks.aggregates import Aggregates
from sinks.alert_store import AlertStore
from sinks.archive_columns import ARCHIVE_COLUMNS, archive_row
from sinks.chain import ArchiveChain
from sinks.clickhouse import ClickHouse, as_utc, migrate
from sinks.event_archive import ArchiveRepository
from sinks.ledger import Ledger
from sinks.panels import PanelQueries
from sinks.queries import sql
from sinks.records import IntakeBatch
from sinks.registry import RegistryLoad, RegistryRepository
from sinks.reports import Reports, Source
from sinks.submissions import SubmissionRepository

if TYPE_CHECKING:
    from sinks.monthly import MonthlyReport

# Re-exported under their old names (sinks/monthly.py reads ``as_utc`` from here).
__all__ = ["ARCHIVE_COLUMNS", "RegistryLoad", "Store", "archive_row", "as_utc"]


class Store:
    """The repositories ostwatch reads and writes through, over one ClickHouse connection.

    ``db`` is the raw client: for the repositories in ``sinks/`` and tests' helpers only;
    code outside ``sinks/`` asks a repository.
    """

    def __init__(self, db: ClickHouse) -> None:
        self.db = db
        self.archive = ArchiveRepository(db)
        self.submissions = SubmissionRepository(db)
        self.registry_versions = RegistryRepository(db)
        self.aggregates = Aggregates(db)
        self.panels = PanelQueries(db)

    @classmethod
    def open(cls, settings: ClickHouseSettings, data_dir: Path) -> Store:
        """Connect (creating the database if needed; StoreLocked/StoreUnavailable if not)."""
        return cls(ClickHouse.connect(settings, data_dir))

    @property
    def chain(self) -> ArchiveChain:
        return self.archive.chain

    @property
    def dsn(self) -> str:
        return self.db.dsn

    def close(self) -> None:
        self.db.close()

    def migrate(self) -> list[str]:
        return migrate(self.db)

    def ping(self) -> None:
        """Raise unless ClickHouse answers a trivial query (StoreUnavailable if unreachable)."""
        self.db.query_rows(sql("ping"))

    # -- readers built on demand -----------------------------------------------------------

    def alerts(self, *, cached: bool = False) -> AlertStore:
        """The alert table (``cached``: the live judge's, which keeps alerts in memory)."""
        return AlertStore(self.db, cached=cached)

    def reports(self, source: Source = "aggregates") -> Reports:
        return Reports(self.db, self.registry, source)

    def monthly(self, source: Source = "aggregates") -> MonthlyReport:
        # Imported here: sinks.monthly imports this module for ``as_utc``.
        from sinks.monthly import MonthlyReport

        return MonthlyReport(self.db, self.registry, source)

    def ledger(self, *, chained: bool = True) -> Ledger:
        """The stock ledger (``chained``: marks each movement with the chain's verdict)."""
        return Ledger(self.db, self.registry, self.chain if chained else None)

    # -- the names callers used before the repositories --------------------------------------

    def write_intake(self, batch: IntakeBatch) -> None:
        """Archive first (then chain), then the submission rows: a worker dying between the
        two leaves redelivered messages finding their events archived under the same
        submission, recognised as redeliveries, not duplicates."""
        self.archive.write(batch)
        self.submissions.write(batch)

    def write_archive(self, batch: IntakeBatch) -> None:
        self.archive.write(batch)

    def write_submissions(self, batch: IntakeBatch) -> None:
        self.submissions.write(batch)

    def recorded_digests(self, names: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        return self.submissions.recorded_digests(names)

    def archived_count(self) -> int:
        return self.archive.count()

    def archived_event_keys(self) -> Iterator[Sequence[int]]:
        return self.archive.event_keys()

    def archived_event_ids_since(self, since: datetime) -> list[str]:
        return self.archive.event_ids_since(since)

    def archived_submission_of(self, keys: Sequence[tuple[str, str]]) -> dict[str, tuple[str, int]]:
        return self.archive.submission_of(keys)

    def submission_counts(self, source: str) -> dict[str, int]:
        return self.submissions.counts(source)

    def undecided_submissions(self, keys: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        return self.submissions.undecided(keys)

    def rejected(self, as_of: datetime | None = None, limit: int = 100_000) -> list[dict[str, Any]]:
        return self.submissions.rejected(as_of, limit)

    def intake_totals(self) -> dict[str, Any]:
        """Totals for the live view: submissions by outcome, accepted events by facility."""
        return {**self.submissions.outcomes(), "facilities": self.archive.by_facility()}

    def registry_version(self) -> int:
        return self.registry_versions.version()

    def current_registry(self) -> tuple[int, RegistrySnapshot | None]:
        return self.registry_versions.current()

    def registry(self) -> RegistrySnapshot | None:
        """The newest registry, re-read only when a newer version was loaded."""
        return self.registry_versions.snapshot()

    def load_registry(self, texts: Mapping[str, str], source: str) -> RegistryLoad:
        return self.registry_versions.load(texts, source)
