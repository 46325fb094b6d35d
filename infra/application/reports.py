"""Reports (CONTRACT §3, §5, §6): the five per-facility reports, the rejected events, the
monthly report, and the registry's names a table shows beside the codes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from infra.application.common import AsOf, DateFrom, DateTo, Document, Ids, Request, Rows
from sinks.reports import Reports, Scope, Source, resolve_scope
from sinks.store import Store

REPORTS = ("stock", "dispensing", "patients", "tests", "targets")


class ScopeRequest(Request):
    """The filters every report takes (each one given must hold)."""

    facilities: Ids = ()
    under: Ids = ()
    district: str | None = None
    province: str | None = None
    date_from: DateFrom = None
    date_to: DateTo = None
    item: str | None = None

    def scope(self, store: Store) -> Scope:
        return resolve_scope(
            store.registry(),
            facilities=self.facilities,
            under=self.under,
            district=self.district,
            province=self.province,
            date_from=self.date_from,
            date_to=self.date_to,
            item=self.item,
        )


class ReportRequest(ScopeRequest):
    """One of the five reports, as of T (default: the latest accepted event), from the live
    aggregates or (``source="archive"``, replay's check) the archive alone."""

    as_of: AsOf = None
    source: Source = "aggregates"
    by: Literal["month", "purpose"] | None = None  # report tests only


class RejectedRequest(Request):
    as_of: AsOf = None


class MonthlyRequest(Request):
    """The monthly report of CONTRACT §6 for ``period`` (YYYY-MM) and ``unit`` (default:
    every top unit), as of ``as_of`` (default: the latest event)."""

    period: str
    unit: str | None = None
    as_of: AsOf = None
    source: Source = "aggregates"


class NamesRequest(Request):
    pass


class Names(BaseModel):
    """Registry names for a table: facility id → name, item → name and unit."""

    facilities: dict[str, str] = {}
    items: dict[str, dict[str, str]] = {}


def _reports(store: Store, source: Source) -> Reports:
    return store.reports(source)


def report(store: Store, name: str, request: ReportRequest) -> Rows:
    """Report ``name`` (one of ``REPORTS``) for the request's scope and T."""
    options: dict[str, Any] = {"by": request.by} if name == "tests" and request.by else {}
    answer = getattr(_reports(store, request.source), name)
    return Rows.of(answer(request.as_of, request.scope(store), **options))


def rejected(store: Store, request: RejectedRequest) -> Rows:
    return Rows.of(store.rejected(as_of=request.as_of))


def monthly(store: Store, request: MonthlyRequest) -> Document:
    report = store.monthly(request.source)
    return Document.of(report.answer(request.period, request.unit, request.as_of))


def names(store: Store, request: NamesRequest) -> Names:
    registry = store.registry()
    if registry is None:
        return Names()
    return Names(
        facilities={f.facility_id: f.name for f in registry.facilities.values()},
        items={i.item: {"name": i.name, "unit": i.unit} for i in registry.items.values()},
    )
