"""Alerts (CONTRACT §4): the list people act on, acknowledgements, and the month's letters to
communes (the notices).

Acknowledging writes alerts, and alerts have one writer: the worker's live engine while a
stack runs (``IntakeService.acknowledge_alerts``, reached through the ``Acknowledge`` the
worker's API passes in), else the engine the CLI builds once for its store (``store_ack``).
Reading (the list, the notices) only asks an engine questions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError, model_validator

from infra.application.common import (
    AsOf,
    Before,
    Document,
    Ids,
    MonthLabel,
    OperationError,
    Request,
    Rows,
)
from infra.application.reports import ScopeRequest
from ostwatch.timeutil import LOCAL_TZ
from schemas.alerts import LETTER_DOCUMENT, LETTER_VERSION, AckSelection
from schemas.free_text import note_problem
from sinks.ledger import Month
from sinks.store import Store
from streams.alerts.engine import Acknowledged, AlertEngine

# One person's acknowledgement of the alerts a selection covers, with a note: published and
# stored by whoever is the writer of alerts; KeyError names an alert id that does not exist.
Acknowledge = Callable[[AckSelection, str], Acknowledged]


class AlertsRequest(ScopeRequest):
    """Every alert (CONTRACT §4 fields and more), open first by severity; as of T when asked
    (judged afresh from the events up to T), else as the live stream keeps them."""

    as_of: AsOf = None
    status: str | None = None  # open, resolved; None or "all": both
    kinds: Ids = ()


class AckRequest(Request):
    """``alerts ack``: the alerts named by id, or every open, unacknowledged one matching all
    the filters; the note is refused when it looks like personal data (kept verbatim
    otherwise, so an inspector reads what was typed)."""

    alert_ids: Ids = ()
    kinds: Ids = ()
    communes: Ids = ()
    facilities: Ids = ()
    before: Before = None
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _one_id(cls, data: Any) -> Any:
        """``alert_id``: one id, as the API has always taken it."""
        if isinstance(data, dict) and "alert_id" in data and "alert_ids" not in data:
            data = {**data, "alert_ids": [data["alert_id"]]}
            del data["alert_id"]
        return data

    @model_validator(mode="after")
    def _checked(self) -> AckRequest:
        problem = note_problem(self.note)
        if problem:
            raise OperationError(
                f"--note {problem}; personal data is not kept (value not shown): say what was "
                "done without names, phone or ID numbers"
            )
        self.selection()
        return self

    def selection(self) -> AckSelection:
        try:
            return AckSelection(
                alert_ids=self.alert_ids,
                kinds=self.kinds,  # each one checked by AckSelection
                communes=self.communes,
                facilities=self.facilities,
                before=self.before,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise OperationError(f"{where + ': ' if where else ''}{first['msg']}") from None


class AckOutcome(BaseModel):
    """What an acknowledgement did: how many it acknowledged, how many of those it named had
    been before, and each change (the alert as it is now)."""

    acknowledged: int
    already_acknowledged: int
    changes: list[dict[str, Any]]


class NoticesRequest(Request):
    """The month's letters: every commune notification for an event of ``month``."""

    month: MonthLabel
    communes: Ids = ()
    facilities: Ids = ()


def list_alerts(store: Store, engine: AlertEngine, request: AlertsRequest) -> Rows:
    scope = request.scope(store)
    alerts = engine.as_of(request.as_of) if request.as_of is not None else engine.current()
    return Rows.of(
        [
            alert.as_json()
            for alert in alerts
            if (scope.facilities is None or alert.facility_id in scope.facilities)
            and (request.status in (None, "all") or alert.status == request.status)
            and (not request.kinds or alert.kind in request.kinds)
        ]
    )


def acknowledge(ack: Acknowledge, request: AckRequest) -> AckOutcome:
    try:
        outcome = ack(request.selection(), request.note)
    except KeyError as exc:
        raise OperationError(f"no alert with id {exc.args[0]!r}") from None
    return AckOutcome.model_validate(outcome.as_json())


def store_ack(engine: AlertEngine) -> Acknowledge:
    """Acknowledgements written by ``engine`` itself: the CLI's, when no stack runs (nothing
    to publish to), or a worker's whose alerts are off."""

    def ack(selection: AckSelection, note: str) -> Acknowledged:
        outcome = engine.acknowledge_many(selection, note)
        engine.commit(outcome.changes)
        return outcome

    return ack


def notices(store: Store, engine: AlertEngine, request: NoticesRequest) -> Document:
    """The month's letters to communes (CONTRACT §4 notices): one per commune of residence,
    every event it must be told of, with the facility, local date and pseudonymous reference.
    Self-describing (``document``, ``version``), so the facility's ``notices resolve`` reads
    it back."""
    month = Month.parse(request.month, flag="--month")
    start, end = month.starts, month.ends + timedelta(milliseconds=1)
    communes, facilities = set(request.communes), set(request.facilities)
    registry = store.registry()
    units = list(registry.facilities.values()) if registry else []
    names = {f.facility_id: f.name for f in units}
    issuer = next((f.name for f in units if f.type == "provincial_cdc"), "")
    letters: dict[str, list[dict[str, Any]]] = {}
    for line in engine.notices(start, end):
        if (communes and line["commune"] not in communes) or (
            facilities and line["facility_id"] not in facilities
        ):
            continue
        line["facility_name"] = names.get(line["facility_id"], "")
        letters.setdefault(line["commune"], []).append(line)
    return Document.of(
        {
            "document": LETTER_DOCUMENT,
            "version": LETTER_VERSION,
            "month": month.label,
            "issuer": issuer,
            "period_from": start.isoformat(),
            "period_to": end.isoformat(),
            "generated_at": datetime.now(LOCAL_TZ).isoformat(timespec="seconds"),
            "letters": [{"commune": c, "lines": lines} for c, lines in sorted(letters.items())],
        }
    )
