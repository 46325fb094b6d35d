"""The narcotics ledger: a facility's stock card per item for one local month.

Opening balance + received − used by doses − used by tests + adjustments by reason
(losses, transfers, count corrections; signed as sent) + count differences = closing
balance. A physical count resets on hand (CONTRACT §3), so each count's difference from the
on hand computed just before it is a line of its own, and the identity holds exactly.

The opening balance is the stock report as of the instant before the month; the month's
events come from the archive in the order on hand follows them (``sql/ledger_movements.sql``)
and are folded in ``Decimal`` (from each float's shortest text), so the lines add up to the
digit. The closing balance is computed, then checked against the stock report as of the
month's last instant: ``reconciles`` says whether the live aggregates and the archive agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ostwatch.timeutil import LOCAL_TZ, utc_now
from schemas.reference import RegistrySnapshot
from sinks.chain import ArchiveChain
from sinks.clickhouse import ClickHouse, as_utc
from sinks.queries import sql
from sinks.reports import Reports, Scope

ADJUSTMENT_REASONS = (
    "spillage",
    "breakage",
    "expired",
    "other",
    "transfer_in",
    "transfer_out",
    "count_correction",
)
LOSS_REASONS = ("spillage", "breakage", "expired", "other")
# The ledger's lines, in the order of a stock card; each a signed effect on stock except
# received and used (positive quantities, added and taken away).
LINES = (
    "received",
    "used_doses",
    "used_tests",
    "loss_spillage",
    "loss_breakage",
    "loss_expired",
    "loss_other",
    "transfer_in",
    "transfer_out",
    "count_corrections",
    "count_differences",
)
SUBTRACTED = frozenset({"used_doses", "used_tests"})
PLACES = Decimal("0.000001")  # the stock report's 6 decimals
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class LedgerError(ValueError):
    """A ledger request that cannot be answered (bad month, unknown facility or item)."""


def decimal(value: float | int) -> Decimal:
    """A float as the decimal it was written as (its shortest repr), not its binary value."""
    return Decimal(repr(float(value)))


def rounded(value: Decimal) -> float:
    """A ledger figure at the stock report's precision, never -0.0."""
    figure = float(value.quantize(PLACES, rounding=ROUND_HALF_EVEN))
    return 0.0 if figure == 0 else figure


@dataclass(frozen=True)
class Month:
    """A local month: its first and last day and the instants bounding it."""

    first_day: date
    last_day: date

    @classmethod
    def parse(cls, text: str, flag: str = "--month") -> Month:
        match = MONTH.match(text.strip())
        if not match:
            raise LedgerError(f"{flag}: expected YYYY-MM, got {text!r}")
        first = date(int(match[1]), int(match[2]), 1)
        following = (first + timedelta(days=32)).replace(day=1)
        return cls(first, following - timedelta(days=1))

    @property
    def label(self) -> str:
        return self.first_day.strftime("%Y-%m")

    @property
    def starts(self) -> datetime:
        return datetime.combine(self.first_day, datetime.min.time(), LOCAL_TZ)

    @property
    def ends(self) -> datetime:
        """The month's last instant at the archive's precision (milliseconds)."""
        following = datetime.combine(self.last_day + timedelta(days=1), datetime.min.time())
        return following.replace(tzinfo=LOCAL_TZ) - timedelta(milliseconds=1)


@dataclass
class ItemCard:
    """One item's month, folded event by event."""

    item: str
    mg_per_unit: Decimal
    opening: Decimal
    balance: Decimal = Decimal(0)
    lines: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(LINES, Decimal(0)))
    doses: int = 0
    dose_mg: Decimal = Decimal(0)
    tests: int = 0
    counts: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.balance = self.opening

    def apply(self, row: dict[str, Any]) -> None:
        """One event of the month, in on-hand order."""
        kind = row["event_type"]
        if kind == "stock.counted":
            counted = decimal(row["quantity_on_hand"])
            difference = counted - self.balance
            self.counts.append(
                {
                    "event_id": row["event_key"],
                    "occurred_at": as_utc(row["occurred_at"]).astimezone(LOCAL_TZ).isoformat(),
                    "counted": rounded(counted),
                    "computed_on_hand": rounded(self.balance),
                    "difference": rounded(difference),
                }
            )
            self.lines["count_differences"] += difference
            self.balance = counted
            return
        if kind == "stock.received":
            line, change = "received", decimal(row["quantity"])
        elif kind == "stock.adjusted":
            reason = row["reason"]
            line = f"loss_{reason}" if reason in LOSS_REASONS else reason
            line = "count_corrections" if reason == "count_correction" else line
            change = decimal(row["quantity_delta"])
        elif kind == "dose.dispensed":
            mg = decimal(row["dose_mg"]) * int(row["take_home_days"])
            units = mg / self.mg_per_unit if self.mg_per_unit else Decimal(0)
            line, change = "used_doses", -units
            self.doses += 1
            self.dose_mg += mg
        elif kind == "test.performed":
            line, change = "used_tests", Decimal(-1)
            self.tests += 1
        else:
            return
        self.lines[line] += -change if line in SUBTRACTED else change
        self.balance += change

    def as_dict(self) -> dict[str, Any]:
        """The card's figures, each rounded to the stock report's 6 decimals."""
        shown = {name: rounded(value) for name, value in self.lines.items()}
        opening, closing = rounded(self.opening), rounded(self.balance)
        total = decimal(opening) + sum(
            (-decimal(v) if name in SUBTRACTED else decimal(v)) for name, v in shown.items()
        )
        return {
            "opening_balance": opening,
            **shown,
            "closing_balance": closing,
            "balanced": total == decimal(closing),
            "doses": self.doses,
            "dose_mg": rounded(self.dose_mg),
            "tests": self.tests,
            "counts": self.counts,
        }


