"""The operations over the running stack's API, and the choice between it and the store.

The embedded ClickHouse allows one process per data directory, so while ``ostwatch up`` runs,
every command asks its worker over loopback HTTP (``RemoteOperations``, on the stack's token
and TLS through ``infra.gateway.HttpGateway``); with no stack running (or with a ClickHouse
server configured) the command opens the store itself (``LocalOperations``). Both answer
with the same response models, so the command that calls them has one code path.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from infra.application import alerts, archive, audit, registry, reports, status
from infra.application.common import Document, Request, Rows
from infra.application.operations import LONG_OPERATIONS, LocalOperations, Operations
from infra.gateway import LONG_TIMEOUT_S, HttpGateway, StackInfo
from ostwatch.files import private_dir, private_umask
from ostwatch.settings import AlertSettings, ClickHouseSettings
from sinks.store import Store

A = TypeVar("A", bound=BaseModel)


class RemoteOperations:
    """``Operations`` run by the stack's worker (which owns the embedded ClickHouse)."""

    def __init__(self, gateway: HttpGateway) -> None:
        self.gateway = gateway

    @classmethod
    def of(cls, info: StackInfo) -> RemoteOperations:
        return cls(HttpGateway.of(info))

    def _call(self, name: str, request: Request, response: type[A]) -> A:
        timeout = LONG_TIMEOUT_S if name in LONG_OPERATIONS else 60.0
        body = request.model_dump(mode="json", exclude_defaults=True)
        return response.model_validate(self.gateway.post(name, body, timeout))

    def report_stock(self, request: reports.ReportRequest) -> Rows:
        return self._call("report_stock", request, Rows)

    def report_dispensing(self, request: reports.ReportRequest) -> Rows:
        return self._call("report_dispensing", request, Rows)

    def report_patients(self, request: reports.ReportRequest) -> Rows:
        return self._call("report_patients", request, Rows)

    def report_tests(self, request: reports.ReportRequest) -> Rows:
        return self._call("report_tests", request, Rows)

    def report_targets(self, request: reports.ReportRequest) -> Rows:
        return self._call("report_targets", request, Rows)

    def report_monthly(self, request: reports.MonthlyRequest) -> Document:
        return self._call("report_monthly", request, Document)

    def rejected(self, request: reports.RejectedRequest) -> Rows:
        return self._call("rejected", request, Rows)

    def names(self, request: reports.NamesRequest) -> reports.Names:
        return self._call("names", request, reports.Names)

    def report_alerts(self, request: alerts.AlertsRequest) -> Rows:
        return self._call("report_alerts", request, Rows)

    def alerts_ack(self, request: alerts.AckRequest) -> alerts.AckOutcome:
        return self._call("alerts_ack", request, alerts.AckOutcome)

    def notices(self, request: alerts.NoticesRequest) -> Document:
        return self._call("notices", request, Document)

    def registry_load(self, request: registry.RegistryLoadRequest) -> registry.RegistryLoaded:
        return self._call("registry_load", request, registry.RegistryLoaded)

    def registry_version(
        self, request: registry.RegistryVersionRequest
    ) -> registry.RegistryVersion:
        return self._call("registry_version", request, registry.RegistryVersion)

    def archive_export(self, request: archive.ArchiveExportRequest) -> Document:
        return self._call("archive_export", request, Document)

    def archive_import(self, request: archive.ArchiveImportRequest) -> Document:
        return self._call("archive_import", request, Document)

    def replay_verify(self, request: archive.ReplayVerifyRequest) -> Document:
        return self._call("replay_verify", request, Document)

    def audit_ledger(self, request: audit.LedgerRequest) -> Document:
        return self._call("audit_ledger", request, Document)

    def audit_verify(self, request: audit.ChainVerifyRequest) -> Document:
        return self._call("audit_verify", request, Document)

    def submission_counts(self, request: status.SubmissionCountsRequest) -> status.SubmissionCounts:
        return self._call("submission_counts", request, status.SubmissionCounts)

    def intake_totals(self, request: status.IntakeTotalsRequest) -> status.IntakeTotals:
        return self._call("intake_totals", request, status.IntakeTotals)

    def undecided_offsets(self, request: status.UndecidedOffsetsRequest) -> status.UndecidedOffsets:
        return self._call("undecided_offsets", request, status.UndecidedOffsets)

    def undecided_submissions(
        self, request: status.UndecidedSubmissionsRequest
    ) -> status.UndecidedSubmissions:
        return self._call("undecided_submissions", request, status.UndecidedSubmissions)

    def close(self) -> None:
        self.gateway.close()


def open_store(clickhouse: ClickHouseSettings, data_dir: Path, *, reconcile: bool = True) -> Store:
    """Open the store; ``reconcile`` first repairs aggregate keys the last worker may have
    left behind (off for `replay --verify`, which must see the rows as they are)."""
    if clickhouse.url is None:  # the embedded engine writes into the data directory
        private_umask()
        private_dir(data_dir)
    store = Store.open(clickhouse, data_dir)
    store.migrate()
    if reconcile:
        store.aggregates.reconcile()  # the last worker may have died mid-batch
    return store


def open_operations(
    data_dir: Path,
    clickhouse: ClickHouseSettings,
    alert_settings: AlertSettings,
    *,
    reconcile: bool = True,
) -> Operations:
    """The running stack's operations if there is one for this data directory, else the
    store's, opened here (the alert engine built once, the writer of acknowledgements)."""
    info = StackInfo.read(data_dir)
    if info is not None:
        return RemoteOperations.of(info)
    store = open_store(clickhouse, data_dir, reconcile=reconcile)
    return LocalOperations(store, alert_settings)
