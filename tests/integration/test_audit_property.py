"""For random event streams across a month boundary (late, out of order, resent, mixed with
rejected lines, in random batches and framings, some batches redelivered): every ledger card
balances to the digit, its closing balance is `report stock` at the month's last
millisecond, December closes where January opens, and the hash chain covers every archived
event exactly once and verifies.

Examples: ``OSTWATCH_PROPERTY_EXAMPLES`` (default 15), derandomised in CI
(tests/support/properties.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given

from sinks.ledger import LINES, SUBTRACTED, Ledger
from tests.fixtures.strategies import STOCK_FACILITIES, EventStream, event_streams
from tests.support.intake import IntakeHarness
from tests.support.properties import play, property_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def harness(chdb_dir: Path) -> Iterator[IntakeHarness]:
    intake = IntakeHarness(chdb_dir)
    yield intake
    intake.drop()


@property_settings(15, HealthCheck.data_too_large)
@given(stream=event_streams())
def test_ledgers_reconcile_and_the_chain_verifies(
    harness: IntakeHarness, stream: EventStream
) -> None:
    play(harness, stream)

    ledger = Ledger(harness.db, harness.store.registry, harness.store.chain)
    for facility in STOCK_FACILITIES:
        december = {c["item"]: c for c in ledger.month(facility, "2024-12")["items"]}
        january = {c["item"]: c for c in ledger.month(facility, "2025-01")["items"]}
        for month, cards in (("2024-12", december), ("2025-01", january)):
            for item, card in cards.items():
                where = f"{facility} {item} {month}"
                total = Decimal(repr(card["opening_balance"]))
                for name in LINES:
                    value = Decimal(repr(card[name]))
                    total += -value if name in SUBTRACTED else value
                assert total == Decimal(repr(card["closing_balance"])), where
                assert card["balanced"], where
                assert card["reconciles"], (where, card)
        for item, card in january.items():
            opening = december[item]["closing_balance"] if item in december else 0.0
            assert card["opening_balance"] == opening, (facility, item)

    result = harness.store.chain.verify(settle_s=0)
    assert result.intact, result.findings
    assert result.chain_rows == result.events == len(harness.accepted_ids())
