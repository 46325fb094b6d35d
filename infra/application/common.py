"""What every operation shares: the request base, the validators the CLI and the worker's API
used to repeat (``--as-of``, local days, facility lists, months), the answer types, the error.

A request model is built where the user's input enters (the CLI, or the worker's API from the
JSON body); building it validates it, once, with the messages the CLI prints as they are.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, RootModel, ValidationError

from ostwatch.timeutil import LOCAL_TZ
from sinks.ledger import LedgerError, Month


class OperationError(ValueError):
    """The request was refused (bad arguments, or what the store says cannot be answered);
    the message is meant for the user as it is, in one line."""


# What a report's T may be: the range of the store's DateTime64(3) columns, a few days in,
# so that the reports' day arithmetic around T (the use window, the next local midnight)
# stays within dates too. 0001-01-01 (.NET's DateTime.MinValue) or 9999-12-31 is refused.
EARLIEST_AS_OF = datetime(1900, 2, 1, tzinfo=UTC)
LATEST_AS_OF = datetime(2299, 12, 1, tzinfo=UTC)


def parse_as_of(text: object) -> datetime:
    """An ``--as-of`` value: RFC 3339 with an offset, within the range a report can answer."""
    if isinstance(text, datetime):
        instant = text
    else:
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


def _optional_as_of(value: object) -> datetime | None:
    return None if value in (None, "") else parse_as_of(value)


def _local_day(flag: str) -> Any:
    def parse(value: object) -> date | None:
        if value in (None, ""):
            return None
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise OperationError(f"{flag}: not a date (YYYY-MM-DD): {value!r}") from None

    return BeforeValidator(parse)


def _names(value: object) -> tuple[str, ...]:
    """A list of ids (facilities, kinds, communes): one string is a list of one."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("a list of ids (facility ids, kinds or communes)")
    return tuple(value)


def _before(value: object) -> datetime | None:
    """--before: a local day (its first local midnight) or an RFC 3339 instant."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    text = str(value)
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


def _month(flag: str) -> Any:
    def parse(value: object) -> str:
        try:
            return Month.parse(str(value or ""), flag=flag).label
        except LedgerError as exc:
            raise OperationError(str(exc)) from None

    return BeforeValidator(parse)


AsOf = Annotated[datetime | None, BeforeValidator(_optional_as_of)]
DateFrom = Annotated[date | None, _local_day("--from")]
DateTo = Annotated[date | None, _local_day("--to")]
Ids = Annotated[tuple[str, ...], BeforeValidator(_names)]
Before = Annotated[datetime | None, BeforeValidator(_before)]
MonthLabel = Annotated[str, _month("--month")]


class Request(BaseModel):
    """A request to one operation: frozen, unknown fields refused (a typo must not pass)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


R = TypeVar("R", bound=BaseModel)


def build(model: type[R], /, **fields: Any) -> R:
    """``model`` from the user's input; a refusal is an ``OperationError`` in one line with
    the message of the validator that refused (``--as-of: …``), not pydantic's report."""
    return checked(model, fields)


def checked(model: type[R], data: Any) -> R:
    """``model`` validated from ``data`` (a JSON body, keyword arguments), as ``build``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, OperationError):  # a validator's own message, whole
            raise OperationError(str(cause)) from None
        where = ".".join(str(part) for part in first["loc"])
        message = str(cause) if isinstance(cause, Exception) else first["msg"]
        raise OperationError(f"{where + ': ' if where else ''}{message}") from None


def jsonable(value: Any) -> Any:
    """``value`` as JSON would carry it (dates as text, tuples as lists), so that an answer
    is the same whether it was computed here or came over the worker's API."""
    return orjson.loads(orjson.dumps(value, default=str))


class Rows(RootModel[list[dict[str, Any]]]):
    """A report's rows, JSON-ready (each report's columns: CONTRACT §5, docs/reports.md)."""

    @classmethod
    def of(cls, rows: Any) -> Rows:
        return cls(jsonable(rows))


class Document(RootModel[dict[str, Any]]):
    """A whole document (the monthly report, a ledger, a verification), JSON-ready; its shape
    is the one the part that computes it documents."""

    @classmethod
    def of(cls, doc: Any) -> Document:
        return cls(jsonable(doc))
