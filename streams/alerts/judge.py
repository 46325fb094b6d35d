"""Which worker judges alerts, and what its sweep of the archive has judged.

The alert engine must be the one writer of judged alerts: it keeps the stored alerts in
memory, gives each change the next ``sequence``, and a patient's rules read doses that
several facilities, hence several partitions and workers, archived. So in a consumer group
of N workers exactly one is **the judge**: the worker assigned partition ``JUDGE_PARTITION``
of the events topic (Kafka gives each partition to one member at a time, and moves it when
that member leaves). The judge

- judges its own batches inline, before their submission rows, as a lone worker always has;
- once after it becomes the judge, catches up on everything archived since the last judged
  event (``AlertEngine.catch_up``), with a fresh cache of the stored alerts;
- when other workers hold partitions too, sweeps the archive about once a second for the
  events they archived (``AlertEngine.sweep``): each is judged once, a little later;
- runs the clock (deadlines, supervision, escalation, days of supply).

The other workers archive, aggregate and index for alerts, but judge nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

JUDGE_PARTITION = 0


@dataclass
class Sweep:
    """The events judged lately, so that a sweep, which looks ``margin`` back past the newest
    judged event (batches other workers were still writing, clocks that differ), judges each
    event once."""

    upto: datetime
    margin: timedelta
    judged: dict[str, datetime] = field(default_factory=dict)

    @property
    def since(self) -> datetime:
        """Read the archive from here: received after it may not have been judged yet."""
        return self.upto - self.margin

    def note(self, events: Iterable[tuple[str, datetime]]) -> None:
        """Record judged (event_id, received_at) pairs, and forget those past the margin."""
        for event_id, received_at in events:
            self.judged[event_id] = received_at
            self.upto = max(self.upto, received_at)
        since = self.since
        self.judged = {k: at for k, at in self.judged.items() if at > since}


@dataclass
class AlertRole:
    """This worker's part in judging alerts. A worker on its own (tests, the embedded stack
    before Faust assigns anything) is the judge and alone; the stream agent sets the role from
    each partition assignment."""

    judge: bool = True
    alone: bool = True
    caught_up: bool = False
    sweep: Sweep | None = None

    def assigned(self, partitions: Iterable[int], partition_count: int) -> None:
        """The events topic's partitions this worker now holds (all of them, after a
        rebalance). A judge, new or kept, catches up again: another may have judged since."""
        mine = set(partitions)
        self.judge = JUDGE_PARTITION in mine
        self.alone = mine >= set(range(partition_count))
        self.caught_up = False
        self.sweep = None

    def revoked(self) -> None:
        """Partitions are being moved: judge nothing until the next assignment."""
        self.judge = False

    def as_dict(self) -> dict[str, bool]:
        return {"judge": self.judge, "alone": self.alone, "caught_up": self.caught_up}
