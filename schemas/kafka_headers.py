"""The Kafka headers ostwatch puts on its messages, and what their values mean, in one place.

Every submission on the events topic is named by ``(source, seq)``: the producer that sent it
and its sequence number there (CONTRACT §4). The intake reads the names back, the dead-letter
topic repeats them beside the reason, and the alert judge signs the alerts topic's values.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "INGEST_SOURCE_PREFIX",
    "REASON_HEADER",
    "SEQ_HEADER",
    "SIGNATURE_HEADER",
    "SOURCE_HEADER",
    "ingest_source",
    "submission_headers",
]

SOURCE_HEADER: Final = "ostwatch-source"  # who sent the submission (a producer, a file run)
SEQ_HEADER: Final = "ostwatch-seq"  # its number from that source (a file's line number)
REASON_HEADER: Final = "ostwatch-reason"  # on the dead-letter topic: why it was rejected
SIGNATURE_HEADER: Final = "ostwatch-signature"  # on the alerts topic: the judge's HMAC

# ``ostwatch ingest FILE`` sends as ``ingest:<run id>:<file name>``; its seq is the line number.
INGEST_SOURCE_PREFIX: Final = "ingest:"


def ingest_source(run_id: str, file_name: str) -> str:
    """The source name of one ``ostwatch ingest`` run of one file."""
    return f"{INGEST_SOURCE_PREFIX}{run_id}:{file_name}"


def submission_headers(source: str, seq: int) -> list[tuple[str, bytes]]:
    """The headers naming a submission ``(source, seq)``."""
    return [(SOURCE_HEADER, source.encode()), (SEQ_HEADER, str(seq).encode())]
