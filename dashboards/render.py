"""Expand a panel's SQL the way Grafana and its ClickHouse plugin do before ClickHouse sees it.

Used by the live view (which runs the very panel queries without Grafana) and by the tests.
Two steps, as in Grafana:

1. Grafana core interpolates dashboard variables: ``${name:singlequote}`` becomes the selected
   values, each in single quotes (``'`` escaped as ``\\'``), joined by commas; ``${name}`` and
   ``$name`` the values joined by commas.
2. The plugin (grafana/clickhouse-datasource ``pkg/macros/macros.go``, through grafana/sqlds)
   replaces ``$__name`` or ``$__name(args)`` (arguments split on commas and trimmed) with:

   ============================== ============================================================
   ``$__fromTime`` / ``$__toTime`` ``toDateTime(<unix seconds>)``
   ``$__fromTime_ms`` / ``_ms``    ``fromUnixTimestamp64Milli(<unix ms>)``
   ``$__timeFilter(c)``            ``c >= toDateTime(from) AND c <= toDateTime(to)``
   ``$__timeFilter_ms(c)``         the same with ``fromUnixTimestamp64Milli``
   ``$__dateFilter(c)``            ``c >= toDate('YYYY-MM-DD') AND c <= toDate('YYYY-MM-DD')``
                                   (dates of the range's ends in UTC, as Go formats them)
   ``$__dateTimeFilter(d, t)``     ``(date filter on d) AND (time filter on t)``; alias ``$__dt``
   ``$__timeInterval(c)``          ``toStartOfInterval(toDateTime(c), INTERVAL <s> second)``
   ``$__timeInterval_ms(c)``       ``toStartOfInterval(toDateTime64(c, 3),``
                                   ``INTERVAL <ms> millisecond)``
   ``$__interval_s``               the interval in whole seconds (at least 1)
   ============================== ============================================================

Anything else that looks like a variable or macro is an error here, so a typo in a panel's
SQL fails the tests instead of reaching Grafana.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


class RenderError(ValueError):
    """The SQL names a variable or macro that Grafana (or the plugin) would not expand."""


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range and the panel's interval, as Grafana passes them."""

    start: datetime
    end: datetime
    interval: timedelta = field(default=timedelta(minutes=1))

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range ends must be timezone-aware")


def _seconds(t: datetime) -> int:
    return int(t.timestamp())


def _datetime(t: datetime) -> str:
    return f"toDateTime({_seconds(t)})"


def _datetime64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _date(t: datetime) -> str:
    return f"toDate('{t.astimezone(UTC):%Y-%m-%d}')"


def _args(name: str, args: Sequence[str], count: int) -> Sequence[str]:
    if len(args) != count:
        raise RenderError(f"$__{name}: expected {count} argument(s), got {len(args)}")
    return args


Macro = Callable[[TimeRange, Sequence[str]], str]


def _between(fmt: Callable[[datetime], str], name: str) -> Macro:
    def expand(r: TimeRange, args: Sequence[str]) -> str:
        (column,) = _args(name, args, 1)
        return f"{column} >= {fmt(r.start)} AND {column} <= {fmt(r.end)}"

    return expand


def _date_time_filter(r: TimeRange, args: Sequence[str]) -> str:
    date_column, time_column = _args("dateTimeFilter", args, 2)
    dates = f"({date_column} >= {_date(r.start)} AND {date_column} <= {_date(r.end)})"
    times = f"({time_column} >= {_datetime(r.start)} AND {time_column} <= {_datetime(r.end)})"
    return f"{dates} AND {times}"


def _time_interval(r: TimeRange, args: Sequence[str]) -> str:
    (column,) = _args("timeInterval", args, 1)
    seconds = max(int(r.interval.total_seconds()), 1)
    return f"toStartOfInterval(toDateTime({column}), INTERVAL {seconds} second)"


def _time_interval_ms(r: TimeRange, args: Sequence[str]) -> str:
    (column,) = _args("timeInterval_ms", args, 1)
    ms = max(int(r.interval.total_seconds() * 1000), 1)
    return f"toStartOfInterval(toDateTime64({column}, 3), INTERVAL {ms} millisecond)"


MACROS: dict[str, Macro] = {
    "fromTime": lambda r, a: _datetime(r.start),
    "toTime": lambda r, a: _datetime(r.end),
    "fromTime_ms": lambda r, a: _datetime64(r.start),
    "toTime_ms": lambda r, a: _datetime64(r.end),
    "timeFilter": _between(_datetime, "timeFilter"),
    "timeFilter_ms": _between(_datetime64, "timeFilter_ms"),
    "dateFilter": _between(_date, "dateFilter"),
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeInterval": _time_interval,
    "timeInterval_ms": _time_interval_ms,
    "interval_s": lambda r, a: str(max(int(r.interval.total_seconds()), 1)),
}

_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)([A-Za-z_]\w*)")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def interpolate(sql: str, variables: Mapping[str, Sequence[str]]) -> str:
    """Step 1: dashboard variables, as Grafana core formats them."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        fmt = match.group(2)
        if name not in variables:
            raise RenderError(f"unknown dashboard variable ${name}")
        values = list(variables[name])
        if fmt == "singlequote":
            return ",".join(_quote(v) for v in values)
        if fmt is None:
            return ",".join(values)
        raise RenderError(f"unsupported variable format ${{{name}:{fmt}}}")

    return _VARIABLE.sub(replace, sql)


def expand_macros(sql: str, time_range: TimeRange) -> str:
    """Step 2: the plugin's macros."""

    def replace(match: re.Match[str]) -> str:
        name, raw_args = match.group(1), match.group(2)
        macro = MACROS.get(name)
        if macro is None:
            raise RenderError(f"unknown ClickHouse plugin macro $__{name}")
        args = [a.strip() for a in raw_args.split(",")] if raw_args is not None else []
        return macro(time_range, args)

    return _MACRO.sub(replace, sql)


def render(sql: str, variables: Mapping[str, Sequence[str]], time_range: TimeRange) -> str:
    """The SQL as ClickHouse receives it from Grafana."""
    return expand_macros(interpolate(sql, variables), time_range)
