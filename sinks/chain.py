"""Tamper evidence: a hash chain per facility over the archived events.

Position n of a facility's chain is the n-th event archived for it. Each link holds the
SHA-256 of the archived row's canonical text (every column of the row, as ClickHouse writes
the row as a tuple: strings quoted and escaped, so the text is unambiguous) and
``link_hash = SHA-256(prev_hash ‖ content_hash)``. Links are built from what the archive
actually holds (read back after the insert), never from the batch in memory: a retried
insert may be dropped by deduplication while the retry's ``received_at`` differs.

Each link follows the head read from ClickHouse (never a cache: a rebalance may have moved
the facility), and redelivered events are chained only if not in the chain yet, so a
redelivered batch or a retried write adds nothing twice; a worker killed between the
archive write and the chain write leaves events unchained, which the next redelivery or
the next worker start (``repair``) chains. ``verify`` recomputes every hash in SQL and names
each event whose archived row was changed, deleted or inserted behind the chain's back.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ostwatch.timeutil import utc_now
from sinks.archive_columns import content_hash_sql
from sinks.clickhouse import ClickHouse
from sinks.queries import Sql, identifier, sql

log = logging.getLogger(__name__)

ZERO_HASH = bytes(32)
# An archived event as the chain looks it up: facility_id, event_id, occurred_at.
ChainKey = tuple[str, str, datetime]

# The content hash of an archived row as ClickHouse computes it, over the columns the
# specification marks as chained (frozen as of chain format 1).
CONTENT_HASH_SQL = content_hash_sql()
CHAIN_COLUMNS = (
    "facility_id",
    "position",
    "event_id",
    "content_hash",
    "prev_hash",
    "link_hash",
    "chained_at",
    "repaired",
)
VERIFY_CHUNK_EVENTS = 2_000_000
REPAIR_CHUNK_EVENTS = 500_000
IN_FLIGHT_MAX = 50_000

PROBLEMS = {
    "changed": "archived row differs from the content chained at this position",
    "deleted": "chained at this position but no longer in the archive",
    "inserted": "in the archive but not in the chain: inserted directly, or archived by a "
    "worker that stopped before chaining it (a worker start chains those)",
    "duplicated": "the archive holds this event_id more than once",
    "link_altered": "link hash is not SHA-256(previous link ‖ content): the chain row was edited",
    "link_broken": "previous-link hash differs from the link before it",
    "position_gap": "positions skip here: a chain row is missing",
    "position_fork": "two chain rows at one position",
    "chained_twice": "this event appears at more than one position",
}


def link(prev_hash: bytes, content_hash: bytes) -> bytes:
    """The link hash at a position, from the previous link and this row's content."""
    return hashlib.sha256(prev_hash + content_hash).digest()


@dataclass(frozen=True)
class Finding:
    """One thing that broke, named so an inspector can find it."""

    facility_id: str
    event_id: str | None
    position: int | None
    problem: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Verification:
    """The outcome of ``ArchiveChain.verify``."""

    events: int = 0
    chain_rows: int = 0
    facilities: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    heads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        rate = self.events / self.seconds if self.seconds > 0 else None
        return {
            "intact": self.intact,
            "events": self.events,
            "chain_rows": self.chain_rows,
            "facilities": self.facilities,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(rate) if rate else None,
            "findings": [finding.as_dict() for finding in self.findings],
            "heads": self.heads,
        }


