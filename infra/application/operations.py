"""The operations the CLI and the worker's API offer, typed: ``Operations`` is what a caller
holds, whether the operations run here on a store this process opened (``LocalOperations``)
or in the stack's worker over its API (``infra.application.client.RemoteOperations``).

Each method takes one request model and returns one response model; its name is the
operation's name on the API (``POST /api/op/<name>``, infra/http/api.py).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from infra.application import alerts, archive, audit, registry, reports, status
from infra.application.alerts import AckOutcome, AckRequest, AlertsRequest, NoticesRequest
from infra.application.archive import (
    ArchiveExportRequest,
    ArchiveImportRequest,
    ReplayVerifyRequest,
)
from infra.application.audit import ChainVerifyRequest, LedgerRequest
from infra.application.common import Document, OperationError, Request, Rows, checked
from infra.application.registry import (
    RegistryLoaded,
    RegistryLoadRequest,
    RegistryVersion,
    RegistryVersionRequest,
)
from infra.application.reports import (
    MonthlyRequest,
    Names,
    NamesRequest,
    RejectedRequest,
    ReportRequest,
)
from infra.application.status import (
    IntakeTotals,
    IntakeTotalsRequest,
    SubmissionCounts,
    SubmissionCountsRequest,
    UndecidedOffsets,
    UndecidedOffsetsRequest,
    UndecidedSubmissions,
    UndecidedSubmissionsRequest,
)
from ostwatch.settings import AlertSettings
from sinks.store import Store
from streams.alerts.engine import AlertEngine


class Operations(Protocol):
    """Every operation, by capability (infra/application/<capability>.py)."""

    # reports
    def report_stock(self, request: ReportRequest) -> Rows: ...
    def report_dispensing(self, request: ReportRequest) -> Rows: ...
    def report_patients(self, request: ReportRequest) -> Rows: ...
    def report_tests(self, request: ReportRequest) -> Rows: ...
    def report_targets(self, request: ReportRequest) -> Rows: ...
    def report_monthly(self, request: MonthlyRequest) -> Document: ...
    def rejected(self, request: RejectedRequest) -> Rows: ...
    def names(self, request: NamesRequest) -> Names: ...

    # alerts
    def report_alerts(self, request: AlertsRequest) -> Rows: ...
    def alerts_ack(self, request: AckRequest) -> AckOutcome: ...
    def notices(self, request: NoticesRequest) -> Document: ...

    # registry
    def registry_load(self, request: RegistryLoadRequest) -> RegistryLoaded: ...
    def registry_version(self, request: RegistryVersionRequest) -> RegistryVersion: ...

    # archive and replay
    def archive_export(self, request: ArchiveExportRequest) -> Document: ...
    def archive_import(self, request: ArchiveImportRequest) -> Document: ...
    def replay_verify(self, request: ReplayVerifyRequest) -> Document: ...

    # audit
    def audit_ledger(self, request: LedgerRequest) -> Document: ...
    def audit_verify(self, request: ChainVerifyRequest) -> Document: ...

    # status
    def submission_counts(self, request: SubmissionCountsRequest) -> SubmissionCounts: ...
    def intake_totals(self, request: IntakeTotalsRequest) -> IntakeTotals: ...
    def undecided_offsets(self, request: UndecidedOffsetsRequest) -> UndecidedOffsets: ...
    def undecided_submissions(
        self, request: UndecidedSubmissionsRequest
    ) -> UndecidedSubmissions: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Spec:
    """One operation as the API offers it: its request and response models."""

    name: str
    request: type[Request]
    response: type[BaseModel]


def _specs() -> dict[str, Spec]:
    found = {}
    for name, member in vars(Operations).items():
        if name.startswith("_") or name == "close" or not callable(member):
            continue
        hints = typing.get_type_hints(member)
        found[name] = Spec(name, hints["request"], hints["return"])
    return found


SPECS: dict[str, Spec] = _specs()
# Operations that may run for minutes on a large archive (the HTTP client waits longer).
LONG_OPERATIONS = frozenset({"replay_verify", "archive_export", "archive_import", "audit_verify"})

Q = TypeVar("Q", bound=Request)
A = TypeVar("A", bound=BaseModel)


def _refusals(
    operation: Callable[[LocalOperations, Q], A],
) -> Callable[[LocalOperations, Q], A]:
    """What the parts refuse (``ValueError``: an unknown facility, a bad range, a report
    that cannot be answered as asked) becomes the operation's refusal, in one line."""

    @functools.wraps(operation)
    def run(self: LocalOperations, request: Q) -> A:
        try:
            return operation(self, request)
        except OperationError:
            raise
        except ValueError as exc:
            raise OperationError(" ".join(str(exc).split())) from exc

    return run


