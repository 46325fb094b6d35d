"""The store operations the CLI may ask for, by name, with JSON-ready answers.

The same table serves two paths: in-process (the CLI opens ClickHouse itself when no
stack owns it) and over the running stack's local HTTP API (when one does). Keeping one
table keeps both paths identical.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ostwatch.timeutil import LOCAL_TZ
from schemas.alerts import LETTER_DOCUMENT, LETTER_VERSION, AckSelection
from schemas.free_text import note_problem
from sinks import archive, replay
from sinks.ledger import Ledger, LedgerError, Month
from sinks.monthly import MonthlyReport
from sinks.reports import ReportError, Reports, Scope, Source, resolve_scope
from sinks.store import Store


class OperationError(ValueError):
    """The request named an unknown operation or gave bad arguments (the caller's fault)."""


# What a report's T may be: the range of the store's DateTime64(3) columns, a few days in,
# so that the reports' day arithmetic around T (the use window, the next local midnight)
# stays within dates too. 0001-01-01 (.NET's DateTime.MinValue) or 9999-12-31 is refused.
EARLIEST_AS_OF = datetime(1900, 2, 1, tzinfo=UTC)
LATEST_AS_OF = datetime(2299, 12, 1, tzinfo=UTC)


def parse_as_of(text: object) -> datetime:
    """An ``--as-of`` value: RFC 3339 with an offset, within the range a report can answer."""
    try:
        instant = datetime.fromisoformat(str(text))
    except ValueError:
        raise OperationError(f"--as-of: not an RFC 3339 time: {text!r}") from None
    if instant.tzinfo is None:
        raise OperationError(f"--as-of: needs an offset, e.g. 2024-03-12T23:59:59+07:00: {text!r}")
    if not EARLIEST_AS_OF <= instant <= LATEST_AS_OF:
        raise OperationError(
            f"--as-of: must be between {EARLIEST_AS_OF.date()} and {LATEST_AS_OF.date()} "
            f"(got {text!r})"
        )
    return instant


def _as_of(kwargs: Mapping[str, Any]) -> datetime | None:
    text = kwargs.get("as_of")
    return None if text is None else parse_as_of(text)


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


# Options a report takes beyond the scope and T (passed on only when given).
REPORT_OPTIONS: dict[str, tuple[str, ...]] = {"tests": ("by",)}


def _report(name: str) -> Callable[[Store, Mapping[str, Any]], Any]:
    """An operation answering report ``name`` with the filters the CLI passes."""

    def run_report(store: Store, kwargs: Mapping[str, Any]) -> Any:
        source = _source(kwargs)
        scope = _scope(store, kwargs)
        reports = Reports(store.db, store.registry, source)
        options = {k: kwargs[k] for k in REPORT_OPTIONS.get(name, ()) if kwargs.get(k)}
        try:
            return getattr(reports, name)(_as_of(kwargs), scope, **options)
        except ReportError as exc:
            raise OperationError(str(exc)) from None

    return run_report


def _source(kwargs: Mapping[str, Any]) -> Source:
    source = kwargs.get("source", "aggregates")
    if source == "aggregates" or source == "archive":
        return source
    raise OperationError(f"source: aggregates or archive, not {source!r}")


def _report_monthly(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The monthly report of CONTRACT §6 for ``period`` (YYYY-MM) and ``unit`` (default:
    every top unit), as of ``as_of`` (default: the latest event)."""
    report = MonthlyReport(store.db, store.registry, _source(kwargs))
    unit = kwargs.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise OperationError(f"unit: a facility id, not {unit!r}")
    try:
        return report.answer(str(kwargs["period"]), unit, _as_of(kwargs))
    except ReportError as exc:
        raise OperationError(str(exc)) from None


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


def _before(kwargs: Mapping[str, Any]) -> datetime | None:
    """--before: a local day (its first local midnight) or an RFC 3339 instant."""
    text = kwargs.get("before")
    if text in (None, ""):
        return None
    text = str(text)
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), LOCAL_TZ)
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise OperationError(
            f"--before: a date YYYY-MM-DD or an RFC 3339 time, not {text!r}"
        ) from None
    if instant.tzinfo is None:
        raise OperationError(f"--before: needs an offset, e.g. 2024-03-25T00:00:00+07:00: {text!r}")
    return instant


def ack_selection(kwargs: Mapping[str, Any]) -> AckSelection:
    """The alerts an ``alerts_ack`` request names (ids, or filters), checked."""
    ids = _names(kwargs, "alert_ids") or ([str(kwargs["alert_id"])] if "alert_id" in kwargs else [])
    try:
        return AckSelection(
            alert_ids=tuple(ids),
            kinds=tuple(_names(kwargs, "kinds")),  # checked by AckSelection
            communes=tuple(_names(kwargs, "communes")),
            facilities=tuple(_names(kwargs, "facilities")),
            before=_before(kwargs),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise OperationError(f"{where + ': ' if where else ''}{first['msg']}") from None


def checked_note(kwargs: Mapping[str, Any]) -> str:
    """The acknowledgement's note, refused when it looks like personal data (kept verbatim
    otherwise, so an inspector reads what was typed)."""
    note = str(kwargs.get("note") or "")
    problem = note_problem(note)
    if problem:
        raise OperationError(
            f"--note {problem}; personal data is not kept (value not shown): say what was "
            "done without names, phone or ID numbers"
        )
    return note


def acknowledge_alerts(engine: Any, kwargs: Mapping[str, Any]) -> Any:
    """Acknowledge what the request names on ``engine`` (the worker's live one, or one of
    this table's); returns the engine's ``Acknowledged``, not yet stored."""
    selection = ack_selection(kwargs)
    try:
        return engine.acknowledge_many(selection, checked_note(kwargs))
    except KeyError as exc:
        raise OperationError(f"no alert with id {exc.args[0]!r}") from None


def _alerts_ack(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    checked_note(kwargs)  # before anything is opened
    engine = _alert_engine(store)
    outcome = acknowledge_alerts(engine, kwargs)
    engine.commit(outcome.changes)
    return dict(outcome.as_json())


def _month(kwargs: Mapping[str, Any]) -> tuple[str, datetime, datetime]:
    """--month YYYY-MM: the text and its local bounds [first midnight, next first midnight)."""
    try:
        month = Month.parse(str(kwargs.get("month") or ""), flag="--month")
    except LedgerError as exc:
        raise OperationError(str(exc)) from None
    return month.label, month.starts, month.ends + timedelta(milliseconds=1)


def _notices(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The month's letters to communes (CONTRACT §4 notices): one per commune of residence,
    every event it must be told of, with the facility, local date and pseudonymous reference.
    Self-describing (``document``, ``version``), so the facility's ``notices resolve`` reads
    it back."""
    month, start, end = _month(kwargs)
    communes, facilities = set(_names(kwargs, "communes")), set(_names(kwargs, "facilities"))
    registry = store.registry()
    units = list(registry.facilities.values()) if registry else []
    names = {f.facility_id: f.name for f in units}
    issuer = next((f.name for f in units if f.type == "provincial_cdc"), "")
    letters: dict[str, list[dict[str, Any]]] = {}
    for line in _alert_engine(store).notices(start, end):
        if (communes and line["commune"] not in communes) or (
            facilities and line["facility_id"] not in facilities
        ):
            continue
        line["facility_name"] = names.get(line["facility_id"], "")
        letters.setdefault(line["commune"], []).append(line)
    return {
        "document": LETTER_DOCUMENT,
        "version": LETTER_VERSION,
        "month": month,
        "issuer": issuer,
        "period_from": start.isoformat(),
        "period_to": end.isoformat(),
        "generated_at": datetime.now(LOCAL_TZ).isoformat(timespec="seconds"),
        "letters": [{"commune": c, "lines": lines} for c, lines in sorted(letters.items())],
    }


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
    "report_monthly": _report_monthly,
    "alerts_ack": _alerts_ack,
    "notices": _notices,
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
