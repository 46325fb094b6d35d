"""Bounded, iterative looks at untrusted JSON text, before anything parses or walks it.

A line from a facility may be anything: bytes that are not UTF-8, or objects nested hundreds
of levels deep (depths between ~500 and ~1,000 pass the JSON parser and then break every
recursive walk with ``RecursionError``). The contract allows 32 levels (CONTRACT §1); what
this module answers is computed without recursion and in one pass over the text:

- :func:`utf8_problem` — where a line stops being UTF-8;
- :func:`text_too_deep` / :func:`document_too_deep` — nesting beyond the limit, on the raw
  text (before the parser sees it) and on a decoded document (from any other source);
- :func:`mask_text` — what may be kept of a line that is not JSON: its structure only, with
  every letter and digit hidden, written so that the same checks (and the JSON parser) find
  the same problem at the same place in the kept text as in the original.

A leaf: it imports nothing of ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "MAX_NESTING",
    "document_too_deep",
    "mask_text",
    "nesting_problem",
    "text_too_deep",
    "utf8_problem",
]

# CONTRACT §1: JSON nested at most 32 levels deep (an event is 1, its ``results`` 2).
MAX_NESTING: Final = 32

# A JSON string (an unterminated one runs to the end of the text) or one bracket. Each
# alternative consumes what it starts, so the scan is linear whatever the text.
_STRUCTURE_RE = re.compile(rb'"(?:[^"\\]|\\(?:.|\Z))*(?:"|\Z)|[\[\]{}]', re.DOTALL)
_OPENING = frozenset(b"[{")
# Values that are never containers, recognised by exact type (an ABC check costs more).
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None), bytes})


def nesting_problem(limit: int = MAX_NESTING) -> str:
    """The reason given for a line or document nested deeper than ``limit``."""
    return f"nested too deep: more than {limit} levels of objects and arrays (CONTRACT §1)"


def text_too_deep(raw: bytes, limit: int = MAX_NESTING) -> bool:
    """Whether the JSON text ``raw`` opens more than ``limit`` objects/arrays at once.

    Brackets inside strings do not count. Text that is not JSON is measured the same way,
    so a line is refused for its depth before the parser (which recurses) reads it.
    """
    if raw.count(b"{") + raw.count(b"[") <= limit:
        return False
    depth = 0
    for match in _STRUCTURE_RE.finditer(raw):
        first = raw[match.start()]
        if first in _OPENING:
            depth += 1
            if depth > limit:
                return True
        elif first != 0x22:  # a closing bracket; a string is skipped whole
            depth = max(0, depth - 1)
    return False


def document_too_deep(doc: Any, limit: int = MAX_NESTING) -> bool:
    """Whether a decoded document nests mappings/lists more than ``limit`` levels deep.

    Iterative, and it stops at the first container past the limit, so a document built in
    Python with a cycle or a million levels costs at most ``limit`` levels of work per path.
    """
    if not isinstance(doc, Mapping | list | tuple):
        return False
    pending: list[tuple[Any, int]] = [(doc, 1)]
    while pending:
        container, depth = pending.pop()
        if depth > limit:
            return True
        children = container.values() if isinstance(container, Mapping) else container
        for child in children:
            if type(child) not in _SCALAR_TYPES and isinstance(child, Mapping | list | tuple):
                pending.append((child, depth + 1))
    return False


def utf8_problem(raw: bytes) -> str | None:
    """The reason a line is not UTF-8 (CONTRACT §1: JSON Lines, UTF-8), or None.

    The place is counted in characters, like the JSON parser's columns, so that the kept
    (masked) form of the line names the same place.
    """
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = len(raw[: exc.start].decode("utf-8"))
        return (
            f"not valid UTF-8: an undecodable byte after {where} characters "
            "(events must be UTF-8 JSON)"
        )
    return None


# What ``mask_text`` rewrites, one token at a time from the left, so that an escape sequence
# is read as a unit before the letters in it: a \uXXXX escape, any other escape, a run of
# letters, a run of ASCII digits, one other digit, one byte that was not UTF-8.
_MASK_RE = re.compile(
    r"(?P<u>\\u[0-9A-Fa-f]{4})|(?P<esc>\\.)|(?P<word>[^\W\d_]+)|(?P<num>[0-9]+)"
    r"|(?P<digit>\d)|(?P<bad>[\udc80-\udcff])",
    re.DOTALL,
)
_KEYWORDS = frozenset({"true", "false", "null", "e", "E"})


def _masked(match: re.Match[str]) -> str:
    kind, token = match.lastgroup, match.group()
    if kind == "u":
        # A surrogate escape says nothing about a person and decides validity: keep it.
        return token if 0xD800 <= int(token[2:], 16) <= 0xDFFF else "\\u0078"
    if kind == "esc":
        return "\\\udcff" if "\udc80" <= token[1] <= "\udcff" else token
    if kind == "word":
        return token if token in _KEYWORDS else "x" * len(token)
    if kind == "num":
        # A number keeps its validity (a leading zero stays one) but not its digits.
        return ("0" if token[0] == "0" else "1") + "0" * (len(token) - 1)
    if kind == "digit":
        return "x"
    return "\udcff"  # bad: still not UTF-8, without the original byte


def mask_text(raw: bytes) -> bytes:
    """A line that is not JSON, keeping only its structure: letters become ``x``, digits
    ``0`` (a number's first ``1`` when it did not start with 0), undecodable bytes 0xFF.

    Every character maps to one character, and quotes, brackets, escapes, ``true``/
    ``false``/``null`` and whether a byte is UTF-8 are kept, so the kept line is refused
    for the same reason at the same place as the original.
    """
    text = raw.decode("utf-8", errors="surrogateescape")
    return _MASK_RE.sub(_masked, text).encode("utf-8", errors="surrogateescape")
