"""Pydantic models that enforce every rule of the event contract (CONTRACT.md section 1).

The models are the single authority on whether an event is acceptable: the ingest tool uses them
to give the sender a quick answer, and the stream processor re-validates every message with them
because the Avro schemas cannot express ranges or patterns. A refusal is an ``EventRejected``
whose ``reason`` is one human-readable line naming the field, so an operator can fix the source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any, ClassVar, Final, Literal, NamedTuple, TypeVar, get_args

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.privacy import looks_personal, personal_data_problem, redact_line
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

# How much of an offending input value a reason may quote: enough to recognise it, never a
# whole line pasted into an operator's list.
_MAX_QUOTED = 60
# Longest line (or event message) the intake takes: a contract event is well under 1 KiB, so
# anything near this is not an event; the producer and the stream share the default.
DEFAULT_MAX_LINE_BYTES: Final = 16 * 1024
_RULE_ERROR = "contract_rule"

# Bounds that apply to every event (CONTRACT §1). An event time before the programme's data
# (or .NET's DateTime.MinValue, 0001-01-01) or far in the future would be stored, become the
# reports' default T and raise alerts for decades; a quantity of 1e308 would make on hand
# infinite. The time bounds are configurable (``EventBounds``; OSTWATCH_STREAM_OCCURRED_AT_*).
EARLIEST_OCCURRED_AT: Final = datetime(2008, 1, 1, tzinfo=timezone(timedelta(hours=7)))
MAX_AHEAD: Final = timedelta(days=1)
MAX_QUANTITY: Final = 10_000_000

_T = TypeVar("_T")


class EventRejected(ValueError):
    """An input that is not a valid contract event; ``reason`` is one line naming the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Enumerations of the contract. Literal types keep dumps as plain strings and feed the Avro
# golden test (``typing.get_args`` gives the symbols).

DoseMode = Literal["observed", "take_home"]
StockAdjustmentReason = Literal[
    "spillage", "breakage", "expired", "count_correction", "transfer_in", "transfer_out", "other"
]
Programme = Literal["methadone", "buprenorphine", "community_detox", "centre_detox"]
ViolationReason = Literal["missed_doses", "positive_test", "diversion", "behaviour", "other"]
DischargeOutcome = Literal[
    "completed", "self_terminated", "deceased", "incarcerated", "compulsory_rehab", "other"
]
TestPurpose = Literal["addiction_determination", "treatment_monitoring", "screening"]
TestResult = Literal["positive", "negative", "invalid"]


# --------------------------------------------------------------------------------------------
# Constrained field types. Each check raises its own message so a reason reads like the
# contract ("must be greater than 0 and at most 1000") rather than like pydantic internals.


def _quote(value: object) -> str:
    """Show an offending input value briefly, as JSON would spell it.

    A value that may be personal data (an ID, a phone, an e-mail, words that may be a name)
    is described, not shown: reasons are kept, logged and listed to operators.
    """
    if isinstance(value, str) and looks_personal(value):
        return f"a {len(value)}-character text, not shown"
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = str(value)
    return text if len(text) <= _MAX_QUOTED else text[: _MAX_QUOTED - 1] + "…"


def _rule(check: Callable[[_T], bool], message: str) -> AfterValidator:
    """A validator that enforces ``check`` and refuses with the contract's wording."""

    def validate(value: _T) -> _T:
        if not check(value):
            raise PydanticCustomError(
                _RULE_ERROR, "{rule} (got {got})", {"rule": message, "got": _quote(value)}
            )
        return value

    return AfterValidator(validate)


def _matches(pattern: str, message: str) -> AfterValidator:
    """A validator for strings that must match ``pattern`` entirely."""
    return _rule(re.compile(pattern).fullmatch, message)  # type: ignore[arg-type]


