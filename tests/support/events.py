"""Contract events for tests, built field by field."""

from __future__ import annotations

import uuid
from typing import Any, Literal

# How a submission reaches the events topic: its typed Avro record, the JSON line inside a
# RawSubmission, or several typed records in one SubmissionBatch (see tests/support/intake).
Framing = Literal["event", "line", "batch"]
FRAMINGS: tuple[Framing, ...] = ("event", "line", "batch")


def contract_event(event_type: str, at: str, facility_id: str, **fields: Any) -> dict[str, Any]:
    """A schema_version 1 event with a fresh event_id, ``at`` as RFC 3339 text."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": at,
        "facility_id": facility_id,
        **fields,
    }
