"""The comparison benchmark's own pipelines (bench/pipelines.py) on the real broker and engine:
each must archive a small file exactly — every event once — or the comparison means nothing."""

from __future__ import annotations

import time

import pytest

from bench.compare import ChildStack, fresh, wait_decided, warm_up
from bench.ingest_throughput import make_events
from producers.publisher import EventPublisher

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["plain", "quix"])
def test_pipeline_archives_a_small_file_exactly(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTWATCH_ALERT_ENABLED", "false")  # as bench.compare runs them
    lines = make_events(240, seed=5)
    with fresh(kind) as pipeline:
        assert isinstance(pipeline, ChildStack)
        before = warm_up(pipeline)
        pipeline.reset_freshness()
        with EventPublisher(pipeline.bootstrap, pipeline.topic, source="test") as publisher:
            publisher.publish_lines(enumerate(lines, start=1), per_message=40)  # 3 facilities: 6
            publisher.flush()
        deadline = time.monotonic() + 45
        decided, _ = wait_decided(pipeline, before + len(lines), deadline, lambda n: None)
        assert decided == before + len(lines)
        freshness = pipeline.freshness()
        assert pipeline.archived("test") == len(lines)
        stored = pipeline.final["stored"]
    # Quix writes through the intake (submission rows too); the plain consumer archives only.
    total = before + len(lines)
    assert stored == {"archived": total, "submissions": total if kind == "quix" else 0}
    # One latency per Kafka message since the warm-up, as the worker's histogram counts.
    assert freshness["samples"] == 6
