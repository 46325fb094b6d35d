"""The intake's batches from a Faust stream, paced from each batch's start.

Faust's ``Stream.take_events(max_, within)`` starts its ``within`` wait when the previous
batch has been processed. So when processing a batch takes longer than ``within`` — the usual
case at a steady 2,000 messages a second — every cycle is "process, then wait ``within``"
in series, although the messages that arrived meanwhile are already there: measured on the
2-core bench machine at 2,000 one-event messages/s, a 0.25 s wait in each ~0.65 s cycle.

``take_batches`` paces batches from the previous batch's *start* instead: a batch is handed
out when ``max_`` messages are buffered, or once ``within`` has passed since the previous one
was handed out and every message already received is buffered. So at most one batch each
``within`` seconds reaches ClickHouse (the same bound on inserts as before), and a batch that
took longer is followed at once by everything that arrived while it was processed. It is
``take_events`` otherwise, line for line: the same buffering processor, the same strict
maximum, the same acknowledgements once the caller is done with a batch (the intake's offsets
are committed from its own ledger anyway: streams/intake/offsets.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, cast

import faust
from faust.types import EventT


async def _drained(stream: faust.Stream, full: asyncio.Event, limit_s: float) -> None:
    """Return once no received message is left in the stream's channel, the buffer is full,
    the stream stops or ``limit_s`` has passed: the stream's passive drainer moves messages
    into the buffer between our turns. An agent's stream reads its channel itself
    (``is_iterator``); another channel's queue is not the one the stream reads, so there is
    nothing to wait for."""
    channel = cast(Any, stream.channel)
    if not channel.is_iterator:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not (full.is_set() or stream.should_stop or channel.empty()):
        if loop.time() >= deadline:
            return
        await asyncio.sleep(0)


async def take_batches(
    stream: faust.Stream, max_: int, within: float
) -> AsyncGenerator[list[EventT], None]:
    """Batches of at most ``max_`` events, at most one each ``within`` seconds unless full
    (see the module's docstring)."""
    events: list[EventT] = []
    buffer_full = asyncio.Event()
    buffer_consumed = asyncio.Event()
    stream_enable_acks = stream.enable_acks
    buffer_consuming: asyncio.Future[None] | None = None
    loop = asyncio.get_running_loop()
    channel_it = stream.channel.__aiter__()

    async def add_to_buffer(value: Any) -> Any:
        nonlocal buffer_consuming
        try:
            if buffer_consuming is not None:  # a batch is being handed out: wait for it
                try:
                    await buffer_consuming
                finally:
                    buffer_consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("take_batches found current_event None")
            events.append(event)
            if len(events) >= max_:
                buffer_full.set()
                buffer_consumed.clear()
                await stream.wait(cast(Any, buffer_consumed))  # strictly max_ per batch
        except asyncio.CancelledError:  # pragma: no cover
            raise
        except Exception as exc:
            stream.log.exception("Error adding to take buffer: %r", exc)
            await stream.crash(exc)
        return value

    stream.enable_acks = False  # acknowledged below, once the caller is done with a batch
    stream.add_processor(add_to_buffer)
    stream._enable_passive(cast(Any, channel_it))
    handed_out = loop.time()
    try:
        while not stream.should_stop:
            remaining = within - (loop.time() - handed_out)
            if remaining > 0:
                await stream.wait_for_stopped(cast(Any, buffer_full), timeout=remaining)
            await _drained(stream, buffer_full, within)
            if not events:
                # Idle: look again in ``within``, so a message waits at most that long.
                await stream.wait_for_stopped(cast(Any, buffer_full), timeout=within)
                continue
            handed_out = loop.time()
            buffer_consuming = loop.create_future()
            try:
                yield list(events)
            finally:
                for event in events:
                    await stream.ack(event)
                events.clear()
                if not buffer_consuming.done():
                    buffer_consuming.set_result(None)
                buffer_full.clear()
                buffer_consumed.set()
    finally:
        stream.enable_acks = stream_enable_acks
        stream._processors.remove(add_to_buffer)
