"""The duplicate filter's memory: which event_ids may already be archived.

A set of every archived event_id grows without bound (a national year is ~18 million ids,
about 2 GB of Python strings) and takes minutes to load at start. A Bloom filter of fixed
size answers the same question in bounded memory with one-sided error: "not seen" is
certain, "seen" may be a false positive. The intake treats "seen" as a *suspect* and asks
the archive (``Store.archived_submission_of``), so a false positive costs one lookup and
never a wrong decision.

The filter holds a 64-bit key per event_id (``filter_key``: the halves of its UUID xor-ed),
which ClickHouse computes too (``sinks/sql/archive_event_keys.sql``): the warm-up streams numbers
from one scan instead of building millions of strings (a national year, 18 million ids: 8.8 s
of queries and strings became 0.2 s; filling the filter itself takes 6 s, bench.restart).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable

from rbloom import Bloom

log = logging.getLogger(__name__)

_LOW_64 = (1 << 64) - 1


def filter_key(event_id: object) -> int | None:
    """The filter's key of an event_id; None for a text that is no UUID (never archived)."""
    try:
        value = uuid.UUID(str(event_id)).int
    except ValueError:
        return None
    return (value >> 64) ^ (value & _LOW_64)


class SeenEventIds:
    """A fixed-size, probabilistic set of archived event_ids (see the module docstring).

    Sized at start for ``capacity`` ids at ``error_rate`` false positives; when more ids
    than that are added the false-positive rate rises (decisions stay exact, lookups grow)
    and a warning is logged once; the next start sizes it from the archive again.
    """

    def __init__(self, capacity: int, error_rate: float) -> None:
        self.capacity = capacity
        self.error_rate = error_rate
        self._bloom = Bloom(capacity, error_rate)
        self.added = 0
        self._warned = False

    @classmethod
    def for_archive(cls, archived: int, capacity: int, error_rate: float) -> SeenEventIds:
        """Room for the configured capacity, or twice what is archived already if larger."""
        return cls(max(capacity, 2 * archived, 1), error_rate)

    def __contains__(self, event_id: object) -> bool:
        key = filter_key(event_id)
        return key is not None and key in self._bloom

    def update(self, event_ids: Iterable[str]) -> None:
        """Add newly archived ids (each is new, so counting them counts the filter's fill)."""
        self.update_keys([key for key in map(filter_key, event_ids) if key is not None])

    def update_keys(self, keys: Collection[int]) -> None:
        """Add the keys of archived ids as the archive computes them (the warm-up)."""
        self._bloom.update(keys)
        self.added += len(keys)
        if self.added > self.capacity and not self._warned:
            self._warned = True
            log.warning(
                "duplicate filter holds more ids than it was sized for (%d > %d): more "
                "archive lookups until the next start (OSTWATCH_STREAM_DUPLICATE_FILTER_CAPACITY)",
                self.added,
                self.capacity,
            )

    @property
    def memory_bytes(self) -> int:
        return int(self._bloom.size_in_bits // 8)

    def summary(self) -> dict[str, float | int]:
        """For ``/api/status``: how full it is and what it costs."""
        return {
            "ids": self.added,
            "capacity": self.capacity,
            "error_rate": self.error_rate,
            "memory_mb": round(self.memory_bytes / 1e6, 1),
        }