class LocalOperations:
    """The operations on a store this process holds: the CLI's own when no stack runs, and
    the worker's behind its API.

    ``acknowledge`` is the one writer of alerts: the worker passes its live engine's
    (``IntakeService.acknowledge_alerts``); without it, the engine built here (once, for
    reading alerts and the notices) writes acknowledgements itself.
    """

    def __init__(
        self,
        store: Store,
        alert_settings: AlertSettings,
        acknowledge: alerts.Acknowledge | None = None,
    ) -> None:
        self.store = store
        self._alert_settings = alert_settings
        self._acknowledge = acknowledge
        self._engine: AlertEngine | None = None

    @property
    def engine(self) -> AlertEngine:
        """The engine that answers questions about alerts (built on first use)."""
        if self._engine is None:
            self._engine = AlertEngine(self.store, self._alert_settings)
        return self._engine

    @_refusals
    def report_stock(self, request: ReportRequest) -> Rows:
        return reports.report(self.store, "stock", request)

    @_refusals
    def report_dispensing(self, request: ReportRequest) -> Rows:
        return reports.report(self.store, "dispensing", request)

    @_refusals
    def report_patients(self, request: ReportRequest) -> Rows:
        return reports.report(self.store, "patients", request)

    @_refusals
    def report_tests(self, request: ReportRequest) -> Rows:
        return reports.report(self.store, "tests", request)

    @_refusals
    def report_targets(self, request: ReportRequest) -> Rows:
        return reports.report(self.store, "targets", request)

    @_refusals
    def report_monthly(self, request: MonthlyRequest) -> Document:
        return reports.monthly(self.store, request)

    @_refusals
    def rejected(self, request: RejectedRequest) -> Rows:
        return reports.rejected(self.store, request)

    @_refusals
    def names(self, request: NamesRequest) -> Names:
        return reports.names(self.store, request)

    @_refusals
    def report_alerts(self, request: AlertsRequest) -> Rows:
        return alerts.list_alerts(self.store, self.engine, request)

    @_refusals
    def alerts_ack(self, request: AckRequest) -> AckOutcome:
        return alerts.acknowledge(self._acknowledge or alerts.store_ack(self.engine), request)

    @_refusals
    def notices(self, request: NoticesRequest) -> Document:
        return alerts.notices(self.store, self.engine, request)

    @_refusals
    def registry_load(self, request: RegistryLoadRequest) -> RegistryLoaded:
        return registry.load(self.store, request)

    @_refusals
    def registry_version(self, request: RegistryVersionRequest) -> RegistryVersion:
        return registry.version(self.store, request)

    @_refusals
    def archive_export(self, request: ArchiveExportRequest) -> Document:
        return archive.export(self.store, request)

    @_refusals
    def archive_import(self, request: ArchiveImportRequest) -> Document:
        return archive.import_archive(self.store, request)

    @_refusals
    def replay_verify(self, request: ReplayVerifyRequest) -> Document:
        return archive.verify(self.store, request)

    @_refusals
    def audit_ledger(self, request: LedgerRequest) -> Document:
        return audit.ledger(self.store, request)

    @_refusals
    def audit_verify(self, request: ChainVerifyRequest) -> Document:
        return audit.verify_chains(self.store, request)

    @_refusals
    def submission_counts(self, request: SubmissionCountsRequest) -> SubmissionCounts:
        return status.submission_counts(self.store, request)

    @_refusals
    def intake_totals(self, request: IntakeTotalsRequest) -> IntakeTotals:
        return status.intake_totals(self.store, request)

    @_refusals
    def undecided_offsets(self, request: UndecidedOffsetsRequest) -> UndecidedOffsets:
        return status.undecided_offsets(self.store, request)

    @_refusals
    def undecided_submissions(self, request: UndecidedSubmissionsRequest) -> UndecidedSubmissions:
        return status.undecided_submissions(self.store, request)

    def close(self) -> None:
        self.store.close()


def run_named(operations: Operations, name: str, body: Any) -> BaseModel:
    """The API's dispatch: operation ``name`` with ``body`` (JSON) validated as its request."""
    spec = SPECS.get(name)
    if spec is None:
        raise OperationError(f"unknown operation {name!r}")
    method: Callable[[Request], BaseModel] = getattr(operations, name)
    return method(checked(spec.request, body))
