"""The store operations the CLI may ask for, by name, with JSON-ready answers.

The same table serves two paths: in-process (the CLI opens ClickHouse itself when no
stack owns it) and over the running stack's local HTTP API (when one does). Keeping one
table keeps both paths identical.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sinks import archive, replay
from sinks.ledger import Ledger, LedgerError
from sinks.reports import ReportError, Reports, Scope, resolve_scope
from sinks.store import Store


class OperationError(ValueError):
    """The request named an unknown operation or gave bad arguments (the caller's fault)."""


def _as_of(kwargs: Mapping[str, Any]) -> datetime | None:
    text = kwargs.get("as_of")
    if text is None:
        return None
    try:
        instant = datetime.fromisoformat(str(text))
    except ValueError:
        raise OperationError(f"--as-of: not an RFC 3339 time: {text!r}") from None
    if instant.tzinfo is None:
        raise OperationError(f"--as-of: needs an offset, e.g. 2024-03-12T23:59:59+07:00: {text!r}")
    return instant


def _date(kwargs: Mapping[str, Any], name: str) -> date | None:
    text = kwargs.get(name)
    if text in (None, ""):
        return None
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        flag = "--" + name.removeprefix("date_")
        raise OperationError(f"{flag}: not a date (YYYY-MM-DD): {text!r}") from None


def _names(kwargs: Mapping[str, Any], name: str) -> list[str]:
    value = kwargs.get(name) or []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OperationError(f"{name}: a list of facility ids")
    return value


def _report(name: str) -> Callable[[Store, Mapping[str, Any]], Any]:
    """An operation answering report ``name`` with the filters the CLI passes."""

    def run_report(store: Store, kwargs: Mapping[str, Any]) -> Any:
        source = kwargs.get("source", "aggregates")
        if source not in ("aggregates", "archive"):
            raise OperationError(f"source: aggregates or archive, not {source!r}")
        scope = _scope(store, kwargs)
        reports = Reports(store.db, store.registry, source)
        return getattr(reports, name)(_as_of(kwargs), scope)

    return run_report


def _scope(store: Store, kwargs: Mapping[str, Any]) -> Scope:
    try:
        return resolve_scope(
            store.registry(),
            facilities=_names(kwargs, "facilities"),
            under=_names(kwargs, "under"),
            district=kwargs.get("district"),
            province=kwargs.get("province"),
            date_from=_date(kwargs, "date_from"),
            date_to=_date(kwargs, "date_to"),
            item=kwargs.get("item"),
        )
    except ReportError as exc:
        raise OperationError(str(exc)) from None


def _alert_engine(store: Store) -> Any:
    # Imported here: the engine lives with the stream processors that run it (streams/),
    # and this table only asks it questions.
    from ostwatch.settings import AlertSettings, load
    from streams.alerts.engine import AlertEngine

    return AlertEngine(store, load(AlertSettings))


def _report_alerts(store: Store, kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every alert (CONTRACT §4 fields and more), open first by severity; as of T when asked
    (judged afresh from the events up to T), else as the live stream keeps them."""
    scope = _scope(store, kwargs)
    engine = _alert_engine(store)
    as_of = _as_of(kwargs)
    alerts = engine.as_of(as_of) if as_of is not None else engine.current()
    status, kinds = kwargs.get("status"), _names(kwargs, "kinds")
    return [
        alert.as_json()
        for alert in alerts
        if (scope.facilities is None or alert.facility_id in scope.facilities)
        and (status in (None, "all") or alert.status == status)
        and (not kinds or alert.kind in kinds)
    ]


def _alerts_ack(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    alert_id = str(kwargs["alert_id"])
    try:
        change = _alert_engine(store).acknowledge(alert_id, str(kwargs.get("note") or ""))
    except KeyError:
        raise OperationError(f"no alert with id {alert_id!r}") from None
    return dict(change.model_dump(mode="json"))


def _facility_names(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    registry = store.registry()
    if registry is None:
        return {"facilities": {}, "items": {}}
    return {
        "facilities": {f.facility_id: f.name for f in registry.facilities.values()},
        "items": {i.item: {"name": i.name, "unit": i.unit} for i in registry.items.values()},
    }


def _registry_load(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    files = kwargs.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise OperationError("registry_load needs files: {name: text}")
    return asdict(store.load_registry(files, str(kwargs.get("source", ""))))


def _replay_verify(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    limit = kwargs.get("limit", replay.DEFAULT_LIMIT)
    if not isinstance(limit, int) or limit < 0:
        raise OperationError(f"--limit: a whole number ≥ 0, not {limit!r}")
    return replay.verify(store, limit).as_dict()


def _directory(kwargs: Mapping[str, Any], name: str) -> Path:
    """A directory argument: absolute, since the stack's worker may run in another cwd."""
    path = Path(str(kwargs[name]))
    if not path.is_absolute():
        raise OperationError(f"{name}: an absolute path, not {str(path)!r}")
    return path


def _archive_export(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    filters = archive.Filters(
        as_of=_as_of(kwargs),
        facilities=tuple(_names(kwargs, "facilities")),
        date_from=_date(kwargs, "date_from"),
        date_to=_date(kwargs, "date_to"),
    )
    return archive.export(store, _directory(kwargs, "out"), filters)


def _archive_import(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return archive.import_archive(store, _directory(kwargs, "directory"))


def _audit_ledger(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    ledger = Ledger(store.db, store.registry, store.chain)
    try:
        return ledger.month(str(kwargs["facility"]), str(kwargs["month"]), kwargs.get("item"))
    except LedgerError as exc:
        raise OperationError(str(exc)) from None


def _audit_verify(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    facilities = _names(kwargs, "facilities") or None
    registry = store.registry()
    if facilities and registry is not None:
        unknown = [f for f in facilities if f not in registry.facilities]
        if unknown:
            raise OperationError(f"unknown facility {unknown[0]!r}")
    settle_s = float(kwargs.get("settle_s", 2.0))
    return store.chain.verify(facilities, settle_s=settle_s).as_dict()


def _undecided_offsets(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Offsets below the group's committed ones that have no decision (infra/offset_check.py)."""
    since = None
    if kwargs.get("since"):
        try:
            since = datetime.fromisoformat(str(kwargs["since"]))
        except ValueError:
            raise OperationError(f"since: not an ISO time: {kwargs['since']!r}") from None
    spans = {int(p): (int(start), int(end)) for p, (start, end) in dict(kwargs["spans"]).items()}
    found = store.undecided_offsets(str(kwargs["topic"]), spans, since)
    return {str(p): {"missing": missing, "first": first} for p, (missing, first) in found.items()}


def _undecided_submissions(store: Store, kwargs: Mapping[str, Any]) -> list[list[Any]]:
    keys = [(str(source), int(seq)) for source, seq in kwargs["keys"]]
    return [list(key) for key in store.undecided_submissions(keys)]


REPORTS = ("stock", "dispensing", "patients", "tests", "targets")

OPERATIONS: dict[str, Callable[[Store, Mapping[str, Any]], Any]] = {
    "submission_counts": lambda store, kw: store.submission_counts(str(kw["source"])),
    "rejected": lambda store, kw: store.rejected(as_of=_as_of(kw)),
    "intake_totals": lambda store, kw: store.intake_totals(),
    "registry_load": _registry_load,
    "registry_version": lambda store, kw: {"version": store.registry_version()},
    "names": _facility_names,
    **{f"report_{name}": _report(name) for name in REPORTS},
    "report_alerts": _report_alerts,
    "alerts_ack": _alerts_ack,
    "replay_verify": _replay_verify,
    "archive_export": _archive_export,
    "archive_import": _archive_import,
    "audit_ledger": _audit_ledger,
    "audit_verify": _audit_verify,
    "undecided_offsets": _undecided_offsets,
    "undecided_submissions": _undecided_submissions,
}
# Operations that may run for minutes on a large archive (the HTTP client waits longer).
LONG_OPERATIONS = frozenset({"replay_verify", "archive_export", "archive_import", "audit_verify"})
# Operations after which the worker must re-read the archive (its duplicate filter) and
# the registry: they change both behind the intake's back.
RELOADS_INTAKE = frozenset({"archive_import"})


def run(store: Store, name: str, kwargs: Mapping[str, Any]) -> Any:
    """Run one named operation; KeyError/TypeError from bad arguments become OperationError."""
    operation = OPERATIONS.get(name)
    if operation is None:
        raise OperationError(f"unknown operation {name!r}")
    try:
        return operation(store, kwargs)
    except KeyError as exc:
        raise OperationError(f"{name}: missing argument {exc}") from None
