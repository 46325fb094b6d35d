"""Where the intake group stands on the events topic, and whether its commits are backed.

A committed offset C of a partition says "every message below C is decided": a worker that
starts reads from C on, so a message below C without a decision is never decided (issue
14). ``check_offsets`` verifies exactly that from the outside, for ``ostwatch status``:
the group's committed offsets from the broker, the decisions from ClickHouse
(``submissions`` rows carry the Kafka coordinates of their message).

A submission row is keyed by (source, seq) and keeps the coordinates of its latest
decision, so a message sent twice (a producer retry) looks undecided at its first offset;
such offsets are read back from Kafka and confirmed by (source, seq) before anything is
reported. End offsets come from the Fetch high watermark where the broker needs it
(``streams.kafka_compat``), so the lag the watchdog sees is true on the embedded broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from infra.application.operations import Operations
from infra.application.status import UndecidedOffsetsRequest, UndecidedSubmissionsRequest
from infra.broker import admin_config
from streams.intake.classify import RawMessage, expand, message_meta
from streams.kafka_compat import end_offsets

log = logging.getLogger(__name__)

CONFIRM_LIMIT = 50  # offsets read back from Kafka per partition, at most


@dataclass(frozen=True)
class GroupPosition:
    """Committed (None: never), first and end offset of each partition of the topic."""

    committed: dict[int, int | None]
    start: dict[int, int]
    end: dict[int, int]

    def lag(self) -> dict[int, int]:
        """Messages not yet committed by the group, per partition."""
        return {
            partition: max(
                0, end - max(self.start.get(partition, 0), self.committed[partition] or 0)
            )
            for partition, end in self.end.items()
        }

    def total_lag(self) -> int:
        return sum(self.lag().values())


class GroupProbe:
    """Reads a consumer group's position on one topic without joining the group.

    Keeps its clients between calls (the watchdog asks every few seconds) and builds new
    ones after an error (the embedded broker may have been restarted on the same port).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        partitions: int,
        *,
        quirks: bool,
        security: Mapping[str, object] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.quirks = quirks
        self.security = dict(security or {})
        self.timeout = timeout
        self._admin: KafkaAdminClient | None = None
        self._reader: KafkaConsumer | None = None

    def _clients(self) -> tuple[KafkaAdminClient, KafkaConsumer]:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                **admin_config(self.bootstrap, self.security, self.timeout)
            )
        if self._reader is None:
            self._reader = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=max(int(self.timeout * 1000), 1000),
                fetch_max_wait_ms=100,
                **self.security,
            )
        return self._admin, self._reader

    def position(self) -> GroupPosition:
        try:
            admin, reader = self._clients()
            offsets = admin.list_group_offsets({self.group: self.tps})[self.group]
            start = reader.beginning_offsets(self.tps, timeout_ms=int(self.timeout * 1000))
            reader.unsubscribe()  # a fresh state per partition: no high watermark from before
            end = end_offsets(
                self.bootstrap, self.tps, self.quirks, timeout=self.timeout, probe=reader
            )
        except Exception:
            self.close()
            raise
        committed: dict[int, int | None] = {}
        for tp in self.tps:
            found = offsets.get(tp)
            committed[tp.partition] = (
                found.offset if found is not None and found.offset >= 0 else None
            )
        return GroupPosition(
            committed=committed,
            start={tp.partition: int(offset) for tp, offset in start.items()},
            end={tp.partition: int(offset) for tp, offset in end.items()},
        )

    def messages(self, partition: int, offsets: Iterable[int]) -> list[RawMessage]:
        """The records at ``offsets`` of a partition (those still in the topic)."""
        wanted = sorted(set(offsets))
        if not wanted:
            return []
        _, reader = self._clients()
        tp = TopicPartition(self.topic, partition)
        reader.assign([tp])
        found: dict[int, RawMessage] = {}
        deadline = time.monotonic() + self.timeout
        for offset in wanted:
            if offset in found:
                continue
            reader.seek(tp, offset)
            while offset not in found and time.monotonic() < deadline:
                for record in reader.poll(timeout_ms=200, max_records=500).get(tp, []):
                    found[record.offset] = RawMessage(
                        value=record.value,
                        headers=[(str(k), bytes(v or b"")) for k, v in record.headers or []],
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                    )
        return [found[offset] for offset in wanted if offset in found]

    def close(self) -> None:
        admin, reader, self._admin, self._reader = self._admin, self._reader, None, None
        for client in (admin, reader):
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing a client of a broker that is gone
                    log.debug("closing a Kafka client failed", exc_info=True)


def submission_keys(messages: Iterable[RawMessage]) -> list[tuple[str, int]]:
    """The (source, seq) of every submission the messages carry, as the intake names them."""
    now = datetime.now(UTC)
    keys = []
    for item in expand(messages):
        meta = message_meta(item, now)
        keys.append((meta.source, meta.seq))
    return keys


def check_offsets(
    probe: GroupProbe, operations: Operations, since: datetime | None = None
) -> dict[str, Any]:
    """Every partition's committed offset against the decisions below it.

    ``ok`` is false when some message below a committed offset has no decision: the group
    would never read it again. ``since`` (the embedded broker's start) ignores decisions
    about the same offsets in an earlier life of a broker that forgets its topics.
    """
    position = probe.position()
    spans = {
        partition: (position.start[partition], committed)
        for partition, committed in position.committed.items()
        if committed is not None and committed > position.start[partition]
    }
    found: dict[str, Any] = {}
    if spans:
        request = UndecidedOffsetsRequest(topic=probe.topic, spans=spans, since=since)
        found = operations.undecided_offsets(request).root
    partitions: dict[str, Any] = {}
    for partition, committed in sorted(position.committed.items()):
        first, unconfirmed = _first_undecided(
            probe, operations, partition, found.get(str(partition))
        )
        partitions[str(partition)] = {
            "committed": committed,
            "end": position.end[partition],
            "lag": position.lag()[partition],
            "first_undecided_below_committed": first,
            "unconfirmed": unconfirmed,
            "ok": first is None,
        }
    bad = [int(p) for p, row in partitions.items() if not row["ok"]]
    return {
        "ok": not bad,
        "group": probe.group,
        "topic": probe.topic,
        "partitions": partitions,
        "problem": (
            None
            if not bad
            else "committed past undecided messages on partition(s) "
            + ", ".join(
                f"{p} (committed {partitions[str(p)]['committed']}, "
                f"offset {partitions[str(p)]['first_undecided_below_committed']} undecided)"
                for p in bad
            )
            + ": those submissions will not be read again"
        ),
    }


def _first_undecided(
    probe: GroupProbe, operations: Operations, partition: int, found: Mapping[str, Any] | None
) -> tuple[int | None, int]:
    """The first offset without a decision, after confirming by (source, seq); and how many
    offsets without a row were left unconfirmed (beyond ``CONFIRM_LIMIT``)."""
    if not found or not found["missing"]:
        return None, 0
    candidates = [int(offset) for offset in found["first"][:CONFIRM_LIMIT]]
    messages = {m.offset: m for m in probe.messages(partition, candidates)}
    keys_at = {offset: submission_keys([messages[offset]]) for offset in messages}
    every_key = [key for keys in keys_at.values() for key in keys]
    asked = UndecidedSubmissionsRequest(keys=every_key)
    undecided = set(operations.undecided_submissions(asked).root) if every_key else set()
    for offset in candidates:
        if offset not in keys_at:
            return offset, 0  # gone from the topic, and never decided
        if any(key in undecided for key in keys_at[offset]):
            return offset, 0
    return None, max(0, int(found["missing"]) - len(candidates))
