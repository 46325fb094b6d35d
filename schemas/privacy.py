"""Personal-looking data: what the intake refuses, and what it keeps of a refused line.

Patients appear only as pseudonyms computed at the source (``producers/pseudonym.py``). A
facility system that puts a national ID, a phone number, an e-mail address or a sentence of
free text into an event anyway must be refused, and what the platform keeps of the refused
line (the rejected table, the dead-letter topic, logs) must not hold the value in clear.

Two functions carry that, and they are made to agree with each other:

- :func:`personal_data_problem` finds the first personal-looking value of a decoded event and
  names its field and kind, never the value;
- :func:`redact_line` rewrites a refused line for keeping: a personal-looking value becomes a
  marker such as ``[redacted:phone]`` (which :func:`personal_data_problem` reads back as the
  same kind, so re-validating the kept line gives the same reason), every value of an unknown
  field becomes ``[redacted]`` (a name cannot be recognised by its shape, and an unknown field
  is where one would be), and a line that is not JSON keeps only its punctuation (letters
  become ``x``, digits ``0``).

False positives are kept low on purpose: a UUID (``event_id``) is never flagged, nor are lot
numbers, commune codes, dates or hex digests used as pseudonyms; an old 9-digit ID (CMND) is
only recognised when it is the whole value, a 12-digit ID (CCCD) only with its leading ``0``
(province codes 001–096), a phone only with a Vietnamese prefix (``0`` or ``+84`` then
3/5/7/8/9 for mobiles, 2 for landlines), and both only as a token of their own, not inside a
longer run of letters and digits. Imports nothing of ours but ``schemas.untrusted``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Final

import orjson

from schemas.untrusted import mask_text, text_too_deep

__all__ = [
    "KIND_LABELS",
    "looks_personal",
    "marker",
    "personal_data_problem",
    "personal_kind",
    "redact_document",
    "redact_line",
    "scrub_text",
]

# What each kind is called in a reason.
KIND_LABELS: Final[dict[str, str]] = {
    "national_id": "a national ID number (CCCD 12 digits / CMND 9 digits)",
    "phone": "a phone number",
    "email": "an e-mail address",
    "digits_only": "an ID or phone number (only digits)",
    "id_number": "an ID or phone number, not a quantity",
    "free_text": "free text where a code is expected",
}

# Longest text a code may be; longer is free text (CONTRACT codes are at most 64 characters).
MAX_CODE_CHARS: Final = 64

_MARKER_RE = re.compile(r"\[redacted(?::([a-z_]+))?\](?:#\d+)?")
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# Cheap checks decide whether a string needs the detailed ones below (see _suspect).
_NO_DIGITS = str.maketrans("", "", "0123456789")
_SUSPECT_CHARS_RE = re.compile(r"[@\s\[]")
_TIMESTAMP_RE = re.compile(
    r"\d{4}-\d\d-\d\d(?:[Tt ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[Zz]|[+-]\d\d:?\d\d)?)?"
)
_EMAIL_RE = re.compile(r"[^\s@\"'<>]+@[^\s@\"'<>]+\.[A-Za-z]{2,}")
# CCCD: 3-digit province code (001–096, so a leading 0), century/sex digit, birth year, 6 more.
# An ID or phone counts only as a token of its own (bounded by no letter or digit): the same
# digits inside a longer code (a hex digest, "ID001085012345x") are not read as one.
_CCCD_RE = re.compile(r"(?<![0-9A-Za-z])0\d{11}(?![0-9A-Za-z])")
_CMND_RE = re.compile(r"\d{9}")
_PHONE_RE = re.compile(
    r"(?<![0-9A-Za-z+])(?:\+?84|0)[ .-]?(?:[35789](?:[ .-]?\d){8}|2(?:[ .-]?\d){9})(?![0-9A-Za-z])"
)
# A run of 9 or more digits standing alone (not a UUID's group): an ID or a phone number.
_LONG_NUMBER_RE = re.compile(r"(?<![0-9A-Za-z-])\d{9,}(?![0-9A-Za-z-])")
_SPACE_RE = re.compile(r"\s")
_LETTER_RE = re.compile(r"[^\W\d_]")
_NUMBER_ID_MIN, _NUMBER_ID_MAX = 100_000_000, 1_000_000_000_000  # 9 to 12 digits


def _suspect(value: str) -> bool:
    """Whether ``value`` may hold personal data: long, '@', whitespace, '[' or 9+ digits."""
    return (
        len(value) > MAX_CODE_CHARS
        or _SUSPECT_CHARS_RE.search(value) is not None
        or len(value) - len(value.translate(_NO_DIGITS)) >= 9
    )


def marker(kind: str | None) -> str:
    """The text that replaces a redacted value: ``[redacted:phone]``, or ``[redacted]``."""
    return f"[redacted:{kind}]" if kind else "[redacted]"


def personal_kind(value: str, *, code: bool) -> str | None:
    """The kind of personal-looking data in ``value`` (see KIND_LABELS), or None.

    ``code`` says a code is expected here: then whitespace or more than 64 characters is
    free text. A redaction marker is read back as the kind it replaced.
    """
    if not _suspect(value):
        return None
    found = _MARKER_RE.fullmatch(value)
    if found:
        return found.group(1)
    if _UUID_RE.fullmatch(value) or _TIMESTAMP_RE.fullmatch(value):
        return None
    if "@" in value and _EMAIL_RE.search(value):
        return "email"
    if _CCCD_RE.search(value) or _CMND_RE.fullmatch(value.strip()):
        return "national_id"
    if _PHONE_RE.search(value):
        return "phone"
    if code and (len(value) > MAX_CODE_CHARS or _SPACE_RE.search(value)):
        return "free_text"
    return None


def looks_personal(value: str) -> bool:
    """Whether a reason may not quote ``value``: personal-looking, or words (maybe a name)."""
    if personal_kind(value, code=False):
        return True
    return bool(_SPACE_RE.search(value) and _LETTER_RE.search(value))


def _number_kind(value: object) -> str | None:
    """A whole number of 9–12 digits in a quantity is an ID or a phone number that lost its 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return "id_number" if _NUMBER_ID_MIN <= abs(value) < _NUMBER_ID_MAX else None