def _whole_number(value: Any) -> Any:
    """Let 3.0 stand for 3 (JSON has one number type), but never 3.5 or ``true``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _not_null(error_type: str) -> BeforeValidator:
    """Optional fields may be omitted, but an explicit null is refused to keep the contract strict.

    ``error_type`` is the pydantic type error of the field's kind, so the reason reads
    "lot: must be a string, not null".
    """

    def validate(value: Any) -> Any:
        if value is None:
            raise PydanticCustomError(error_type, "null is not allowed; omit the field instead")
        return value

    return BeforeValidator(validate)


# A code: 1–64 characters, no whitespace and no control characters (C0, DEL and C1).
_CODE_PATTERN = r"[^\s\x00-\x1f\x7f-\x9f]{1,64}"
Code = Annotated[
    str, _matches(_CODE_PATTERN, "must be 1–64 characters without spaces or control characters")
]
PatientRef = Annotated[
    str, _matches(r"[A-Za-z0-9_-]{8,64}", "must be 8–64 characters of A-Z, a-z, 0-9, '_' or '-'")
]
SubstanceCode = Annotated[
    str, _matches(r"[A-Za-z0-9_./-]{1,40}", "must be 1–40 characters of A-Z, a-z, 0-9, _ . / -")
]
Period = Annotated[
    str,
    _matches(
        r"\d{4}(-(0[1-9]|1[0-2])|-Q[1-4]|-H[12])?",
        "must be YYYY-MM, YYYY-Qn, YYYY-H1, YYYY-H2 or YYYY",
    ),
]
DoseMg = Annotated[float, _rule(lambda x: 0 < x <= 1000, "must be greater than 0 and at most 1000")]
# Quantities are finite (``allow_inf_nan=False``) and at most MAX_QUANTITY either way.
PositiveQuantity = Annotated[
    float,
    _rule(lambda x: 0 < x <= MAX_QUANTITY, "must be greater than 0 and at most 10,000,000"),
]
NonZeroQuantity = Annotated[
    float,
    _rule(
        lambda x: x != 0 and abs(x) <= MAX_QUANTITY,
        "must not be 0, and at most 10,000,000 either way",
    ),
]
NonNegativeQuantity = Annotated[
    float,
    _rule(lambda x: 0 <= x <= MAX_QUANTITY, "must be 0 or more and at most 10,000,000"),
    AfterValidator(lambda x: x + 0.0),  # -0.0 is stored and shown as 0
]
Days = Annotated[
    int, BeforeValidator(_whole_number), _rule(lambda x: 1 <= x <= 30, "must be 1 to 30")
]
SchemaVersion = Annotated[Literal[1], BeforeValidator(_whole_number)]
Results = Annotated[
    dict[SubstanceCode, TestResult], _rule(bool, "must have at least one substance")
]

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _is_calendar_date(text: str) -> bool:
    """True for a real ``YYYY-MM-DD`` date (no 2024-02-30)."""
    if not _DATE_RE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


DateText = Annotated[str, _rule(_is_calendar_date, "must be a calendar date YYYY-MM-DD")]

_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _canonical_uuid(value: str) -> str:
    """The idempotency key must compare equal however the sender cased it."""
    if not _UUID_RE.fullmatch(value):
        raise PydanticCustomError(
            _RULE_ERROR,
            "{rule} (got {got})",
            {
                "rule": "must be a UUID like 123e4567-e89b-12d3-a456-426614174000",
                "got": _quote(value),
            },
        )
    return value.lower()


EventId = Annotated[str, AfterValidator(_canonical_uuid)]

# RFC 3339 date-time: explicit offset required, fractional seconds of any length allowed.
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_OFFSETS: dict[str, timezone] = {}
_TIME_RULE = "must be an RFC 3339 date-time with an offset, e.g. 2024-03-05T07:42:10+07:00"


def _offset(sign: str, hours: str, minutes: str) -> timezone:
    """Offsets repeat endlessly in a stream, so their timezone objects are cached."""
    key = sign + hours + minutes
    tz = _OFFSETS.get(key)
    if tz is None:
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta >= timedelta(hours=24) or int(minutes) > 59:
            raise ValueError("offset out of range")
        tz = timezone(-delta if sign == "-" else delta)
        _OFFSETS[key] = tz
    return tz


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware datetime; ValueError if it is not one."""
    match = _RFC3339_RE.fullmatch(text)
    if match is None:
        raise ValueError(_TIME_RULE)
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    tz = UTC if zulu else _offset(sign, off_h, off_m)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
    )


def _occurred_at(value: Any) -> datetime:
    """Accept the RFC 3339 text of the contract, or an aware datetime built in Python."""
    if isinstance(value, str):
        try:
            return parse_rfc3339(value)
        except ValueError:
            raise PydanticCustomError(
                _RULE_ERROR, "{rule} (got {got})", {"rule": _TIME_RULE, "got": _quote(value)}
            ) from None
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return value
    if isinstance(value, datetime):
        raise PydanticCustomError(_RULE_ERROR, "{rule}", {"rule": _TIME_RULE})
    raise PydanticCustomError("string_type", "Input should be a valid string")


OccurredAt = Annotated[datetime, PlainValidator(_occurred_at)]


def _span(delta: timedelta) -> str:
    """``1 day``, ``6 hours``, ``90 s``: a bound as a reason names it."""
    seconds = delta.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} s"


