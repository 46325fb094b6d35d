"""Pydantic models that enforce every rule of the event contract (CONTRACT.md section 1).

The models are the single authority on whether an event is acceptable: the ingest tool uses them
to give the sender a quick answer, and the stream processor re-validates every message with them
because the Avro schemas cannot express ranges or patterns. A refusal is an ``EventRejected``
whose ``reason`` is one human-readable line naming the field, so an operator can fix the source.
The field types the models are built from (enumerations, constrained types, time bounds) are in
``schemas.fields``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Final, Literal, get_args

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.fields import (
    DEFAULT_BOUNDS,
    EARLIEST_OCCURRED_AT,
    MAX_AHEAD,
    MAX_QUANTITY,
    RULE_ERROR,
    Arrival,
    Code,
    DateText,
    Days,
    DischargeOutcome,
    DoseMg,
    DoseMode,
    EventBounds,
    EventId,
    NonNegativeQuantity,
    NonZeroQuantity,
    OccurredAt,
    PatientRef,
    Period,
    PositiveQuantity,
    Programme,
    Results,
    SchemaVersion,
    StockAdjustmentReason,
    TestPurpose,
    TestResult,
    ViolationReason,
    not_null,
    now_and_defaults,
    quote,
)
from schemas.privacy import personal_data_problem, redact_line
from schemas.untrusted import (
    MAX_NESTING,
    document_too_deep,
    nesting_problem,
    text_too_deep,
    utf8_problem,
)

__all__ = [
    "CODE_FIELDS",
    "CONTRACT_FIELDS",
    "DEFAULT_BOUNDS",
    "DEFAULT_MAX_LINE_BYTES",
    "EARLIEST_OCCURRED_AT",
    "EVENT_TYPES",
    "MAX_AHEAD",
    "MAX_NESTING",
    "MAX_QUANTITY",
    "MODEL_BY_TYPE",
    "BaseEvent",
    "DischargeOutcome",
    "DoseDispensed",
    "DoseMode",
    "Event",
    "EventBounds",
    "EventRejected",
    "PatientDischarged",
    "PatientEnrolled",
    "PatientTakeHomeApproved",
    "PatientTakeHomeRevoked",
    "PatientTransferred",
    "PatientViolation",
    "Programme",
    "ReportSubmitted",
    "StockAdjusted",
    "StockAdjustmentReason",
    "StockCounted",
    "StockReceived",
    "SupervisionVisited",
    "TestPerformed",
    "TestPurpose",
    "TestResult",
    "ViolationReason",
    "format_validation_error",
    "parse_event_dict",
    "parse_event_line",
    "redact_rejected_line",
]

# Longest line (or event message) the intake takes: a contract event is well under 1 KiB, so
# anything near this is not an event; the producer and the stream share the default.
DEFAULT_MAX_LINE_BYTES: Final = 16 * 1024


class EventRejected(ValueError):
    """An input that is not a valid contract event; ``reason`` is one line naming the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# The models.