def _value_kind(name: str, value: object, *, code: bool) -> str | None:
    if isinstance(value, str):
        kind = personal_kind(value, code=code)
        if kind is None and name == "patient_ref" and 8 <= len(value) <= 15 and value.isdigit():
            return "digits_only"
        return kind
    return _number_kind(value)


def _problem_at(where: str, name: str, value: object, *, code: bool) -> str | None:
    """The reason for one leaf value (or each item of a list of them), or None."""
    for item in value if isinstance(value, list) else (value,):
        kind = _value_kind(name, item, code=code and not isinstance(value, list))
        if kind:
            return (
                f"{where}: looks like {KIND_LABELS.get(kind, kind)}; personal data is "
                "not accepted (value not shown)"
            )
    return None


def personal_data_problem(doc: Mapping[str, Any], code_fields: Collection[str]) -> str | None:
    """The first personal-looking value of a decoded event as a reason, or None.

    ``code_fields`` are the contract's fields where a code is expected; a value under any
    other name (an unknown field) is checked for IDs, phones and e-mails but not free text.
    The reason names the field and the kind, never the value. Nested objects are walked
    depth first without recursion: the walk of an object is set aside on a stack while an
    object inside it is walked (the caller bounds their depth, CONTRACT §1).
    """
    outer: list[Iterator[tuple[Any, Any]]] = []
    names: list[str] = []  # the path to the object being walked, joined only for a reason
    items = iter(doc.items())
    while True:
        for key, value in items:
            # Fast path, taken by nearly every field of nearly every event: a short string
            # with nothing suspect in it under a known name.
            kind_of = type(value)
            if kind_of is str:
                if (
                    (key == "event_id" and _UUID_RE.fullmatch(value))
                    or (key == "occurred_at" and _TIMESTAMP_RE.fullmatch(value))
                    or (key in code_fields and not _suspect(value))
                ) and (key != "patient_ref" or not value.isdigit()):
                    continue
            elif (kind_of is int or kind_of is float) and -_NUMBER_ID_MIN < value < _NUMBER_ID_MIN:
                continue
            name = str(key)
            if name not in code_fields and (
                personal_kind(name, code=True) or name.startswith(marker(None) + "#")
            ):
                where = ".".join(names) or "event"
                return f"{where}: a field name looks like personal data (not shown)"
            if isinstance(value, Mapping):
                outer.append(items)
                names.append(name)
                items = iter(value.items())
                break
            problem = _problem_at(
                ".".join((*names, name)), name, value, code=bool(names) or name in code_fields
            )
            if problem:
                return problem
        else:
            if not outer:
                return None
            items = outer.pop()
            names.pop()