@dataclass(frozen=True)
class EventBounds:
    """How early, and how far past its arrival, an event's time may be (CONTRACT §1).

    Arrival is the caller's to give: the sender's clock when the publisher validates, the
    time the platform received the message when the stream processor decides (see
    ``streams/intake/classify.py``). Both bounds are settings (OSTWATCH_STREAM_OCCURRED_AT_*).
    """

    earliest: datetime = EARLIEST_OCCURRED_AT
    max_ahead: timedelta = MAX_AHEAD
    # The same, as POSIX seconds: every event pays for this check.
    _earliest_s: float = field(init=False, repr=False, compare=False)
    _ahead_s: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_earliest_s", self.earliest.timestamp())
        object.__setattr__(self, "_ahead_s", self.max_ahead.total_seconds())

    def problem(self, occurred_at: datetime, arrival: datetime) -> str | None:
        """The reason ``occurred_at`` is out of bounds for an event arriving at ``arrival``."""
        try:
            at = occurred_at.timestamp()
        except (OverflowError, ValueError):  # beyond what a POSIX time can hold
            at = float("-inf") if occurred_at.year < 1970 else float("inf")
        if at < self._earliest_s:
            return (
                f"occurred_at: before {self.earliest.isoformat()}, the earliest event time "
                f"accepted (got {occurred_at.isoformat()})"
            )
        if at - arrival.timestamp() > self._ahead_s:
            return (
                f"occurred_at: more than {_span(self.max_ahead)} after the platform received "
                f"the event at {arrival.astimezone(UTC).isoformat(timespec='seconds')} "
                f"(got {occurred_at.isoformat()}); an event cannot happen in the future"
            )
        return None


DEFAULT_BOUNDS: Final = EventBounds()


class _Arrival(NamedTuple):
    """The validation context of one event: when it arrived, and the bounds in force."""

    at: datetime
    bounds: EventBounds


def _now_and_defaults() -> _Arrival:
    return _Arrival(datetime.now(UTC), DEFAULT_BOUNDS)


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
        the arrival the caller gave (``_Arrival``; without one, now and the default bounds).
        One validator for both: each one pydantic calls costs per event."""
        event = handler(data)
        if isinstance(data, Mapping):
            text = data.get("occurred_at")
            if isinstance(text, str):
                event._occurred_at_text = text
        context = info.context
        arrival, bounds = context if type(context) is _Arrival else _now_and_defaults()
        problem = bounds.problem(event.occurred_at, arrival)
        if problem:
            raise PydanticCustomError(_RULE_ERROR, "{reason}", {"reason": problem})
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
    take_home_days: Annotated[Days | None, _not_null("int_type")] = Field(
        default=None, description="Days covered; required for take_home, absent or 1 if observed."
    )

    @model_validator(mode="after")
    def _take_home_days_match_mode(self) -> DoseDispensed:
        """The number of days only makes sense together with the mode."""
        if self.mode == "take_home" and self.take_home_days is None:
            raise PydanticCustomError(
                _RULE_ERROR, "take_home_days: required when mode is take_home"
            )
        if self.mode == "observed" and self.take_home_days not in (None, 1):
            raise PydanticCustomError(
                _RULE_ERROR,
                "take_home_days: must be absent or 1 when mode is observed (got {got})",
                {"got": self.take_home_days},
            )
        return self


class StockReceived(BaseEvent):
    """Stock of an item received at the facility."""

    event_type: Literal["stock.received"]
    item: Code = Field(description="Item code.")
    quantity: PositiveQuantity = Field(description="Quantity received, in the item's unit.")
    lot: Annotated[Code | None, _not_null("string_type")] = Field(
        default=None, description="Lot number."
    )
    expiry_date: Annotated[DateText | None, _not_null("string_type")] = Field(
        default=None, description="Expiry date YYYY-MM-DD."
    )


class StockAdjusted(BaseEvent):
    """A signed stock correction: losses, transfers, count corrections."""

    event_type: Literal["stock.adjusted"]
    item: Code = Field(description="Item code.")
    quantity_delta: NonZeroQuantity = Field(description="Signed change, in the item's unit.")
    reason: StockAdjustmentReason = Field(description="Why the stock changed.")
    lot: Annotated[Code | None, _not_null("string_type")] = Field(
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
    patient_ref: Annotated[PatientRef | None, _not_null("string_type")] = Field(
        default=None, description="Pseudonymous patient reference."
    )
    results: Results = Field(description="Result per substance code.")
    residence_commune: Annotated[Code | None, _not_null("string_type")] = Field(
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
        return f"{_field_path(loc[:-2])} key {_quote(loc[-2])}"
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
        return f"{where}: must be {_KIND_BY_ERROR[kind]} (got {_quote(value)})"
    if kind in _KIND_BY_ERROR:
        return f"{where}: must be {_KIND_BY_ERROR[kind]}, not {_json_kind(value)}"
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        choices = f"one of {expected}" if " or " in expected else expected
        return f"{where}: must be {choices} (got {_quote(value)})"
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
        raise EventRejected(f"event_type: unknown type {_quote(event_type)}")
    context = _Arrival(arrival or datetime.now(UTC), bounds)
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
