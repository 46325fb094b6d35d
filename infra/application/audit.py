"""What an inspector asks for: the narcotics ledger of a facility's month, and the archive's
hash chains recomputed."""

from __future__ import annotations

from infra.application.common import Document, Ids, OperationError, Request
from sinks.store import Store


class LedgerRequest(Request):
    """The stock card per item of ``facility`` for ``month`` (YYYY-MM, local)."""

    facility: str
    month: str
    item: str | None = None


class ChainVerifyRequest(Request):
    """The chains of ``facilities`` (default: every facility); events archived but not yet
    chained are looked at again after ``settle_s`` seconds."""

    facilities: Ids = ()
    settle_s: float = 2.0


def ledger(store: Store, request: LedgerRequest) -> Document:
    answer = store.ledger()
    return Document.of(answer.month(request.facility, request.month, request.item))


def verify_chains(store: Store, request: ChainVerifyRequest) -> Document:
    facilities = list(request.facilities) or None
    registry = store.registry()
    if facilities and registry is not None:
        unknown = [f for f in facilities if f not in registry.facilities]
        if unknown:
            raise OperationError(f"unknown facility {unknown[0]!r}")
    return Document.of(store.chain.verify(facilities, settle_s=request.settle_s).as_dict())