class BaseEvent(BaseModel):
    """The envelope shared by every event type; subclasses add the type's own fields."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, allow_inf_nan=False, validate_default=False
    )

    event_id: EventId = Field(description="Unique id of the event; the idempotency key.")
    event_type: str = Field(description="Which of the contract's event types this is.")
    schema_version: SchemaVersion = Field(description="Version of the event format; always 1.")
    occurred_at: OccurredAt = Field(
        description="When it happened at the source, RFC 3339 with an offset."
    )
    facility_id: Code = Field(description="Registry id of the facility where it happened.")

    # The timestamp exactly as sent, so the event can be given back (and archived) unchanged.
    _occurred_at_text: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_text_and_bound_time(
        cls, data: Any, handler: Callable[[Any], BaseEvent], info: ValidationInfo
    ) -> BaseEvent:
        """Once the fields are valid: remember the original ``occurred_at`` text (a datetime
        cannot keep ``Z`` or ``.50``), and hold the event time to CONTRACT §1's bounds against
        the arrival the caller gave (``Arrival``; without one, now and the default bounds).
        One validator for both: each one pydantic calls costs per event."""
        event = handler(data)
        if isinstance(data, Mapping):
            text = data.get("occurred_at")
            if isinstance(text, str):
                event._occurred_at_text = text
        context = info.context
        arrival, bounds = context if type(context) is Arrival else now_and_defaults()
        problem = bounds.problem(event.occurred_at, arrival)
        if problem:
            raise PydanticCustomError(RULE_ERROR, "{reason}", {"reason": problem})
        return event

    @property
    def occurred_at_text(self) -> str:
        """The RFC 3339 text as the sender wrote it (ISO format for events built in Python)."""
        return self._occurred_at_text or self.occurred_at.isoformat()

    @property
    def occurred_at_utc(self) -> datetime:
        """``occurred_at`` as an aware UTC datetime, for ordering and storage."""
        return self.occurred_at.astimezone(UTC)

    def to_contract_dict(self) -> dict[str, Any]:
        """The event as the contract writes it: original timestamp text, absent fields omitted."""
        doc = self.model_dump(exclude_none=True)
        doc["occurred_at"] = self.occurred_at_text
        return doc


class DoseDispensed(BaseEvent):
    """A dose handed to a patient, observed on site or as a multi-day take-home supply."""

    event_type: Literal["dose.dispensed"]
    patient_ref: PatientRef = Field(description="Pseudonymous patient reference.")
    item: Code = Field(description="Item code of a medication.")
    dose_mg: DoseMg = Field(description="Daily dose in mg.")
    mode: DoseMode = Field(description="observed on site or take_home.")
    take_home_days: Annotated[Days | None, not_null("int_type")] = Field(
        default=None, description="Days covered; required for take_home, absent or 1 if observed."
    )

    @model_validator(mode="after")
    def _take_home_days_match_mode(self) -> DoseDispensed:
        """The number of days only makes sense together with the mode."""
        if self.mode == "take_home" and self.take_home_days is None:
            raise PydanticCustomError(RULE_ERROR, "take_home_days: required when mode is take_home")
        if self.mode == "observed" and self.take_home_days not in (None, 1):
            raise PydanticCustomError(
                RULE_ERROR,
                "take_home_days: must be absent or 1 when mode is observed (got {got})",
                {"got": self.take_home_days},
            )
        return self


class StockReceived(BaseEvent):
    """Stock of an item received at the facility."""

    event_type: Literal["stock.received"]
    item: Code = Field(description="Item code.")
    quantity: PositiveQuantity = Field(description="Quantity received, in the item's unit.")
    lot: Annotated[Code | None, not_null("string_type")] = Field(
        default=None, description="Lot number."
    )
    expiry_date: Annotated[DateText | None, not_null("string_type")] = Field(
        default=None, description="Expiry date YYYY-MM-DD."
    )


class StockAdjusted(BaseEvent):
    """A signed stock correction: losses, transfers, count corrections."""

    event_type: Literal["stock.adjusted"]
    item: Code = Field(description="Item code.")
    quantity_delta: NonZeroQuantity = Field(description="Signed change, in the item's unit.")
    reason: StockAdjustmentReason = Field(description="Why the stock changed.")
    lot: Annotated[Code | None, not_null("string_type")] = Field(
        default=None, description="Lot number."
    )


class StockCounted(BaseEvent):
    """A physical count of an item; stock on hand restarts from it."""

    event_type: Literal["stock.counted"]
    item: Code = Field(description="Item code.")
    quantity_on_hand: NonNegativeQuantity = Field(description="Counted quantity, item's unit.")


class PatientEvent(BaseEvent):
    """An event about one patient, named by the pseudonymous reference computed at the source."""

    patient_ref: PatientRef = Field(description="Pseudonymous patient reference.")


class PatientEnrolled(PatientEvent):
    """A patient starts a programme at the facility."""

    event_type: Literal["patient.enrolled"]
    programme: Programme = Field(description="Treatment programme.")
    residence_commune: Code = Field(description="Code of the commune of residence.")


class PatientTransferred(PatientEvent):
    """A patient moves from this facility to another one."""

    event_type: Literal["patient.transferred"]
    to_facility_id: Code = Field(description="Registry id of the receiving facility.")


class PatientTakeHomeApproved(PatientEvent):
    """A patient becomes eligible for take-home doses of up to ``max_days``."""

    event_type: Literal["patient.take_home_approved"]
    max_days: Days = Field(description="Longest take-home supply allowed, in days.")


class PatientTakeHomeRevoked(PatientEvent):
    """A patient's take-home approval ends."""

    event_type: Literal["patient.take_home_revoked"]


