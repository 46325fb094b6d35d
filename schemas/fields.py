"""The field types of the event contract (CONTRACT.md section 1): its enumerations, its
constrained types with the contract's own wording for each refusal, the RFC 3339 time it
accepts, and the bounds on an event's time and quantities.

``schemas.models`` builds the event models from these; a refusal raised here reads like the
contract ("must be greater than 0 and at most 1000") rather than like pydantic internals.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any, Final, Literal, NamedTuple, TypeVar

from pydantic import AfterValidator, BeforeValidator, PlainValidator
from pydantic_core import PydanticCustomError

from schemas.privacy import looks_personal

# How much of an offending input value a reason may quote: enough to recognise it, never a
# whole line pasted into an operator's list.
_MAX_QUOTED = 60
# The error type of a refusal worded by the contract (the models raise it too).
RULE_ERROR = "contract_rule"

# Bounds that apply to every event (CONTRACT §1). An event time before the programme's data
# (or .NET's DateTime.MinValue, 0001-01-01) or far in the future would be stored, become the
# reports' default T and raise alerts for decades; a quantity of 1e308 would make on hand
# infinite. The time bounds are configurable (``EventBounds``; OSTWATCH_STREAM_OCCURRED_AT_*).
EARLIEST_OCCURRED_AT: Final = datetime(2008, 1, 1, tzinfo=timezone(timedelta(hours=7)))
MAX_AHEAD: Final = timedelta(days=1)
MAX_QUANTITY: Final = 10_000_000

_T = TypeVar("_T")


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


def quote(value: object) -> str:
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
                RULE_ERROR, "{rule} (got {got})", {"rule": message, "got": quote(value)}
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


def not_null(error_type: str) -> BeforeValidator:
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
            RULE_ERROR,
            "{rule} (got {got})",
            {
                "rule": "must be a UUID like 123e4567-e89b-12d3-a456-426614174000",
                "got": quote(value),
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
                RULE_ERROR, "{rule} (got {got})", {"rule": _TIME_RULE, "got": quote(value)}
            ) from None
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return value
    if isinstance(value, datetime):
        raise PydanticCustomError(RULE_ERROR, "{rule}", {"rule": _TIME_RULE})
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


class Arrival(NamedTuple):
    """The validation context of one event: when it arrived, and the bounds in force."""

    at: datetime
    bounds: EventBounds


def now_and_defaults() -> Arrival:
    return Arrival(datetime.now(UTC), DEFAULT_BOUNDS)
