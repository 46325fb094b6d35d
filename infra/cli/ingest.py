"""``ingest FILE``: publish every line of a JSON Lines file and wait until each is decided
(CONTRACT §5)."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from infra.application.status import SubmissionCounts, SubmissionCountsRequest
from infra.cli import common
from infra.cli.common import (
    UserError,
    data_dir_option,
    emit,
    friendly_errors,
    output_format_option,
)
from ostwatch.settings import BrokerSettings, StreamSettings, load
from schemas.kafka_headers import ingest_source

if TYPE_CHECKING:
    from infra.application.operations import Operations


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of every line, blank ones included: each is accounted for.

    The newline that ends the last line does not start another one.
    """
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip(b"\r\n")


def counted(
    lines: Iterator[tuple[int, bytes]], bars: Any, task: Any, every: int = 2000
) -> Iterator[tuple[int, bytes]]:
    """Pass lines through, advancing a progress bar every few thousand."""
    pending = 0
    for item in lines:
        yield item
        pending += 1
        if pending == every:
            bars.advance(task, pending)
            pending = 0
    bars.advance(task, pending)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
@click.option(
    "--timeout",
    type=float,
    default=900.0,
    show_default=True,
    help="Seconds to wait for every line to be accepted or rejected.",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bars on stderr (default: on a TTY)."
)
# json is the default: the contract's `ostwatch ingest FILE` prints the counts as JSON.
@output_format_option("table", default="json")
@friendly_errors
def ingest(
    file: Path, data_dir: Path, timeout: float, progress: bool | None, output_format: str
) -> None:
    """Publish every line of a JSON Lines FILE and wait until each is accepted or rejected.

    Prints {"accepted": n, "rejected": n, "duplicates": n}; a blank line is rejected.
    """
    from infra.application.client import RemoteOperations
    from infra.gateway import StackInfo
    from infra.progress import Progress
    from producers.publisher import EventPublisher

    info = StackInfo.read(data_dir)
    broker = load(BrokerSettings)
    if info is None and broker.is_embedded:
        raise UserError(
            f"no running stack for {data_dir}: start it with `ostwatch up --data-dir {data_dir}`"
        )
    bootstrap = info.bootstrap if info else str(broker.bootstrap_servers)
    topic = info.events_topic if info else broker.events_topic
    source = ingest_source(str(uuid.uuid4()), file.name)
    total = sum(1 for _ in read_lines(file))
    show = sys.stderr.isatty() if progress is None else progress
    stream = load(StreamSettings)
    publisher = EventPublisher(
        bootstrap,
        topic,
        source=source,
        security=broker.kafka_python_security(),
        max_line_bytes=stream.max_line_bytes,
        bounds=stream.event_bounds(),
    )
    with Progress(show) as bars:
        sending = bars.add("publishing", total)
        try:
            publisher.publish_lines(counted(read_lines(file), bars, sending))
            publisher.flush(timeout=120)
        finally:
            publisher.close()
        ops = RemoteOperations.of(info) if info else common.open_operations(data_dir)
        deciding = bars.add("accepted/rejected", total)
        deadline = time.monotonic() + timeout
        counts = SubmissionCounts()
        try:
            while True:
                counts = _counts_while_worker_restarts(ops, source, data_dir, counts)
                decided = counts.accepted + counts.rejected + counts.duplicates
                bars.update(deciding, decided)
                if decided >= total:
                    break
                if time.monotonic() > deadline:
                    raise UserError(
                        f"timed out after {timeout:.0f} s: {decided} of {total} lines decided "
                        f"({counts.model_dump()}); is the stream worker running? "
                        f"see {data_dir}/logs"
                    )
                time.sleep(0.2)
        finally:
            ops.close()
    emit(
        counts.model_dump(),
        output_format,
        f"{total} dòng / lines: chấp nhận / accepted {counts.accepted}, "
        f"từ chối / rejected {counts.rejected}, "
        f"trùng / duplicates {counts.duplicates}",
    )


def _counts_while_worker_restarts(
    ops: Operations, source: str, data_dir: Path, last: SubmissionCounts
) -> SubmissionCounts:
    """The decided counts of ``source``; the last known ones while the worker is away.

    ``ostwatch up`` restarts a worker that died (kill -9, out of memory) and it resumes
    from the broker's committed offsets, so an ingest keeps waiting through a restart;
    only a stack that is gone altogether ends it.
    """
    from infra.application.client import RemoteOperations
    from infra.gateway import GatewayError, StackInfo

    try:
        return ops.submission_counts(SubmissionCountsRequest(source=source))
    except GatewayError:
        if not isinstance(ops, RemoteOperations) or StackInfo.read(data_dir) is None:
            raise
        return last  # the supervisor is restarting the worker; its API port stays the same


COMMANDS = (ingest,)