class PatientViolation(PatientEvent):
    """A patient broke the treatment rules."""

    event_type: Literal["patient.violation"]
    reason: ViolationReason = Field(description="Which rule was broken.")


class PatientDischarged(PatientEvent):
    """A patient leaves treatment."""

    event_type: Literal["patient.discharged"]
    outcome: DischargeOutcome = Field(description="How treatment ended.")


class TestPerformed(BaseEvent):
    """A drug test done with one kit, with a result per substance."""

    __test__: ClassVar[bool] = False  # not a pytest test class despite the name

    event_type: Literal["test.performed"]
    item: Code = Field(description="Item code of a test kit.")
    purpose: TestPurpose = Field(description="Why the test was done.")
    patient_ref: Annotated[PatientRef | None, not_null("string_type")] = Field(
        default=None, description="Pseudonymous patient reference."
    )
    results: Results = Field(description="Result per substance code.")
    residence_commune: Annotated[Code | None, not_null("string_type")] = Field(
        default=None, description="Code of the commune where the tested person lives."
    )


class ReportSubmitted(BaseEvent):
    """A periodic report was submitted by the facility."""

    event_type: Literal["report.submitted"]
    report_type: Code = Field(description="Report type, a key of the deadline calendar.")
    period: Period = Field(
        description="Period covered: YYYY-MM, YYYY-Qn, YYYY-H1, YYYY-H2 or YYYY."
    )


class SupervisionVisited(BaseEvent):
    """A supervising unit visited the facility."""

    event_type: Literal["supervision.visited"]
    supervisor_id: Code = Field(description="Registry id of the supervising unit.")


Event = Annotated[
    DoseDispensed
    | StockReceived
    | StockAdjusted
    | StockCounted
    | PatientEnrolled
    | PatientTransferred
    | PatientTakeHomeApproved
    | PatientTakeHomeRevoked
    | PatientViolation
    | PatientDischarged
    | TestPerformed
    | ReportSubmitted
    | SupervisionVisited,
    Field(discriminator="event_type"),
]

MODEL_BY_TYPE: Final[dict[str, type[BaseEvent]]] = {
    get_args(model.model_fields["event_type"].annotation)[0]: model
    for model in get_args(get_args(Event)[0])
}
EVENT_TYPES: Final[tuple[str, ...]] = tuple(MODEL_BY_TYPE)
# Every field name of the contract, and those where a code (not free text) is expected.
CONTRACT_FIELDS: Final[frozenset[str]] = frozenset(
    name for model in MODEL_BY_TYPE.values() for name in model.model_fields
)
CODE_FIELDS: Final[frozenset[str]] = CONTRACT_FIELDS - {"occurred_at"}


# --------------------------------------------------------------------------------------------
# Parsing and reasons.

_KIND_BY_ERROR = {
    "string_type": "a string",
    "float_type": "a number",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "dict_type": "an object",
    "model_type": "an object",
    "bool_type": "a boolean",
}


def _json_kind(value: object) -> str:
    """Name the JSON type of a decoded value for 'must be X, not Y' reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _field_path(loc: tuple[int | str, ...]) -> str:
    """``('results', 'THC')`` -> ``results.THC``; a bad key -> ``results key 'x y'``."""
    if len(loc) >= 2 and loc[-1] == "[key]":
        return f"{_field_path(loc[:-2])} key {quote(loc[-2])}"
    return ".".join(str(part) for part in loc)


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as a contract reason."""
    loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    where = _field_path(loc)
    if kind == "missing":
        return f"{where}: required field missing"
    if kind == "extra_forbidden":
        return f"unknown field: {where}"
    if kind in _KIND_BY_ERROR and isinstance(value, float) and not isinstance(value, bool):
        return f"{where}: must be {_KIND_BY_ERROR[kind]} (got {quote(value)})"
    if kind in _KIND_BY_ERROR:
        return f"{where}: must be {_KIND_BY_ERROR[kind]}, not {_json_kind(value)}"
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        choices = f"one of {expected}" if " or " in expected else expected
        return f"{where}: must be {choices} (got {quote(value)})"
    if kind == "finite_number":
        return f"{where}: must be a finite number"
    message = str(error["msg"])
    return f"{where}: {message}" if where else message


