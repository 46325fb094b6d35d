"""Delivers what the ledger holds, in the background, without flooding anyone.

Work is split into *lanes*, one per (notifier, recipient): a lane is delivered by one task
at a time, in order, in batches of the notifier's ``max_batch``, and then rests for the
notifier's ``min_interval_s`` (the e-mail digest window, the webhook rate). At most
``concurrency`` lanes run at once. A failed attempt is retried with exponential back-off
and jitter (``Retry-After`` wins when a server sends one) until ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from schemas.alerts import AlertChange
from streams.notify.ledger import Lane, Ledger, PendingDelivery
from streams.notify.notifiers import DeliveryError, Notifier, redact_url

log = logging.getLogger(__name__)

T = TypeVar("T")
IDLE_POLL_S = 5.0  # re-read the ledger at least this often (an operator may retry by CLI)
DRAIN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 12
    base_s: float = 2.0
    max_s: float = 900.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Equal jitter: uniform in [base·2^(n−1)/2, base·2^(n−1)], capped (attempt n ≥ 1)."""
        ceiling = min(self.max_s, self.base_s * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)


@dataclass
class DispatchStats:
    delivered: int = 0
    batches: int = 0
    failed_attempts: int = 0
    gave_up: int = 0
    wakeups: int = 0  # passes of the main loop: bounded by work, not by time (no busy wait)
    per_notifier: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "batches": self.batches,
            "failed_attempts": self.failed_attempts,
            "gave_up": self.gave_up,
            "wakeups": self.wakeups,
            "per_notifier": dict(self.per_notifier),
        }


