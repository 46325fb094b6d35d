"""The typed application layer (infra/application/): one set of operations that the CLI
calls in-process or over the worker's API with the same requests and answers, validation in
the request models only, and acknowledgements written by the worker's live engine alone."""

from __future__ import annotations

import asyncio
import threading
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from infra.application.alerts import AckOutcome, AckRequest
from infra.application.client import RemoteOperations
from infra.application.common import OperationError, build, checked
from infra.application.operations import SPECS, LocalOperations, Operations, run_named
from infra.application.reports import ReportRequest
from infra.application.status import SubmissionCounts, SubmissionCountsRequest
from infra.http.api import worker_operations
from ostwatch.settings import AlertSettings
from schemas.alerts import AckSelection, Alert, AlertChange
from streams.alerts.engine import Acknowledged
from streams.app import WorkerContext


def test_every_operation_is_offered_alike_here_and_over_the_api() -> None:
    assert len(SPECS) >= 20 and "alerts_ack" in SPECS and "report_monthly" in SPECS
    for name, spec in SPECS.items():
        for implementation in (LocalOperations, RemoteOperations):
            method = getattr(implementation, name)
            hints = typing.get_type_hints(method)
            assert (hints["request"], hints["return"]) == (spec.request, spec.response), name


class _Transport:
    """Stands for the worker's API: answers an operation from what ``LocalOperations``
    would return, and keeps what was posted."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.posted: list[tuple[str, dict[str, Any], float]] = []

    def post(self, operation: str, body: dict[str, Any], timeout: float = 60.0) -> Any:
        self.posted.append((operation, body, timeout))
        return self.answer

    def close(self) -> None:
        return None


def test_the_client_sends_the_validated_request_and_returns_the_model() -> None:
    transport = _Transport({"accepted": 3, "rejected": 1, "duplicates": 0})
    remote = RemoteOperations(transport)  # type: ignore[arg-type]
    counts = remote.submission_counts(SubmissionCountsRequest(source="ingest:x"))
    assert counts == SubmissionCounts(accepted=3, rejected=1, duplicates=0)
    assert transport.posted == [("submission_counts", {"source": "ingest:x"}, 60.0)]
    asked = build(ReportRequest, as_of="2024-03-12T23:59:59+07:00", facilities=["TF-01"])
    transport.answer = [{"facility_id": "TF-01", "item": "MET-10", "on_hand": 10.0}]
    assert remote.report_stock(asked).root == transport.answer
    _, body, _ = transport.posted[-1]
    # What crosses the wire validates again into the very same request on the worker.
    assert body == {"facilities": ["TF-01"], "as_of": "2024-03-12T23:59:59+07:00"}
    assert checked(ReportRequest, body) == asked


def test_a_long_operation_waits_longer() -> None:
    transport = _Transport({"equal": True})
    RemoteOperations(transport).replay_verify(checked(SPECS["replay_verify"].request, {}))  # type: ignore[arg-type]
    assert transport.posted[0][2] > 60


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        (
            ReportRequest,
            {"date_from": "2024-13-01"},
            "--from: not a date (YYYY-MM-DD): '2024-13-01'",
        ),
        (ReportRequest, {"as_of": "yesterday"}, "--as-of: not an RFC 3339 time: 'yesterday'"),
        (AckRequest, {"alert_ids": ["a"], "before": "2024-03-01"}, "give alert ids or filters"),
        (AckRequest, {"kinds": ["no_such_kind"]}, "kinds.0"),
        (AckRequest, {"before": "soon"}, "--before: a date YYYY-MM-DD or an RFC 3339 time"),
    ],
)
def test_a_refusal_is_the_validators_one_line(
    model: type[Any], fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(OperationError) as caught:
        build(model, **fields)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert "validation error" not in str(caught.value)


def test_the_api_refuses_an_unknown_operation_or_field() -> None:
    with pytest.raises(OperationError, match="unknown operation 'drop_tables'"):
        run_named(typing.cast(Operations, object()), "drop_tables", {})
    with pytest.raises(OperationError, match="Extra inputs"):
        checked(SubmissionCountsRequest, {"source": "s", "sql": "DROP TABLE events_archive"})


def _alert(alert_id: str) -> Alert:
    return Alert(
        alert_id=alert_id,
        kind="stock_low",
        severity="warning",
        facility_id="TF-01",
        subject="MET-10",
        raised_at=datetime(2024, 3, 1, tzinfo=UTC),
        status="open",
        message="stock low",
        message_vi="tồn kho thấp",
    )


class _LiveEngine:
    settings = None

    def acknowledge_many(self, selection: AckSelection, note: str = "") -> Acknowledged:
        raise AssertionError(
            "the worker's API acknowledges through the service, between judgements"
        )


class _Service:
    """The worker's intake service as the API sees it: a live engine, and the one entry point
    that acknowledges through it (``IntakeService.acknowledge_alerts``)."""

    def __init__(self) -> None:
        self.alerts = _LiveEngine()
        self.store = None
        self.calls: list[tuple[AckSelection, str, bool]] = []
        self.loop_thread: threading.Thread | None = None

    async def acknowledge_alerts(self, selection: AckSelection, note: str) -> Acknowledged:
        self.calls.append((selection, note, threading.current_thread() is self.loop_thread))
        change = AlertChange(change="updated", sequence=2, alert=_alert(selection.alert_ids[0]))
        return Acknowledged([change])


def _loop_thread(loop: asyncio.AbstractEventLoop) -> threading.Thread:
    found: list[threading.Thread] = []
    asyncio.run_coroutine_threadsafe(_current(found), loop).result(5)
    return found[0]


async def _current(found: list[threading.Thread]) -> None:
    found.append(threading.current_thread())


def _context(service: _Service) -> WorkerContext:
    """The worker's context around a stand-in service (only the service is asked for)."""
    return cast(WorkerContext, SimpleNamespace(service=service, alerts=AlertSettings()))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(5)
    running.close()


def test_the_worker_acknowledges_through_its_live_engine_only(
    loop: asyncio.AbstractEventLoop,
) -> None:
    service = _Service()
    service.loop_thread = _loop_thread(loop)
    operations = worker_operations(_context(service), loop)
    asked = build(AckRequest, alert_ids=["a-1"], note="đã gửi công văn")
    outcome = operations.alerts_ack(asked)  # from an executor thread, as the API runs it
    assert isinstance(outcome, AckOutcome) and outcome.acknowledged == 1
    # On the event loop (where the judge runs), not in the calling thread.
    assert [(s.alert_ids, n, on_loop) for s, n, on_loop in service.calls] == [
        (("a-1",), "đã gửi công văn", True)
    ]
    assert operations._engine is None  # no second engine was built to write


def test_an_unknown_alert_id_is_named(loop: asyncio.AbstractEventLoop) -> None:
    class _Missing(_Service):
        async def acknowledge_alerts(self, selection: AckSelection, note: str) -> Acknowledged:
            raise KeyError(selection.alert_ids[0])

    operations = worker_operations(_context(_Missing()), loop)
    with pytest.raises(OperationError, match="no alert with id 'nope'"):
        operations.alerts_ack(build(AckRequest, alert_ids=["nope"]))
