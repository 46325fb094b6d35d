"""What the property tests over the real intake share: their hypothesis settings (how many
examples, reproducible in CI) and playing a random event stream through the harness.

``OSTWATCH_PROPERTY_EXAMPLES`` sets the number of examples (each test has its own default;
500 for a long run). With ``CI`` set the examples are derandomised (the same every run, no
example database), so a red build is reproducible; locally they are random, and a failure is
replayed from ``.hypothesis/`` until it is fixed.
"""

from __future__ import annotations

import os

import orjson
from hypothesis import HealthCheck, note, settings

from tests.fixtures.strategies import EventStream
from tests.support.intake import IntakeHarness

__all__ = ["IN_CI", "describe", "play", "property_settings"]

IN_CI = bool(os.environ.get("CI"))


def property_settings(default_examples: int, *suppressed: HealthCheck) -> settings:
    """Settings for a property test: no deadline (each example drives ClickHouse), the
    example blob printed on failure, slow data generation allowed, plus ``suppressed``."""
    return settings(
        max_examples=int(os.environ.get("OSTWATCH_PROPERTY_EXAMPLES", str(default_examples))),
        deadline=None,
        derandomize=IN_CI,
        database=None if IN_CI else settings().database,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, *suppressed],
    )


def describe(stream: EventStream) -> str:
    """The stream as it arrived, batch by batch, for reproducing a failure by hand."""
    lines = []
    for index, batch in enumerate(stream.batches):
        again = f", then batch {batch.redeliver} again" if batch.redeliver is not None else ""
        lines.append(f"# batch {index} ({batch.framing}{again})")
        for submission in batch.submissions:
            payload = submission.payload
            text = payload if isinstance(payload, bytes) else orjson.dumps(payload)
            lines.append(text.decode(errors="replace") + ("" if submission.valid else "  # bad"))
    return "\n".join(lines)


def play(harness: IntakeHarness, stream: EventStream) -> None:
    """Empty the harness, then send the stream batch by batch, each redelivery after its
    batch, noting the stream so that a failing example shows what arrived."""
    harness.reset()
    note(describe(stream))
    for batch in stream.batches:
        harness.send([submission.payload for submission in batch.submissions], batch.framing)
        if batch.redeliver is not None:
            harness.redeliver(batch.redeliver)