class Dispatcher:
    def __init__(
        self,
        ledger: Ledger,
        notifiers: Mapping[str, Notifier],
        policy: RetryPolicy,
        concurrency: int = 8,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.ledger = ledger
        self.notifiers = dict(notifiers)
        self.policy = policy
        self.concurrency = concurrency
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.stats = DispatchStats()
        # All ledger calls go through one thread: SQLite writes never block the event loop.
        self._db = ThreadPoolExecutor(1, thread_name_prefix="notify-ledger")
        self._wake = asyncio.Event()
        self._stopping = False
        self._running: dict[Lane, asyncio.Task[None]] = {}
        self._rest_until: dict[Lane, float] = {}
        self._lane_failures: dict[Lane, int] = {}

    async def db(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, func, *args)

    def wake(self) -> None:
        """New pending work was recorded: look now instead of at the next timer."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled or ``stop()``; in-flight deliveries finish first."""
        log.info("notification dispatcher started", extra={"notifiers": sorted(self.notifiers)})
        try:
            while not self._stopping:
                self._wake.clear()
                self.stats.wakeups += 1
                timeout = await self._start_due_lanes()
                waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._wake.wait())}
                waiters |= set(self._running.values())
                _, pending = await asyncio.wait(
                    waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in pending:
                    if waiter not in self._running.values():
                        waiter.cancel()
        finally:
            self._stopping = True  # lanes finish their current batch and take no more
            await asyncio.shield(self._drain())

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        await self._drain()

    async def _drain(self) -> None:
        tasks = list(self._running.values())
        if tasks:
            log.info("waiting for %d delivery task(s) in flight", len(tasks))
            await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
        for notifier in self.notifiers.values():
            await notifier.close()

    async def _start_due_lanes(self) -> float:
        """Start a task for each due, idle, rested lane; return how long to sleep at most."""
        now = self.clock()
        lanes = await self.db(self.ledger.due_lanes, now)
        wait = IDLE_POLL_S
        for lane in lanes:
            if lane in self._running:
                continue
            if lane.notifier not in self.notifiers:
                continue  # planned under other settings; left pending, shown by the CLI
            rest = self._rest_until.get(lane, 0.0) - now
            if rest > 0:
                wait = min(wait, rest)
                continue
            if len(self._running) >= self.concurrency:
                break
            task = asyncio.create_task(self._deliver_lane(lane), name=f"notify:{lane.notifier}")
            self._running[lane] = task
            task.add_done_callback(functools.partial(self._finished, lane))
        # Lanes due now are running (their tasks wake the loop), resting (counted above) or
        # waiting for a free slot (a finishing task wakes the loop); only the future counts.
        next_due = await self.db(self.ledger.next_due_after, now)
        if next_due is not None:
            wait = min(wait, next_due - now)
        return max(wait, 0.01)

    def _finished(self, lane: Lane, task: asyncio.Task[None]) -> None:
        self._running.pop(lane, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task crashed", exc_info=task.exception())

    async def _deliver_lane(self, lane: Lane) -> None:
        notifier = self.notifiers[lane.notifier]
        try:
            while not self._stopping:
                batch = await self.db(
                    self.ledger.due_in_lane, lane, self.clock(), notifier.max_batch
                )
                if not batch:
                    return
                retry_at = await self._deliver_batch(lane, notifier, batch)
                if retry_at is not None:
                    # The recipient is failing: rest the whole lane, so a dead endpoint gets
                    # one probe per back-off step instead of every pending change in turn.
                    self._rest_until[lane] = retry_at
                    return
                self._rest_until[lane] = self.clock() + notifier.min_interval_s
                if notifier.min_interval_s > 0:
                    return  # rest; the main loop restarts the lane when due
        finally:
            self._wake.set()

    async def _deliver_batch(
        self, lane: Lane, notifier: Notifier, batch: list[PendingDelivery]
    ) -> float | None:
        """Deliver one batch; returns when to try the lane again if it failed and will retry."""
        keys = [item.key for item in batch]
        context = {"notifier": lane.notifier, "recipient": _shown(lane), "changes": len(keys)}
        try:
            changes = [AlertChange.from_bytes(item.payload) for item in batch]
            await notifier.deliver(lane.recipient, changes)
        except DeliveryError as exc:
            return await self._failed(
                lane, batch, str(exc), exc.retriable, exc.retry_after_s, context
            )
        except Exception as exc:
            # A bug in a notifier must not stop every other delivery: logged with its
            # traceback, retried on the normal schedule so nothing is lost meanwhile.
            log.exception("notifier raised an unexpected error", extra=context)
            return await self._failed(lane, batch, f"internal error: {exc!r}", True, None, context)
        await self.db(self.ledger.mark_sent, lane, keys, self.clock())
        self._lane_failures.pop(lane, None)
        self.stats.delivered += len(keys)
        self.stats.batches += 1
        self.stats.per_notifier[lane.notifier] = self.stats.per_notifier.get(
            lane.notifier, 0
        ) + len(keys)
        log.info("delivered", extra={**context, "keys": keys[:5]})
        return None

    async def _failed(
        self,
        lane: Lane,
        batch: list[PendingDelivery],
        error: str,
        retriable: bool,
        retry_after_s: float | None,
        context: dict[str, Any],
    ) -> float | None:
        """Record a failed attempt: retry later (returns when), or give up for good."""
        attempt = max(item.attempts for item in batch) + 1
        keys = [item.key for item in batch]
        if not retriable or attempt >= self.policy.max_attempts:
            await self.db(self.ledger.mark_attempt_failed, lane, keys, error, None)
            self.stats.failed_attempts += 1
            self.stats.gave_up += len(batch)
            log.error(
                "delivery failed for good", extra={**context, "error": error, "attempt": attempt}
            )
            return None
        # The lane backs off too (consecutive failures), so the next change waits as well.
        failures = self._lane_failures[lane] = self._lane_failures.get(lane, 0) + 1
        delay = self.policy.delay(max(attempt, failures), self.rng)
        if retry_after_s is not None:
            delay = min(max(delay, retry_after_s), self.policy.max_s)
        retry_at = self.clock() + delay
        await self.db(self.ledger.mark_attempt_failed, lane, keys, error, retry_at)
        self.stats.failed_attempts += 1
        log.warning(
            "delivery attempt failed; retrying",
            extra={**context, "error": error, "attempt": attempt, "retry_at": retry_at},
        )
        return retry_at

    def close(self) -> None:
        self._db.shutdown(wait=True)


def _shown(lane: Lane) -> str:
    return redact_url(lane.recipient) if lane.notifier == "webhook" else lane.recipient