class ArchiveChain:
    """Extends, repairs and verifies the per-facility hash chains in ``archive_chain``."""

    def __init__(self, db: ClickHouse) -> None:
        self.db = db

    # -- writing ---------------------------------------------------------------------------

    def extend(self, fresh: Collection[ChainKey], redelivered: Collection[ChainKey] = ()) -> int:
        """Chain a batch's events once archived; returns how many links were added.

        ``fresh`` were accepted in this batch, so they cannot be chained yet: no lookup in
        the chain. ``redelivered`` were archived earlier and are chained unless a worker
        died between the two writes: only those not in the chain are added.
        """
        chained = 0
        for keys, check in ((redelivered, True), (fresh, False)):
            if keys:
                where, parameters = _located(keys)
                chained += self._chain_unchained(where, parameters, check, repaired=False)
        return chained

    def repair(self) -> int:
        """Chain every archived event left unchained (run at worker start); return how many.

        Only facilities whose archive and chain counts differ are searched.
        """
        archived = dict(self.db.query_rows(sql("chain_archived_per_facility")))
        chained = dict(self.db.query_rows(sql("chain_links_per_facility")))
        stale = {
            facility: int(count)
            for facility, count in sorted(archived.items())
            if int(count) != int(chained.get(facility, 0))
        }
        repaired = 0
        for chunk in _chunks(stale, REPAIR_CHUNK_EVENTS):
            repaired += self._chain_unchained(
                sql("chain_filters.of_facilities"),
                {"facilities": chunk},
                True,
                repaired=True,
            )
        if repaired:
            log.warning("chained %d archived events found unchained", repaired)
        return repaired

    def _chain_unchained(
        self, where: Sql, parameters: dict[str, Any], check: bool, *, repaired: bool
    ) -> int:
        """Chain the archived events matching ``where`` (server-side parameters), skipping
        those already in the chain when ``check`` (a lookup that scans the facilities'
        chains, so only for redeliveries and the start-up repair)."""
        query = sql(
            "chain_unchained",
            content_hash=CONTENT_HASH_SQL,
            where=where,
            unchained=sql("chain_filters.not_chained") if check else Sql(""),
        )
        rows = self.db.query_rows(query, parameters)
        if not rows:
            return 0
        heads = self.heads(sorted({row[0] for row in rows}))
        now = utc_now()
        links: list[list[Any]] = []
        for facility, event_id, content in rows:
            position, prev = heads.get(facility, (-1, ZERO_HASH))
            content_hash = bytes(content)
            this = link(prev, content_hash)
            links.append(
                [facility, position + 1, event_id, content_hash, prev, this, now, int(repaired)]
            )
            heads[facility] = (position + 1, this)
        # No deduplication token: a batch retried after this insert landed comes back as
        # redelivered and is checked against the chain, and a token would also swallow a
        # legitimate re-chaining of links that were lost.
        self.db.insert_rows("archive_chain", links, CHAIN_COLUMNS)
        if repaired:
            by_facility: dict[str, list[str]] = {}
            for row in links:
                by_facility.setdefault(row[0], []).append(row[2])
            for facility, ids in sorted(by_facility.items()):
                log.warning(
                    "chained %d unchained archived events of %s at start",
                    len(ids),
                    facility,
                    extra={"facility_id": facility, "event_ids": ids[:50]},
                )
        return len(links)

    def heads(self, facilities: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        """(position, link_hash) of each facility's last link; absent when it has none.

        Read from ClickHouse every time, never cached: after a rebalance another worker may
        have extended the chain. The ``heads`` projection answers from a few rows.
        """
        rows = self.db.query_rows(sql("chain_heads"), {"facilities": list(facilities)})
        return {facility: (int(position), bytes(head)) for facility, position, head in rows}

    # -- verifying -------------------------------------------------------------------------

    def verify(
        self,
        facilities: Collection[str] | None = None,
        *,
        settle_s: float = 2.0,
        progress: Callable[[int, int], None] | None = None,
    ) -> Verification:
        """Recompute every content and link hash and compare archive and chain, in SQL.

        An event archived but not yet chained may just be in flight (the worker chains a
        batch right after archiving it): such events are looked at again after
        ``settle_s`` seconds and reported only if still unchained.
        """
        started = time.monotonic()
        result = Verification()
        sizes = self._facility_sizes(facilities)
        total = sum(sizes.values())
        done = 0
        for chunk in _chunks(sizes, VERIFY_CHUNK_EVENTS):
            differing = self._differing(chunk)
            if differing:
                result.findings += self._compare(differing)
            result.findings += self._check_links(chunk)
            done += sum(sizes[f] for f in chunk)
            if progress is not None:
                progress(done, total)
        result.findings = self._settle(result.findings, settle_s)
        result.findings.sort(
            key=lambda f: (f.facility_id, f.position if f.position is not None else -1, f.problem)
        )
        result.facilities = len(sizes)
        result.events, result.chain_rows, result.heads = self._summary(list(sizes))
        result.seconds = time.monotonic() - started
        return result

    def _facility_sizes(self, facilities: Collection[str] | None) -> dict[str, int]:
        """Events per facility in archive or chain (whichever is larger), for chunking."""
        rows = self.db.query_rows(
            sql("chain_facility_sizes"),
            {"all": facilities is None, "facilities": sorted(facilities or ()) or [""]},
        )
        return {facility: int(n) for facility, n in rows}

    def _differing(self, chunk: Sequence[str]) -> list[str]:
        """Facilities whose archive and chain may disagree, found with one pass each.

        Per facility, the content hashes ordered by event_id are hashed (SHA-256) on both
        sides: equal digests mean the same events with the same content (an additive
        digest would be cheaper but can be forged by a generalised birthday attack). Only
        the facilities that differ are compared event by event.
        """
        sides = [
            dict(
                self.db.query_rows(
                    sql("chain_digests", table=identifier(table), content=content),
                    {"chunk": list(chunk)},
                )
            )
            for table, content in (
                ("events_archive", CONTENT_HASH_SQL),
                ("archive_chain", identifier("content_hash")),
            )
        ]
        return [facility for facility in chunk if sides[0].get(facility) != sides[1].get(facility)]

    def _compare(self, chunk: Sequence[str]) -> list[Finding]:
        """Archive rows against chain rows, event by event."""
        rows = self.db.query_rows(
            sql("chain_compare", content_hash=CONTENT_HASH_SQL), {"chunk": list(chunk)}
        )
        return [finding for row in rows for finding in compare_findings(*row)]

    def _check_links(self, chunk: Sequence[str]) -> list[Finding]:
        """Each link against its own content and the link before it; positions 0, 1, 2 …"""
        rows = self.db.query_rows(sql("chain_links"), {"chunk": list(chunk)})
        findings = []
        for facility, position, event_id, altered, broken, step in rows:
            problems = []
            if altered:
                problems.append(("link_altered", PROBLEMS["link_altered"]))
            if step == 0:
                problems.append(("position_fork", PROBLEMS["position_fork"]))
            elif step != 1:
                problems.append(
                    (
                        "position_gap",
                        f"positions {int(position) - int(step) + 1}…{int(position) - 1} "
                        "are missing from the chain",
                    )
                )
            elif broken:
                problems.append(("link_broken", PROBLEMS["link_broken"]))
            findings += [
                Finding(facility, event_id, int(position), problem, detail)
                for problem, detail in problems
            ]
        return findings

    def _settle(self, findings: list[Finding], settle_s: float) -> list[Finding]:
        """Drop "inserted" findings that were only in flight (chained a moment later).

        A worker has at most a batch or two in flight; more unchained events than that
        cannot all be in flight, so they are reported without waiting.
        """
        pending = [f for f in findings if f.problem == "inserted"]
        if not pending or settle_s <= 0 or len(pending) > IN_FLIGHT_MAX:
            return findings
        time.sleep(settle_s)
        rows = self.db.query_rows(
            sql("chain_now_chained"),
            {
                "facilities": sorted({f.facility_id for f in pending}),
                "ids": sorted({str(f.event_id) for f in pending}),
            },
        )
        now_chained = {row[0] for row in rows}
        return [f for f in findings if not (f.problem == "inserted" and f.event_id in now_chained)]

    def _summary(self, facilities: list[str]) -> tuple[int, int, list[dict[str, Any]]]:
        """Archived events, chain rows, and each facility's head (to write down and compare
        later: a chain rewritten from scratch would end in another head)."""
        if not facilities:
            return 0, 0, []
        archived = self.db.query_rows(sql("chain_archived_at"), {"f": facilities})[0][0]
        rows = self.db.query_rows(sql("chain_summary"), {"f": facilities})
        heads = [
            {
                "facility_id": facility,
                "length": int(count),
                "head_position": int(position),
                "head_hash": bytes(head).hex(),
                "repaired_links": int(repaired),
            }
            for facility, count, position, head, repaired in rows
        ]
        return int(archived), sum(h["length"] for h in heads), heads


def _located(keys: Collection[ChainKey]) -> tuple[Sql, dict[str, Any]]:
    """A WHERE clause for these events that the archive's primary key (facility_id,
    occurred_at) can use: their facilities and the span of their occurred_at (a second
    wider on each side), then their ids — bound server-side: a 5,000-event batch's ids as
    literals would exceed ClickHouse's query size."""
    instants = [at for _, _, at in keys]
    parameters: dict[str, Any] = {
        "facilities": sorted({facility for facility, _, _ in keys}),
        "ids": sorted({event_id for _, event_id, _ in keys}),
        "from": _instant(min(instants) - timedelta(seconds=1)),
        "to": _instant(max(instants) + timedelta(seconds=1)),
    }
    return sql("chain_filters.located"), parameters


def _instant(at: datetime) -> str:
    """A server-side DateTime64(3, 'UTC') parameter (client-side binding is not used here)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def compare_findings(
    facility: str,
    event_id: str,
    copies: int,
    hashes: Sequence[bytes],
    chained: int,
    positions: Sequence[int],
    chain_hash: bytes,
) -> list[Finding]:
    """What is wrong with one event_id, from its archive rows (``copies``, their distinct
    content ``hashes``) and its chain rows (``chained``, ``positions``, ``chain_hash``)."""
    position = int(min(positions)) if positions else None
    if copies == 0:
        return [Finding(facility, event_id, position, "deleted", PROBLEMS["deleted"])]
    if chained == 0:
        return [Finding(facility, event_id, None, "inserted", PROBLEMS["inserted"])]
    findings = []
    if copies > 1:
        detail = f"the archive holds this event_id {copies} times"
        findings.append(Finding(facility, event_id, position, "duplicated", detail))
    if chained > 1:
        detail = f"at positions {sorted(int(p) for p in positions)}"
        findings.append(Finding(facility, event_id, position, "chained_twice", detail))
    wrong = [bytes(h).hex() for h in hashes if bytes(h) != bytes(chain_hash)]
    if wrong:
        detail = (
            f"{PROBLEMS['changed']}: content hash {wrong[0][:16]}… "
            f"≠ chained {bytes(chain_hash).hex()[:16]}…"
        )
        findings.append(Finding(facility, event_id, position, "changed", detail))
    return findings


def _chunks(sizes: dict[str, int], limit: int) -> list[list[str]]:
    """Facilities grouped so that one verification query covers about ``limit`` events."""
    chunks: list[list[str]] = []
    current: list[str] = []
    count = 0
    for facility, size in sizes.items():
        if current and count + size > limit:
            chunks.append(current)
            current, count = [], 0
        current.append(facility)
        count += size
    if current:
        chunks.append(current)
    return chunks
