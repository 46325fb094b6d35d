"""Ingest limits: line size, submissions per message, and a rate per facility.

Each limit refuses with a reason that names the limit and its setting; nothing over a limit is
dropped: it is rejected like any other bad line (kept, counted, dead-lettered), so the sender
sees it in ``ostwatch ingest``'s counts and ``ostwatch report rejected`` and can resend.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ostwatch.settings import StreamSettings
from schemas.models import DEFAULT_BOUNDS, EventBounds


def _default(name: str) -> object:
    """The default lives once, in the settings class; these limits mirror it."""
    return StreamSettings.model_fields[name].default


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    """The intake's limits; a rate of 0 switches the per-facility rate limit off.

    ``bounds`` are CONTRACT §1's bounds on event time, applied to every event against the
    time the platform received it.
    """

    max_line_bytes: int = _default("max_line_bytes")  # type: ignore[assignment]
    max_batch_items: int = _default("max_batch_items")  # type: ignore[assignment]
    facility_rate_per_s: float = _default("facility_rate_per_s")  # type: ignore[assignment]
    facility_burst: int = _default("facility_burst")  # type: ignore[assignment]
    bounds: EventBounds = DEFAULT_BOUNDS

    @classmethod
    def from_settings(cls, stream: StreamSettings) -> IntakeLimits:
        mirrored = {f.name: getattr(stream, f.name) for f in fields(cls) if f.name != "bounds"}
        return cls(**mirrored, bounds=stream.event_bounds())

    def line_too_long(self, size: int) -> str | None:
        """The reason for a line (or message) of ``size`` bytes, None if it is within limit."""
        if size <= self.max_line_bytes:
            return None
        return (
            f"line too long: more than {self.max_line_bytes} bytes "
            "(limit OSTWATCH_STREAM_MAX_LINE_BYTES; an event is well under 1 KiB)"
        )

    def batch_too_large(self, items: int) -> str | None:
        """The reason for every submission of a message carrying ``items`` of them."""
        if items <= self.max_batch_items:
            return None
        return (
            f"batch too large: {items} submissions in one message "
            f"(limit {self.max_batch_items}, OSTWATCH_STREAM_MAX_BATCH_ITEMS); send smaller ones"
        )

    def rate_exceeded(self, facility_id: str) -> str:
        return (
            f"rate limit: facility {facility_id} sent more than {self.facility_burst} new events "
            f"at once or more than {self.facility_rate_per_s:g} a second for too long "
            "(OSTWATCH_STREAM_FACILITY_BURST / _FACILITY_RATE_PER_S); resend it later"
        )


@dataclass(slots=True)
class FacilityRateLimiter:
    """A token bucket per facility: ``burst`` events at once, refilled at ``rate_per_s``.

    Only new events that would otherwise be accepted take a token: a redelivery or a
    duplicate costs nothing, so a restart can never turn an accepted event into a refused one.
    ``now`` is passed in (seconds, monotonic or epoch) to keep the decision a pure function.
    """

    rate_per_s: float
    burst: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def allow(self, facility_id: str, now: float) -> bool:
        if not self.enabled:
            return True
        tokens, last = self._buckets.get(facility_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate_per_s)
        if tokens < 1.0:
            self._buckets[facility_id] = (tokens, now)
            return False
        self._buckets[facility_id] = (tokens - 1.0, now)
        return True
