"""The stock side of a simulated run: opening stock sized from the register, occasional
losses, weekly-ish deliveries (the starved dispensing point gets none) and physical counts,
each booked on the run's stock lines as the contract's stock events (CONTRACT §3)."""

from __future__ import annotations

import math
from datetime import date, timedelta

from producers.simulator.province import BUPRENORPHINE, KIT_MORPHINE, KIT_MULTI, METHADONE
from producers.simulator.world import StockLine, World

PACK = {METHADONE: 500, BUPRENORPHINE: 50, KIT_MORPHINE: 25, KIT_MULTI: 25}
_LOT_PREFIX = {METHADONE: "MET", BUPRENORPHINE: "BUP", KIT_MORPHINE: "KMO", KIT_MULTI: "KM4"}
_SHELF_LIFE_DAYS = {METHADONE: (540, 720), BUPRENORPHINE: (540, 900)}
_KIT_SHELF_LIFE_DAYS = (300, 720)
MONITORING_KIT_SHARE = {KIT_MULTI: 0.7, KIT_MORPHINE: 0.3}


def _num(value: float) -> int | float:
    """A JSON number with at most one decimal, written as an integer when it is one."""
    rounded = round(value, 1)
    return int(rounded) if rounded.is_integer() else rounded


class Supplies(World):
    """Stock flows of a run, on top of its state (``World``)."""

    def open_stock(self) -> None:
        """Stock lines sized from the opening register, each facility with a delivery weekday."""
        b = self.behaviour
        use: dict[tuple[str, str], float] = {}
        for p in self.on_treatment.values():
            key = (p.dosing_at, p.item)
            use[key] = use.get(key, 0.0) + p.units
        for unit in self.province.units:
            tf = unit.treatment_facility_id
            monitoring = b.monitoring_share * len(self.roster[tf]) * 5 / 7
            for item in (METHADONE, BUPRENORPHINE):
                self.add_line(tf, item, use.get((tf, item), 0.0), PACK[item])
            for item, share in MONITORING_KIT_SHARE.items():
                self.add_line(tf, item, monitoring * share, PACK[item])
            for dp in unit.dispensing_point_ids:
                for item in (METHADONE, BUPRENORPHINE):
                    if (dp, item) in use:
                        self.add_line(dp, item, use[(dp, item)], 0.0)
            station_rate = (
                (b.determination_per_station_day + b.screening_per_station_day) * self.scale * 5 / 7
            )
            for chs in unit.commune_station_ids:
                self.add_line(chs, KIT_MULTI, station_rate * 0.6, PACK[KIT_MULTI])
                self.add_line(chs, KIT_MORPHINE, station_rate * 0.4, PACK[KIT_MORPHINE])
        for fid, lines in self.stock.items():
            self.delivery_weekday[fid] = self.rng.randrange(5)
            for stock in lines.values():
                days = self.rng.uniform(*b.opening_days)
                if fid == self.starved and stock.item == METHADONE:
                    days = self.province.plants.starve_opening_days
                stock.on_hand = float(math.ceil(max(stock.daily_use * days, stock.floor)))

    def add_line(self, facility_id: str, item: str, daily_use: float, floor: float) -> None:
        """Start tracking an item at a facility (``floor``: least stock worth keeping)."""
        self.stock.setdefault(facility_id, {})[item] = StockLine(item, daily_use, floor)

    def adjustments(self) -> None:
        """Spillage, breakage and expired kits: small, occasional losses."""
        b = self.behaviour
        rng = self.rng
        for fid, lines in self.stock.items():
            for item, stock in lines.items():
                delta, reason = 0, ""
                r = rng.random()
                if item == METHADONE and r < b.spill_chance:
                    delta, reason = -rng.randint(5, 50), "spillage"
                elif item == METHADONE and r < b.spill_chance + b.breakage_chance:
                    delta, reason = -rng.randint(50, 250), "breakage"
                elif item == BUPRENORPHINE and r < b.breakage_chance:
                    delta, reason = -rng.randint(1, 4), "breakage"
                elif item in (KIT_MORPHINE, KIT_MULTI) and r < b.kit_loss_chance:
                    delta, reason = -rng.randint(1, 5), "expired"
                if delta and stock.on_hand + delta >= 0:
                    stock.on_hand += delta
                    self.emit(
                        fid,
                        self.secs(7, 16),
                        "stock.adjusted",
                        {"item": item, "quantity_delta": delta, "reason": reason},
                    )

    def deliveries(self, today: date) -> None:
        """Weekly-ish top-up to 30–36 days of use; the starved dispensing point gets nothing."""
        rng = self.rng
        b = self.behaviour
        starved = self.starved if self.day_index >= self.province.plants.starve_from_day else None
        for fid, lines in self.stock.items():
            due = fid in self.delayed or today.weekday() == self.delivery_weekday[fid]
            if not due or fid == starved:
                continue
            if fid not in self.delayed and rng.random() < b.delivery_delay_chance:
                self.delayed.add(fid)
                continue
            self.delayed.discard(fid)
            sec = self.secs(9, 15)
            for item, stock in lines.items():
                wanted = max(stock.daily_use * rng.uniform(*b.cover_days), stock.floor)
                packs = math.ceil((wanted - stock.on_hand) / PACK[item])
                if packs <= 0:
                    continue
                quantity = packs * PACK[item]
                stock.on_hand += quantity
                low, high = _SHELF_LIFE_DAYS.get(item, _KIT_SHELF_LIFE_DAYS)
                expiry = today + timedelta(days=rng.randint(low, high))
                lot = f"{_LOT_PREFIX[item]}-{today:%y%m}-{rng.randrange(100, 1000)}"
                self.emit(
                    fid,
                    sec,
                    "stock.received",
                    {
                        "item": item,
                        "quantity": quantity,
                        "lot": lot,
                        "expiry_date": expiry.isoformat(),
                    },
                )

    def counts(self, first_hour: float, last_hour: float, *, discrepancies: bool) -> None:
        """Physical counts; the monthly one sometimes finds a little less (or more) than booked."""
        rng = self.rng
        for fid, lines in self.stock.items():
            sec = self.secs(first_hour, last_hour)
            for item, stock in lines.items():
                counted = stock.on_hand
                if discrepancies and rng.random() < self.behaviour.count_discrepancy_chance:
                    if item == METHADONE:
                        counted -= round(stock.on_hand * rng.uniform(-0.005, 0.03), 1)
                    else:
                        counted -= rng.choice((-1, 1, 1, 2))
                stock.on_hand = max(0.0, round(counted, 1))
                self.emit(
                    fid,
                    sec,
                    "stock.counted",
                    {"item": item, "quantity_on_hand": _num(stock.on_hand)},
                )