def format_validation_error(exc: ValidationError) -> str:
    """The first problem as one line, plus how many more there were."""
    # An unknown field is usually a typo of a missing one; naming it first points at the fix.
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return "invalid event"
    first = _describe(errors[0])
    return first if len(errors) == 1 else f"{first} (+{len(errors) - 1} more)"


def parse_event_dict(
    doc: Mapping[str, Any],
    *,
    arrival: datetime | None = None,
    bounds: EventBounds = DEFAULT_BOUNDS,
    depth_checked: bool = False,
) -> BaseEvent:
    """Validate a decoded JSON object against the contract; EventRejected if it breaks a rule.

    ``arrival`` is when the event reached whoever judges it (default: now), for the bound
    on future event times. ``depth_checked`` says the caller has bounded the document's
    nesting already (its text, or its Avro schema). Dispatching on ``event_type`` ourselves
    (rather than through the discriminated union) is faster and names an unknown type.
    """
    if not isinstance(doc, Mapping):
        raise EventRejected(f"not a JSON object: {_json_kind(doc)}")
    if not doc:
        raise EventRejected("empty object: event_type and the envelope fields are required")
    # Depth before anything walks the document (a walk of 500 levels would not return).
    if not depth_checked and document_too_deep(doc, MAX_NESTING):
        raise EventRejected(nesting_problem(MAX_NESTING))
    # Personal data first: it is the most important reason, and no later reason may quote it.
    problem = personal_data_problem(doc, CODE_FIELDS)
    if problem:
        raise EventRejected(problem)
    event_type = doc.get("event_type")
    if event_type is None:
        if "event_type" in doc:
            raise EventRejected("event_type: must be a string, not null")
        raise EventRejected("event_type: required field missing")
    if not isinstance(event_type, str):
        raise EventRejected(f"event_type: must be a string, not {_json_kind(event_type)}")
    model = MODEL_BY_TYPE.get(event_type)
    if model is None:
        raise EventRejected(f"event_type: unknown type {quote(event_type)}")
    context = Arrival(arrival or datetime.now(UTC), bounds)
    try:
        return model.model_validate(doc, context=context)
    except ValidationError as exc:
        raise EventRejected(format_validation_error(exc)) from None


def parse_event_line(
    line: bytes | str,
    *,
    arrival: datetime | None = None,
    bounds: EventBounds = DEFAULT_BOUNDS,
) -> BaseEvent:
    """Parse one JSON Lines line into an event; EventRejected with the reason if it is not one.

    The text is checked to be UTF-8 and nested at most MAX_NESTING levels before the JSON
    parser (which recurses) reads it.
    """
    raw = line.encode("utf-8", errors="surrogatepass") if isinstance(line, str) else line
    problem = utf8_problem(raw)
    if problem:
        raise EventRejected(problem)
    if text_too_deep(raw, MAX_NESTING):
        raise EventRejected(nesting_problem(MAX_NESTING))
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventRejected(f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise EventRejected(f"not a JSON object: {_json_kind(doc)}")
    return parse_event_dict(doc, arrival=arrival, bounds=bounds, depth_checked=True)


def redact_rejected_line(raw: bytes) -> bytes:
    """What may be kept of a refused line (see ``schemas.privacy``); ``raw`` if nothing to hide.

    Re-validating the kept line gives the same reason as the original, so a producer may
    publish the kept form and the stream processor still decides it on its own.
    """
    return redact_line(raw, CONTRACT_FIELDS, CODE_FIELDS)
