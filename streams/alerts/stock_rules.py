"""The stock rules of CONTRACT §4 as pure functions: stock_out and stock_low from a stock
position, count_discrepancy from the movements around physical counts (no database, no clock)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ostwatch.settings import AlertSettings
from sinks.alert_store import Movement
from streams.alerts.condition import Condition, local_time


def stock_conditions(
    rows: Iterable[Mapping[str, Any]], settings: AlertSettings, at: datetime
) -> list[Condition]:
    """stock_out / stock_low from stock report rows as of ``at`` (CONTRACT §3 numbers).

    The occurrence is left empty: the engine gives a stock condition the id of the alert
    already open for it, or a new one dated by the day it was first seen.
    """
    found = []
    for row in rows:
        facility, item = row["facility_id"], row["item"]
        on_hand, days = float(row["on_hand"]), row["days_of_supply"]
        unit = row.get("unit") or ""
        facts = {
            "on_hand": on_hand,
            "unit": unit,
            "avg_daily_use": row["avg_daily_use"],
            "days_of_supply": days,
        }
        if on_hand <= 0:
            found.append(
                Condition(
                    kind="stock_out",
                    severity="critical",
                    facility_id=facility,
                    subject=item,
                    raised_at=at,
                    message=f"{item} at {facility} is out of stock (on hand {on_hand:g} {unit})",
                    message_vi=f"{item} tại {facility} đã hết (tồn {on_hand:g} {unit})",
                    details=facts,
                )
            )
        elif days is not None and float(days) < settings.stock_warning_days:
            critical = float(days) < settings.stock_critical_days
            found.append(
                Condition(
                    kind="stock_low",
                    severity="critical" if critical else "warning",
                    facility_id=facility,
                    subject=item,
                    raised_at=at,
                    message=(
                        f"{item} at {facility}: {float(days):.1f} days of supply left "
                        f"({on_hand:g} {unit})"
                    ),
                    message_vi=(
                        f"{item} tại {facility}: còn đủ dùng {float(days):.1f} ngày "
                        f"({on_hand:g} {unit})"
                    ),
                    details=facts,
                )
            )
    return found


def count_conditions(
    facility_id: str,
    item: str,
    movements: Sequence[Movement],
    settings: AlertSettings,
    *,
    base: float | None = None,
    unit: str = "",
) -> list[Condition]:
    """count_discrepancy for every count in ``movements`` whose value differs from the
    computed on hand by more than the tolerance. Movements at a count's instant are already
    counted (CONTRACT §3 tie rule as the stock report applies it). ``base`` is the on hand
    at the start of ``movements`` (None: no earlier count; a first count before any movement
    then opens the ledger). A later count supersedes a discrepancy: the alert resolves then."""
    ordered = sorted(movements, key=lambda m: (m.occurred_at, m.is_count, m.event_id))
    on_hand = base or 0.0
    # Whether anything is known before the next count: an earlier count, or any receipt,
    # dose, test or adjustment (CONTRACT §4: only a count with none opens its ledger).
    known_before = base is not None
    found: list[Condition] = []
    open_index: int | None = None
    for movement in ordered:
        if not movement.is_count:
            on_hand += movement.units
            known_before = True
            continue
        if open_index is not None:
            found[open_index] = _resolved(found[open_index], movement.occurred_at)
            open_index = None
        counted, expected = movement.units, on_hand
        if not known_before:
            # A count before anything moved opens the item's ledger: the stock held before
            # the platform saw it is unknown, so there is nothing to compare with. A first
            # count after receipts or doses is compared with them like any other.
            known_before, on_hand = True, counted
            continue
        difference = counted - expected
        tolerance = max(
            abs(expected) * settings.count_tolerance_percent / 100, settings.count_tolerance_units
        )
        if abs(difference) > tolerance + 1e-9:
            found.append(
                Condition(
                    kind="count_discrepancy",
                    severity="warning",
                    facility_id=facility_id,
                    subject=item,
                    occurrence=movement.event_id,
                    raised_at=movement.occurred_at,
                    message=(
                        f"Count of {item} at {facility_id} on {local_time(movement.occurred_at)}: "
                        f"{counted:g} {unit} counted, {expected:g} expected "
                        f"({difference:+g})"
                    ),
                    message_vi=(
                        f"Kiểm kê {item} tại {facility_id} lúc {local_time(movement.occurred_at)}: "
                        f"đếm được {counted:g} {unit}, sổ sách {expected:g} ({difference:+g})"
                    ),
                    details={
                        "event_id": movement.event_id,
                        "counted": counted,
                        "expected": round(expected, 6),
                        "difference": round(difference, 6),
                        "tolerance": round(tolerance, 6),
                        "unit": unit,
                    },
                )
            )
            open_index = len(found) - 1
        on_hand = counted
    return found


def _resolved(condition: Condition, at: datetime) -> Condition:
    return replace(condition, resolved_at=at)
