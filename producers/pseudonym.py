"""Pseudonymous patient references, computed at the source with the province's secret key.

A facility knows its patients by a national ID number (CCCD, 12 digits; the old CMND, 9) or a
clinic number. Neither may leave the facility. What leaves is

    patient_ref = "p" + key_id + "_" + base32(HMAC-SHA256(key, "ostwatch:patient:v1:" + kind
                                                            + ":" + normalised identifier))[:32]

(lower case, 32 base-32 characters = 160 bits; 8–64 characters of ``[A-Za-z0-9_-]`` as
CONTRACT §1 requires). The key is held by the province and shared by its facilities only, so
the same patient gets the same reference at every facility of the province (double dosing and
transfers stay visible), while nobody without the key can go from an ID number to a reference
(a plain hash of a 12-digit number would be reversed by trying them all). The identifier's
kind is part of the message, so a clinic number that happens to equal an ID number does not
collide with it; the same patient must therefore be identified the same way everywhere (the
national ID where the patient has one; see docs/operations.md, "Pseudonymisation").

Key rotation: ``key_id`` is written into every reference, so references made under different
keys never collide and each says which key made it. :func:`rekey_map` computes, from the
identifiers a facility holds, each patient's reference under the previous and the current
key: the map ``old_ref → new_ref`` links history across the rotation without any identifier.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from ostwatch.settings import PseudonymSettings, SettingsError

IdentifierKind = Literal["national_id", "clinic_number"]
IDENTIFIER_KINDS: Final[tuple[IdentifierKind, ...]] = ("national_id", "clinic_number")
MIN_KEY_BYTES: Final = 32
_DOMAIN = b"ostwatch:patient:v1:"
_REF_CHARS = 32
_SEPARATORS = re.compile(r"[\s.\-_/]+")
_CLINIC_RE = re.compile(r"[A-Z0-9]{1,32}")


class IdentifierError(ValueError):
    """An identifier that cannot be normalised; the message never repeats it."""


@dataclass(frozen=True)
class PseudonymKey:
    """A key and its short name. The secret never appears in a repr, a log or an error."""

    key_id: str
    secret: bytes = field(repr=False)

    def patient_ref(self, kind: IdentifierKind, identifier: str) -> str:
        """The reference of a patient known by ``identifier`` (normalised here first)."""
        normalised = normalise_identifier(kind, identifier)
        digest = hmac.new(
            self.secret, _DOMAIN + kind.encode() + b":" + normalised.encode(), hashlib.sha256
        ).digest()
        body = base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:_REF_CHARS]
        return f"p{self.key_id}_{body}"


def normalise_identifier(kind: IdentifierKind, value: str) -> str:
    """One spelling per identifier, so every facility computes the same reference.

    National IDs: digits only, after removing spaces, dots and dashes; 12 (CCCD) or 9 (CMND).
    Clinic numbers: Unicode-normalised (NFKC), upper case, without spaces, dots, dashes,
    underscores or slashes; 1–32 letters and digits. Leading zeros are kept.
    """
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()
    if not text:
        raise IdentifierError(f"{kind}: empty")
    if kind == "national_id":
        if not text.isascii() or not text.isdigit() or len(text) not in (9, 12):
            raise IdentifierError(
                f"national_id: must be 12 digits (CCCD) or 9 digits (CMND), got {len(text)} "
                "characters after removing spaces, dots and dashes (value not shown)"
            )
        return text
    if not _CLINIC_RE.fullmatch(text):
        raise IdentifierError(
            "clinic_number: must be 1–32 letters A–Z and digits after removing spaces, dots, "
            "dashes, underscores and slashes (value not shown)"
        )
    return text


def _read_secret(setting: str, inline: object | None, path: Path | None) -> bytes | None:
    """The key bytes from the inline setting or the file; SettingsError names the setting."""
    if inline is not None and path is not None:
        raise SettingsError(f"{setting} and {setting}_FILE are both set: give only one")
    if path is not None:
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise SettingsError(
                    f"{setting}_FILE: {path} may be read by others; restrict it (chmod 600)"
                )
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(
                f"{setting}_FILE: cannot read {path} ({exc.strerror or type(exc).__name__})"
            ) from None
    elif inline is not None:
        text = str(getattr(inline, "get_secret_value", lambda: inline)())
    else:
        return None
    secret = text.strip().encode("utf-8")
    if len(secret) < MIN_KEY_BYTES:
        raise SettingsError(
            f"{setting}: the key must be at least {MIN_KEY_BYTES} characters "
            "(e.g. `openssl rand -base64 48`); value not shown"
        )
    return secret


def load_keys(settings: PseudonymSettings) -> tuple[PseudonymKey, PseudonymKey | None]:
    """The current key and, during a rotation, the previous one."""
    prefix = "OSTWATCH_PSEUDONYM_"
    current = _read_secret(f"{prefix}KEY", settings.key, settings.key_file)
    if current is None:
        raise SettingsError(
            f"{prefix}KEY_FILE (or {prefix}KEY) is required: the province's pseudonymisation key"
        )
    previous = _read_secret(
        f"{prefix}PREVIOUS_KEY", settings.previous_key, settings.previous_key_file
    )
    if previous is None:
        return PseudonymKey(settings.key_id, current), None
    if not settings.previous_key_id or settings.previous_key_id == settings.key_id:
        raise SettingsError(
            f"{prefix}PREVIOUS_KEY_ID is required with a previous key and must differ from "
            f"{prefix}KEY_ID"
        )
    if hmac.compare_digest(previous, current):
        raise SettingsError(f"{prefix}PREVIOUS_KEY is the same key as {prefix}KEY")
    return PseudonymKey(settings.key_id, current), PseudonymKey(settings.previous_key_id, previous)


def rekey_map(
    identifiers: Iterable[tuple[IdentifierKind, str]], old: PseudonymKey, new: PseudonymKey
) -> tuple[dict[str, str], int]:
    """(``old_ref → new_ref`` for every distinct identifier, how many could not be read).

    This is the link across a key rotation. The map holds references only, never an
    identifier, so it may be sent to the province.
    """
    mapping: dict[str, str] = {}
    refused = 0
    for kind, identifier in identifiers:
        try:
            mapping[old.patient_ref(kind, identifier)] = new.patient_ref(kind, identifier)
        except IdentifierError:
            refused += 1
    return mapping, refused
