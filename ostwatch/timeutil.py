"""Local time in Asia/Ho_Chi_Minh: every day boundary in ostwatch is a local day."""

from __future__ import annotations

from datetime import UTC, date, datetime

from schemas.calendar import LOCAL_TZ, LOCAL_TZ_NAME

__all__ = ["LOCAL_TZ", "LOCAL_TZ_NAME", "local_date", "utc_now"]


def utc_now() -> datetime:
    """The current instant, timezone-aware (naive datetimes are a bug here)."""
    return datetime.now(UTC)


def local_date(instant: datetime) -> date:
    """The local (Asia/Ho_Chi_Minh) calendar day an aware instant falls on."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: ostwatch only handles timezone-aware instants")
    return instant.astimezone(LOCAL_TZ).date()
