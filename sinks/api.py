"""The store operations the CLI may ask for, by name, with JSON-ready answers.

The same table serves two paths: in-process (the CLI opens ClickHouse itself when no
stack owns it) and over the running stack's local HTTP API (when one does). Keeping one
table keeps both paths identical.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sinks.store import Store


class OperationError(ValueError):
    """The request named an unknown operation or gave bad arguments (the caller's fault)."""


def _as_of(kwargs: Mapping[str, Any]) -> datetime | None:
    text = kwargs.get("as_of")
    if text is None:
        return None
    try:
        instant = datetime.fromisoformat(str(text))
    except ValueError:
        raise OperationError(f"--as-of: not an RFC 3339 time: {text!r}") from None
    if instant.tzinfo is None:
        raise OperationError(f"--as-of: needs an offset, e.g. 2024-03-12T23:59:59+07:00: {text!r}")
    return instant


def _registry_load(store: Store, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    files = kwargs.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise OperationError("registry_load needs files: {name: text}")
    return asdict(store.load_registry(files, str(kwargs.get("source", ""))))


OPERATIONS: dict[str, Callable[[Store, Mapping[str, Any]], Any]] = {
    "submission_counts": lambda store, kw: store.submission_counts(str(kw["source"])),
    "rejected": lambda store, kw: store.rejected(as_of=_as_of(kw)),
    "intake_totals": lambda store, kw: store.intake_totals(),
    "registry_load": _registry_load,
    "registry_version": lambda store, kw: {"version": store.registry_version()},
}


def run(store: Store, name: str, kwargs: Mapping[str, Any]) -> Any:
    """Run one named operation; KeyError/TypeError from bad arguments become OperationError."""
    operation = OPERATIONS.get(name)
    if operation is None:
        raise OperationError(f"unknown operation {name!r}")
    try:
        return operation(store, kwargs)
    except KeyError as exc:
        raise OperationError(f"{name}: missing argument {exc}") from None
