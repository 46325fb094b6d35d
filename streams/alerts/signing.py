"""Alert changes carry the judge's signature, so the notifier delivers only what was judged.

Anything that can write to the broker could otherwise put an ``AlertChange`` on the alerts
topic and have it e-mailed to a commune, personal details and all. The judging worker signs
each message it publishes with an HMAC-SHA256 over the message value (header
``ostwatch-signature``); the notifier recomputes it and refuses, logs and counts a message
without a right one. The key is the stack's own: ``<data_dir>/alert-signing.key`` (made on
first start, 0600) or ``OSTWATCH_ALERT_SIGNING_KEY_FILE``, which every worker of a deployment
with several must share. A signed message sent again is recognised by its idempotency key
(alert_id/sequence) and never delivered twice (streams/notify/ledger.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from pathlib import Path

from ostwatch.files import private_secret
from schemas.kafka_headers import SIGNATURE_HEADER

KEY_FILE = "alert-signing.key"


class AlertSigner:
    """Signs and checks alert-topic message values with one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("an alert-signing key needs at least 16 bytes")
        self._key = key

    @classmethod
    def for_stack(cls, data_dir: Path, key_file: Path | None = None) -> AlertSigner:
        """The stack's signer: the configured key file, else the data directory's (made on
        first use)."""
        return cls(private_secret(key_file or data_dir / KEY_FILE))

    def sign(self, value: bytes) -> bytes:
        return hmac.new(self._key, value, hashlib.sha256).hexdigest().encode()

    def headers(self, value: bytes) -> list[tuple[str, bytes]]:
        """The Kafka headers a message with this value is published with."""
        return [(SIGNATURE_HEADER, self.sign(value))]

    def verify(self, value: bytes, headers: Sequence[tuple[str, bytes]]) -> bool:
        """Whether exactly one signature header is present and right for ``value``."""
        given = [v for k, v in headers if k == SIGNATURE_HEADER]
        return len(given) == 1 and hmac.compare_digest(given[0], self.sign(value))
