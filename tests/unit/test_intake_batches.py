"""The intake's batches are paced from each batch's start (streams/intake/batches.py).

``take_batches`` runs here on a stand-in for the part of ``faust.Stream`` it uses: a
channel queue that a passive drainer moves through the stream's processors one message per
turn, as Faust's stream iteration does. (An offline Faust stream needs a running consumer;
the real worker's end-to-end and fault tests take every batch through ``take_batches``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest

from streams.intake.batches import take_batches

WITHIN = 0.2


@dataclass
class Channel:
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    is_iterator: bool = True

    def empty(self) -> bool:
        return self.queue.empty()

    def __aiter__(self) -> Channel:
        return self  # an agent's channel is its own iterator


@dataclass
class StandInStream:
    """What ``take_batches`` uses of ``faust.Stream``, with its passive drainer."""

    channel: Channel = field(default_factory=Channel)
    enable_acks: bool = True
    should_stop: bool = False
    current_event: Any = None
    acked: list[int] = field(default_factory=list)
    _processors: list[Callable[[Any], Awaitable[Any]]] = field(default_factory=list)
    log: Any = field(default_factory=lambda: SimpleNamespace(exception=print))
    drainer: asyncio.Task[None] | None = None

    def add_processor(self, processor: Callable[[Any], Awaitable[Any]]) -> None:
        self._processors.append(processor)

    def _enable_passive(self, channel: Any) -> None:
        self.drainer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while True:
            event = await self.channel.queue.get()
            self.current_event = event
            value = event.value
            for processor in self._processors:
                value = await processor(value)
            await asyncio.sleep(0)  # one message per turn of the loop

    async def wait(self, event: asyncio.Event) -> None:
        await event.wait()

    async def wait_for_stopped(self, event: asyncio.Event, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.should_stop

    async def ack(self, event: Any) -> bool:
        self.acked.append(event.value)
        return True

    async def crash(self, exc: BaseException) -> None:
        raise exc


def put(stream: StandInStream, *values: int) -> None:
    for value in values:
        stream.channel.queue.put_nowait(SimpleNamespace(value=value))


async def handed_out(
    stream: StandInStream, batches: int, work_s: float, max_: int = 1000
) -> list[tuple[float, float, list[int]]]:
    """(handed out at, processed at, values) of the first ``batches`` batches, each
    processed for ``work_s`` seconds."""
    seen: list[tuple[float, float, list[int]]] = []
    async for batch in take_batches(cast(faust.Stream, stream), max_, WITHIN):
        began = time.monotonic()
        await asyncio.sleep(work_s)
        seen.append((began, time.monotonic(), [cast(int, event.value) for event in batch]))
        if len(seen) == batches:
            break
    assert stream.drainer is not None
    stream.drainer.cancel()
    return seen


def test_after_a_slow_batch_what_arrived_meanwhile_is_handed_out_at_once() -> None:
    """Processing takes 0.5 s, longer than ``within``: the next batch follows straight away
    with every message that came in meanwhile (take_events would wait another 0.2 s)."""

    async def scenario() -> list[tuple[float, float, list[int]]]:
        stream = StandInStream()
        put(stream, 0, 1, 2)
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, put, stream, *range(3, 300))  # during the first batch
        return await handed_out(stream, 2, work_s=0.5)

    first, second = asyncio.run(scenario())
    assert first[2] == [0, 1, 2]
    assert second[2] == list(range(3, 300))
    assert second[0] - first[1] < 0.05  # not another ``within`` after the slow batch


def test_batches_are_handed_out_at_most_once_each_within_seconds() -> None:
    """Quick batches and a steady trickle: one batch per ``within`` from each start, so the
    store gets no more inserts than before."""

    async def scenario() -> tuple[list[tuple[float, float, list[int]]], StandInStream]:
        stream = StandInStream()

        async def trickle() -> None:
            for value in range(200):
                put(stream, value)
                await asyncio.sleep(0.005)

        feeder = asyncio.ensure_future(trickle())
        seen = await handed_out(stream, 4, work_s=0.01)
        feeder.cancel()
        return seen, stream

    seen, stream = asyncio.run(scenario())
    starts = [began for began, _, _ in seen]
    assert all(later - earlier >= WITHIN * 0.95 for earlier, later in itertools.pairwise(starts))
    values = [value for _, _, batch in seen for value in batch]
    assert values == list(range(len(values)))  # in order, none lost or repeated
    assert stream.acked[: len(values)] == values  # acknowledged once the caller was done


def test_a_full_buffer_is_handed_out_without_waiting_and_never_over_max() -> None:
    async def scenario() -> list[tuple[float, float, list[int]]]:
        stream = StandInStream()
        put(stream, *range(25))
        return await handed_out(stream, 3, work_s=0.0, max_=10)

    started = time.monotonic()
    seen = asyncio.run(scenario())
    assert [batch for _, _, batch in seen] == [
        list(range(10)), list(range(10, 20)), list(range(20, 25)),
    ]  # fmt: skip
    assert seen[1][0] - seen[0][0] < WITHIN / 2  # full: not paced
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("arrives_after", [0.05, 0.35])
def test_an_idle_stream_hands_a_message_out_within_the_wait(arrives_after: float) -> None:
    async def scenario() -> tuple[float, list[tuple[float, float, list[int]]]]:
        stream = StandInStream()
        loop = asyncio.get_running_loop()
        sent = loop.time() + arrives_after
        loop.call_at(sent, put, stream, 7)
        seen = await handed_out(stream, 1, work_s=0.0)
        return sent, seen

    sent, seen = asyncio.run(scenario())
    assert seen[0][2] == [7]
    assert seen[0][0] - sent <= WITHIN + 0.05
