"""The intake's state as the CLI and the stack's own checks ask for it: what one submission
source has decided so far (``ingest`` waits on it), the live view's totals, and the
committed-offset check's questions (infra/offset_check.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, RootModel

from infra.application.common import Request, jsonable
from sinks.store import Store


class SubmissionCountsRequest(Request):
    source: str


class SubmissionCounts(BaseModel):
    """Lines of one source decided so far (CONTRACT §5 ``ingest``)."""

    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0


class IntakeTotalsRequest(Request):
    pass


class IntakeTotals(RootModel[dict[str, Any]]):
    """Submissions by outcome and accepted events per facility (the live view's header)."""


class UndecidedOffsetsRequest(Request):
    """Per partition ``[start, end)`` offsets of ``topic`` with no decision since ``since``."""

    topic: str
    spans: dict[int, tuple[int, int]]
    since: datetime | None = None


class UndecidedOffsets(RootModel[dict[str, dict[str, Any]]]):
    """Partition → ``{"missing": n, "first": [offsets…]}``."""


class UndecidedSubmissionsRequest(Request):
    keys: list[tuple[str, int]]


class UndecidedSubmissions(RootModel[list[tuple[str, int]]]):
    """The (source, seq) keys asked about that have no submission row at all."""


def submission_counts(store: Store, request: SubmissionCountsRequest) -> SubmissionCounts:
    return SubmissionCounts.model_validate(store.submission_counts(request.source))


def intake_totals(store: Store, request: IntakeTotalsRequest) -> IntakeTotals:
    return IntakeTotals(jsonable(store.intake_totals()))


def undecided_offsets(store: Store, request: UndecidedOffsetsRequest) -> UndecidedOffsets:
    found = store.submissions.undecided_offsets(request.topic, request.spans, request.since)
    return UndecidedOffsets(
        {str(p): {"missing": missing, "first": first} for p, (missing, first) in found.items()}
    )


def undecided_submissions(
    store: Store, request: UndecidedSubmissionsRequest
) -> UndecidedSubmissions:
    return UndecidedSubmissions(store.undecided_submissions(request.keys))
