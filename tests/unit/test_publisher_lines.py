"""`ostwatch ingest` never dies on a line: the publisher's encoding of a line is bounded and
either publishes it as an event or as a raw submission with its reason (issue 15: a
500-level nested line killed the CLI with a traceback and the rest of the file was lost)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.publisher import encode_line
from schemas.codec import RAW_SUBMISSION_SCHEMA_ID, decode, event_from_decoded
from schemas.models import DEFAULT_MAX_LINE_BYTES, EventRejected
from tests.fixtures.contract_cases import VALID_EVENTS
from tests.fixtures.hostile import HOSTILE_LINES

RECEIPT = next(doc for doc in VALID_EVENTS if doc["event_type"] == "stock.received")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.one_of(HOSTILE_LINES, st.binary(max_size=200)))
def test_every_line_is_encoded_as_an_event_or_a_refusal_with_its_reason(line: bytes) -> None:
    key, value, problem = encode_line(line, DEFAULT_MAX_LINE_BYTES)
    decoded = decode(value)
    assert key
    if problem is None:
        assert decoded.schema.schema_id != RAW_SUBMISSION_SCHEMA_ID
        event = event_from_decoded(decoded, arrival=datetime.now(UTC))
        assert key == event.facility_id.encode()
    else:
        assert decoded.schema.schema_id == RAW_SUBMISSION_SCHEMA_ID
        assert decoded.record["client_reason"] == problem
        with pytest.raises(EventRejected):  # the stream refuses what is kept, too
            event_from_decoded(decoded, arrival=datetime.now(UTC))


@pytest.mark.parametrize("depth", [500, 990, 2000])
def test_a_deeply_nested_line_is_refused_not_fatal(depth: int) -> None:
    line = orjson.dumps(RECEIPT)[:-1] + b',"extra":' + b'{"a":' * depth + b"1" + b"}" * depth
    line += b"}"
    _, value, problem = encode_line(line, DEFAULT_MAX_LINE_BYTES)
    assert problem == "nested too deep: more than 32 levels of objects and arrays (CONTRACT §1)"
    decoded = decode(value)
    assert decoded.record["raw"].startswith(b'{"xxxxx_xx":"')  # its structure, not its values
    with pytest.raises(EventRejected) as caught:
        event_from_decoded(decoded)
    assert caught.value.reason == problem
