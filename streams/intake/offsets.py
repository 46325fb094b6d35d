"""Which offsets of the events topic the intake may commit: only what is decided.

Faust's own offset tracking commits the end of the first run of *acknowledged* offsets of a
partition, and it ignores the committed offset when that offset is unknown or 0 (a fresh
group); a stream also acknowledges messages that no agent ever decided (the background
drainer of ``take_events`` after the agent left it, the final commit on stop). So a batch
that failed could be committed past, and its submissions were never decided (issue 14).
For the events topic Faust's consumer therefore asks this ledger what to commit
(``streams.intake.agent.commit_only_decided``).

Per partition the ledger keeps the offset up to which every message read since the last
assignment is decided (``upto``, contiguous: a hole stops it) and, once a batch was
abandoned (an error, a cancellation), the first offset of that batch (``blocked_at``):
nothing at or after it is committed again by this process. Pure bookkeeping, no I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class PartitionOffsets:
    """What one partition's reader has decided in this process, and where it is blocked."""

    upto: int | None = None  # every message read below this offset is decided
    blocked_at: int | None = None  # first offset of an abandoned batch
    hole: tuple[int, int] | None = None  # (expected, seen): a message skipped unread

    def candidate(self) -> int | None:
        """The offset it would be safe to commit now."""
        if self.upto is None:
            return None
        if self.blocked_at is not None:
            return min(self.upto, self.blocked_at)
        return self.upto


def runs(offsets: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted offsets as ``(first, end)`` runs of consecutive numbers (end exclusive)."""
    found: list[tuple[int, int]] = []
    for offset in sorted(set(offsets)):
        if found and offset == found[-1][1]:
            found[-1] = (found[-1][0], offset + 1)
        else:
            found.append((offset, offset + 1))
    return found


def by_partition(coordinates: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """``(partition, offset)`` pairs grouped by partition."""
    grouped: dict[int, list[int]] = {}
    for partition, offset in coordinates:
        grouped.setdefault(partition, []).append(offset)
    return grouped


class OffsetLedger:
    """The commit position of each partition of the events topic, from decisions only."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.partitions: dict[int, PartitionOffsets] = {}
        self.failure: str | None = None  # set once a batch failed: the intake reads no more
        self.batch_since: float | None = None  # monotonic start of the batch being decided
        self.batch_stage: str | None = None  # the stage it is in (streams/intake/pipeline.py)

    def taking(self) -> None:
        """A batch is being decided from now on (the watchdog tells work from a stall)."""
        self.batch_since = time.monotonic()
        self.batch_stage = None

    def _part(self, partition: int) -> PartitionOffsets:
        return self.partitions.setdefault(partition, PartitionOffsets())

    def decided(self, offsets: Mapping[int, Sequence[int]]) -> None:
        """A batch's messages are all decided (their submission rows are written).

        The first batch after an assignment starts where the consumer was positioned (the
        committed offset); later batches continue it or overlap it (a redelivery). A batch
        that starts past ``upto`` means messages were skipped unread: ``upto`` stays, so
        nothing past the hole is ever committed, and the hole is logged.
        """
        self.batch_since = self.batch_stage = None
        for partition, seen in offsets.items():
            if not seen:
                continue
            part = self._part(partition)
            if part.blocked_at is not None:
                continue  # never move past an abandoned batch in this process
            for first, end in runs(seen):
                if part.upto is None:
                    part.upto = end
                elif first <= part.upto:
                    part.upto = max(part.upto, end)
                else:
                    if part.hole is None:
                        part.hole = (part.upto, first)
                        log.warning(
                            "offsets %d to %d were never read: no commit past %d",
                            part.upto,
                            first - 1,
                            part.upto,
                            extra={"topic": self.topic, "partition": partition, "offset": first},
                        )
                    break

    def abandoned(self, offsets: Mapping[int, Sequence[int]], reason: str) -> None:
        """A batch will not be decided here (it failed, or the worker stops under it)."""
        self.batch_since = self.batch_stage = None
        for partition, seen in offsets.items():
            if not seen:
                continue
            part = self._part(partition)
            first = min(seen)
            part.blocked_at = first if part.blocked_at is None else min(part.blocked_at, first)
        if reason and self.failure is None:
            self.failure = reason

    def revoked(self, partitions: Iterable[int]) -> None:
        """Partitions were taken away: the next reader starts at the group's committed
        offset, which may be another worker's, so the contiguous run starts over.
        A block stays for the life of the process."""
        for partition in partitions:
            part = self.partitions.get(partition)
            if part is not None:
                part.upto = None
                part.hole = None

    def candidate(self, partition: int) -> int | None:
        """The offset it is safe to commit for a partition now (None: nothing)."""
        part = self.partitions.get(partition)
        return part.candidate() if part is not None else None

    def as_dict(self) -> dict[str, Any]:
        """For ``/api/status``: per partition what is decided and where it is blocked."""
        since = self.batch_since
        return {
            "failure": self.failure,
            "batch_in_progress_s": None if since is None else round(time.monotonic() - since, 1),
            "batch_stage": self.batch_stage,
            "partitions": {
                str(partition): {
                    "decided_upto": part.upto,
                    "blocked_at": part.blocked_at,
                    "hole": list(part.hole) if part.hole else None,
                }
                for partition, part in sorted(self.partitions.items())
            },
        }
