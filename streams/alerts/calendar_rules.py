"""The calendar rules of CONTRACT §4 as pure functions: report_due_soon and report_overdue
from the deadline calendar and the reports submitted, supervision_behind from the visits of the
year (no database; the clock is an argument)."""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta

from ostwatch.settings import AlertSettings
from ostwatch.timeutil import LOCAL_TZ
from schemas.calendar import due_instant, period_bounds, periods_between
from schemas.reference import RegistrySnapshot
from streams.alerts.condition import Condition, local_day


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), LOCAL_TZ).astimezone(UTC)


def _ended_before_live(period: str, live_from: date | None) -> bool:
    """Whether a period ended before its reporter's ``live_from`` (CONTRACT §2)."""
    return live_from is not None and period_bounds(period)[1] < live_from


def deadline_conditions(
    registry: RegistrySnapshot,
    submitted: Mapping[tuple[str, str, str], datetime],
    clock: datetime,
    since: date,
    settings: AlertSettings,
) -> list[Condition]:
    """report_due_soon / report_overdue for every reporter and period since ``since``.

    ``submitted`` maps (facility, report_type, period) to its earliest submission; only
    submissions at or before ``clock`` count. A period that ended before the reporter's
    ``live_from`` is history: nothing was due through the platform.
    """
    found = []
    soon = timedelta(days=settings.report_due_soon_days)
    today = clock.astimezone(LOCAL_TZ).date()
    for deadline in registry.deadlines.values():
        reporters = sorted(
            f.facility_id for f in registry.facilities.values() if f.type == deadline.reporter_type
        )
        for period in periods_between(deadline.frequency, since, today):
            due = due_instant(period, deadline.due_day)
            if clock < due - soon:
                continue
            subject = f"{deadline.report_type}/{period}"
            due_day = local_day(due.astimezone(LOCAL_TZ).date())
            recipient = deadline.recipient_id
            to_en = f" to {recipient}" if recipient else ""
            to_vi = f" gửi {recipient}" if recipient else ""
            for facility in reporters:
                at = submitted.get((facility, deadline.report_type, period))
                if at is not None and at <= clock:
                    continue
                if _ended_before_live(period, registry.facilities[facility].live_from):
                    continue  # history: the unit was not reporting through the platform yet
                overdue = clock >= due
                found.append(
                    Condition(
                        kind="report_overdue" if overdue else "report_due_soon",
                        severity="critical" if overdue else "warning",
                        facility_id=facility,
                        subject=subject,
                        raised_at=due if overdue else due - soon,
                        message=(
                            f"{deadline.report_type} for {period} from {facility}{to_en} "
                            + ("is overdue" if overdue else "is not yet submitted")
                            + f" (due before {due_day})"
                        ),
                        message_vi=(
                            f"Báo cáo {deadline.report_type} kỳ {period} của {facility}{to_vi} "
                            + ("đã quá hạn" if overdue else "chưa nộp")
                            + f" (hạn trước ngày {due_day})"
                        ),
                        details={
                            "report_type": deadline.report_type,
                            "period": period,
                            "due_at": due.isoformat(),
                            "frequency": deadline.frequency,
                            "recipient_id": recipient,
                        },
                    )
                )
    return found


def supervision_conditions(
    registry: RegistrySnapshot,
    visits: Mapping[str, Sequence[datetime]],
    clock: datetime,
    settings: AlertSettings,
) -> list[Condition]:
    """supervision_behind: fewer visits this year so far than ``visits_per_year`` spread
    evenly over the year expects by ``clock`` (visits at or before ``clock`` count)."""
    per_year = settings.supervision_visits_per_year
    today = clock.astimezone(LOCAL_TZ).date()
    year_start = date(today.year, 1, 1)
    days_in_year = 366 if calendar.isleap(today.year) else 365
    # The k-th visit is expected by the start of day ceil(k × days / per_year) of the year.
    expected_by = [
        _local_midnight(year_start + timedelta(days=math.ceil(k * days_in_year / per_year) - 1))
        for k in range(1, per_year + 1)
    ]
    due = [instant for instant in expected_by if instant <= clock]
    if not due:
        return []
    found = []
    for facility in sorted(registry.facilities.values(), key=lambda f: f.facility_id):
        if facility.type not in settings.supervised_types:
            continue
        done = sorted(
            v
            for v in visits.get(facility.facility_id, ())
            if v <= clock and v.astimezone(LOCAL_TZ).date() >= year_start
        )
        if len(done) >= len(due):
            continue
        # Behind since the first expectation the facility's visits did not meet in time.
        behind_since = next(
            instant
            for k, instant in enumerate(due, start=1)
            if sum(1 for v in done if v < instant) < k
        )
        found.append(
            Condition(
                kind="supervision_behind",
                severity="warning",
                facility_id=facility.facility_id,
                subject=f"supervision/{today.year}",
                occurrence=behind_since.isoformat(),
                raised_at=behind_since,
                message=(
                    f"{facility.facility_id} had {len(done)} supervision visit(s) in {today.year}; "
                    f"{len(due)} expected by now ({per_year} a year)"
                ),
                message_vi=(
                    f"{facility.facility_id} mới được giám sát {len(done)} lần năm {today.year}; "
                    f"cần {len(due)} lần đến nay ({per_year} lần/năm)"
                ),
                details={"visits": len(done), "expected": len(due), "year": today.year},
            )
        )
    return found
