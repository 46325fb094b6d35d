"""Named SQL: the statements the repositories run live in ``sinks/sql/<name>.sql``.

``sql("submission_counts")`` is the file's text (comment lines dropped, cached);
``sql("alert_filters.kinds")`` one ``-- name: kinds`` section of a file of fragments. Values are
never put into that text: they are bound by clickhouse-connect, client-side as
``%(name)s`` (the style these files use) or server-side as ``{name:Type}``. Only SQL may fill
a ``{placeholder}`` of a file (a fragment from another file, an archive column list, a table
name): every part must be ``Sql``, which only this module and checked identifiers produce,
so a value cannot reach the text by mistake.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache, lru_cache
from importlib import resources

# ``{name}`` with no ``:Type`` (that form is clickhouse-connect's server-side binding).
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECTION = re.compile(r"--\s*name:\s*([a-z_]+)")


class Sql(str):
    """SQL text written by us: a file's statement, a fragment, or a checked identifier."""

    __slots__ = ()


@cache
def _file(stem: str) -> str:
    return resources.files("sinks").joinpath("sql", f"{stem}.sql").read_text(encoding="utf-8")


@cache
def _sections(stem: str) -> dict[str, str]:
    """A file of fragments: each section starts at a ``-- name: <section>`` line."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in _file(stem).splitlines():
        marker = _SECTION.fullmatch(line.strip())
        if marker:
            current = sections.setdefault(marker.group(1), [])
        elif current is not None:
            current.append(line)
    return {name: _without_comments("\n".join(lines)) for name, lines in sections.items()}


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


@cache
def sql_text(name: str) -> str:
    """``sinks/sql/<name>.sql`` without its comment lines (they are for readers, and
    client-side parameter binding must not see quotes inside them); ``<file>.<section>``
    names one section of a file of fragments."""
    if "." in name:
        stem, section = name.split(".", 1)
        sections = _sections(stem)
        if section not in sections:
            raise KeyError(f"{stem}.sql has no section {section!r}")
        return sections[section].strip()
    return _without_comments(_file(name))


@lru_cache(maxsize=1024, typed=True)  # typed: a str equal to a cached Sql part is refused
def sql(name: str, /, **parts: Sql) -> Sql:
    """The named statement with its ``{placeholders}`` filled by ``parts`` (SQL only).

    A part the file has no placeholder for is a mistake and raises; placeholders not given
    stay for a later ``fill`` (a fragment filled in two steps). Cached: the intake asks
    for the same few statements with every batch.
    """
    return fill(Sql(sql_text(name)), name, **parts)


def fill(text: Sql, name: str = "SQL", /, **parts: Sql) -> Sql:
    """``text`` with the given ``{placeholders}`` replaced by SQL parts."""
    present = set(_PLACEHOLDER.findall(text))
    for key, part in parts.items():
        if key not in present:
            raise ValueError(f"{name}: no {{{key}}} placeholder to fill")
        if not isinstance(part, Sql):
            raise TypeError(f"{name}: {{{key}}} takes SQL, not a value ({type(part).__name__})")
    return Sql(_PLACEHOLDER.sub(lambda m: parts.get(m.group(1), m.group(0)), text))


def identifier(name: str) -> Sql:
    """A table, column or database name, checked and quoted (names vary with settings)."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not an identifier: {name!r}")
    return Sql(f"`{name}`")


def label(name: str) -> Sql:
    """A checked identifier as a string literal (a column named in a query's result)."""
    identifier(name)
    return Sql(f"'{name}'")


def join(parts: Iterable[Sql], separator: str = ", ") -> Sql:
    """SQL parts in a list (the separator is ours, never a value)."""
    return Sql(separator.join(parts))


def identifiers(names: Iterable[str]) -> Sql:
    """A comma-separated list of checked names (an INSERT's or SELECT's column list)."""
    return join(identifier(name) for name in names)


def all_of(conditions: Iterable[Sql]) -> Sql:
    """Conditions joined by AND (a WHERE clause assembled from a file's fragments)."""
    return Sql(" AND ".join(f"({condition})" for condition in conditions) or "1")


def placeholders(name: str) -> set[str]:
    """The placeholders a named file leaves to its caller (tests check the files by this)."""
    return set(_PLACEHOLDER.findall(sql_text(name)))