class Ledger:
    """Answers the stock card of a facility for a month, one item or all its items."""

    def __init__(
        self,
        db: ClickHouse,
        registry: Callable[[], RegistrySnapshot | None],
        chain: ArchiveChain | None = None,
    ) -> None:
        self.db = db
        self._registry = registry
        self.chain = chain
        self.reports = Reports(db, registry, "aggregates")

    def month(self, facility_id: str, month_text: str, item: str | None = None) -> dict[str, Any]:
        """The ledger document: facility, period, one card per item, the chain head."""
        registry = self._registry()
        if registry is None:
            raise LedgerError("no registry loaded yet: load one with `ostwatch registry load DIR`")
        facility = registry.facilities.get(facility_id)
        if facility is None:
            raise LedgerError(f"unknown facility {facility_id!r}")
        if item is not None and item not in registry.items:
            raise LedgerError(f"unknown item {item!r}")
        month = Month.parse(month_text)
        items = [item] if item else self._items_of(facility_id, month)
        cards = self._cards(facility_id, month, items, registry) if items else []
        return {
            "facility_id": facility_id,
            "facility_name": facility.name,
            "district": facility.district,
            "province": facility.province,
            "month": month.label,
            "period_from": month.starts.isoformat(),
            "period_to": month.ends.isoformat(timespec="milliseconds"),
            "generated_at": utc_now().isoformat(timespec="seconds"),
            "items": cards,
            "chain_head": self._chain_head(facility_id),
        }

    def _items_of(self, facility_id: str, month: Month) -> list[str]:
        """Every item with a stock event at the facility up to the month's end."""
        rows = self.db.query_rows(
            sql("ledger_items"), {"facility": facility_id, "last_day": month.last_day}
        )
        return [row[0] for row in rows]

    def _on_hand(self, facility_id: str, items: Iterable[str], at: datetime) -> dict[str, float]:
        """The stock report's on hand at ``at``, per item (absent: no stock events yet)."""
        on_hand: dict[str, float] = {}
        for item in items:
            rows = self.reports.stock(at, Scope(frozenset({facility_id}), item=item))
            on_hand.update({row["item"]: float(row["on_hand"]) for row in rows})
        return on_hand

    def _cards(
        self, facility_id: str, month: Month, items: list[str], registry: RegistrySnapshot
    ) -> list[dict[str, Any]]:
        before = month.starts - timedelta(milliseconds=1)
        opening = self._on_hand(facility_id, items, before)
        closing_per_report = self._on_hand(facility_id, items, month.ends)
        cards: dict[str, ItemCard] = {}
        for code in items:
            known = registry.items.get(code)
            per_unit = decimal(known.mg_per_unit) if known and known.mg_per_unit else Decimal(0)
            cards[code] = ItemCard(code, per_unit, decimal(opening.get(code, 0.0)))
        rows = self.db.query_dicts(
            sql("ledger_movements"),
            {
                "facility": facility_id,
                "items": items,
                "first_day": month.first_day,
                "last_day": month.last_day,
            },
        )
        for row in rows:
            cards[row["item"]].apply(row)
        documents = []
        for code, card in cards.items():
            known = registry.items.get(code)
            figures = card.as_dict()
            per_report = closing_per_report.get(code, 0.0)
            documents.append(
                {
                    "item": code,
                    "item_name": known.name if known else code,
                    "kind": known.kind if known else None,
                    "unit": known.unit if known else None,
                    "mg_per_unit": known.mg_per_unit if known else None,
                    **figures,
                    "stock_report_on_hand": per_report,
                    "reconciles": figures["closing_balance"] == per_report,
                }
            )
        return documents

    def _chain_head(self, facility_id: str) -> dict[str, Any] | None:
        """The facility's hash-chain head now: printed on the card, it pins the archive as
        it stood, so a later rewrite of the records shows."""
        if self.chain is None:
            return None
        head = self.chain.heads([facility_id]).get(facility_id)
        if head is None:
            return None
        return {"position": head[0], "hash": head[1].hex()}
