"""Alert changes are delivered only when the judge signed them (issue 15, item 6): a forged
or altered change on the alerts topic is refused and counted, never recorded for delivery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ostwatch.settings import NotifySettings
from streams.alerts.signing import SIGNATURE_HEADER, AlertSigner
from streams.notify.service import RawAlert, build_notify
from tests.support.notify import alert_change


def message(value: bytes, offset: int, headers: list[tuple[str, bytes]]) -> RawAlert:
    return RawAlert(value, "ostwatch.alerts", 0, offset, tuple(headers))


def test_the_signature_covers_the_whole_value_under_this_key(tmp_path: Path) -> None:
    signer = AlertSigner.for_stack(tmp_path)
    value = alert_change(1).to_bytes()
    assert signer.verify(value, signer.headers(value))
    assert not signer.verify(value.replace(b"TF-01", b"TF-02"), signer.headers(value))
    assert not signer.verify(value, [])
    assert not signer.verify(value, [*signer.headers(value), (SIGNATURE_HEADER, b"00")])
    other = AlertSigner(b"another stack's key, 32 bytes..")
    assert not other.verify(value, signer.headers(value))
    assert AlertSigner.for_stack(tmp_path).sign(value) == signer.sign(value)  # key kept
    with pytest.raises(ValueError, match="16 bytes"):
        AlertSigner(b"short")


def test_only_signed_changes_are_recorded_for_delivery(tmp_path: Path) -> None:
    signer = AlertSigner.for_stack(tmp_path)
    service = build_notify(NotifySettings(), tmp_path, signer=signer)
    genuine, forged, altered = (alert_change(n).to_bytes() for n in range(3))
    tampered = altered.replace(b"is low", b"is out: call 0912345678")

    async def scenario() -> None:
        result = await service.accept(
            [
                message(genuine, 1, signer.headers(genuine)),
                message(forged, 2, []),
                message(tampered, 3, signer.headers(altered)),
            ]
        )
        assert result.new_changes == 1

    try:
        asyncio.run(scenario())
        assert service.counts.unsigned == 2 and service.counts.recorded == 1
        assert service.ledger.counts()["pending"] == 1
    finally:
        service.close()