def _redacted_leaf(name: str, value: Any, *, known: bool, code: bool) -> Any:
    """What is kept of one value that is neither an object nor an array."""
    kind = _value_kind(name, value, code=code)
    if kind:
        return marker(kind)
    if isinstance(value, str) and (not known or looks_personal(value)):
        return marker(None)
    return value


# A container being redacted: (source items, its copy, field name, known, code, top level).
_Frame = tuple[Iterator[tuple[int, Any]], dict[str, Any] | list[Any], str, bool, bool, bool]


def _redact_mapping(
    doc: Mapping[str, Any], known_fields: Collection[str], code_fields: Collection[str]
) -> dict[str, Any]:
    """``doc`` with every personal-looking or unknown value replaced, built without recursion.

    Each pending entry is a container still to fill: its source items, the copy being
    built, the field name its values are judged under, and whether that field is known
    (every value below a known field is) and holds codes.
    """
    top: dict[str, Any] = {}
    pending: list[_Frame] = [(iter(enumerate(doc.items())), top, "", False, False, True)]
    while pending:
        items, kept, field_name, known, code, is_top = pending[-1]
        entry = next(items, None)
        if entry is None:
            pending.pop()
            continue
        if isinstance(kept, dict):
            number, (key, value) = entry
            name = str(key)
            if is_top:
                known, code = name in known_fields, name in code_fields
            if personal_kind(name, code=True):
                name, known, code = f"{marker(None)}#{number}", False, False
            value_name = name
        else:
            _, value = entry
            name, value_name, code = "", field_name, False
        if isinstance(value, Mapping):
            child: dict[str, Any] | list[Any] = {}
            pending.append((iter(enumerate(value.items())), child, value_name, known, known, False))
        elif isinstance(value, list):
            child = []
            pending.append((iter(enumerate(value)), child, value_name, known, False, False))
        else:
            child = _redacted_leaf(value_name, value, known=known, code=code)
        if isinstance(kept, dict):
            kept[name] = child
        else:
            kept.append(child)
    return top


def redact_document(doc: Any, known_fields: Collection[str], code_fields: Collection[str]) -> Any:
    """A decoded line with every personal-looking or unknown value replaced by a marker.

    Values of known fields stay when they look harmless (so an operator still sees why an
    event was refused); values of unknown fields never stay, except numbers, booleans and
    null, which cannot carry a name.
    """
    if isinstance(doc, Mapping):
        return _redact_mapping(doc, known_fields, code_fields)
    if isinstance(doc, list):
        return _redact_mapping({"": doc}, (), ())[""]
    return _redacted_leaf("", doc, known=False, code=False)


def scrub_text(text: str) -> str:
    """Free text from elsewhere (an error message that may quote a value) with every
    e-mail address, phone number and long number in it replaced by a marker."""
    text = _EMAIL_RE.sub(marker("email"), text)
    text = _PHONE_RE.sub(marker("phone"), text)
    return _LONG_NUMBER_RE.sub(marker("id_number"), text)


def redact_line(raw: bytes, known_fields: Collection[str], code_fields: Collection[str]) -> bytes:
    """What may be kept of a refused line: the line itself if nothing needed redacting.

    A line that is not JSON, or nested deeper than the contract allows (it is refused for
    that before anything walks it), keeps only its structure (``mask_text``).
    """
    if text_too_deep(raw):
        return mask_text(raw)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return mask_text(raw)
    kept = redact_document(doc, known_fields, code_fields)
    return raw if kept == doc else orjson.dumps(kept)
