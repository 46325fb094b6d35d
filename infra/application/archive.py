"""The archive as the system of record: the portable Avro export and its import, replaying it
to verify the live aggregates, and building a snapshot data directory from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from pydantic import AfterValidator, Field

from infra.application.common import (
    AsOf,
    DateFrom,
    DateTo,
    Document,
    Ids,
    OperationError,
    Request,
    build,
    parse_as_of,
)
from sinks import archive, replay
from sinks.store import Store

if TYPE_CHECKING:
    from infra.application.operations import Operations


def _absolute(path: Path) -> Path:
    """A directory the worker is told of: absolute, since it may run in another cwd."""
    if not path.is_absolute():
        raise ValueError(f"an absolute path, not {str(path)!r}")
    return path


Directory = Annotated[Path, AfterValidator(_absolute)]


class ArchiveExportRequest(Request):
    """Archived events (matching the filters) and the registry history, into ``out``."""

    out: Directory
    as_of: AsOf = None
    facilities: Ids = ()
    date_from: DateFrom = None
    date_to: DateTo = None


class ArchiveImportRequest(Request):
    directory: Directory


class ReplayVerifyRequest(Request):
    """Rebuild every aggregate from the archive; list at most ``limit`` differences."""

    limit: int = Field(default=replay.DEFAULT_LIMIT, ge=0)


def export(store: Store, request: ArchiveExportRequest) -> Document:
    filters = archive.Filters(
        as_of=request.as_of,
        facilities=request.facilities,
        date_from=request.date_from,
        date_to=request.date_to,
    )
    return Document.of(archive.export(store, request.out, filters))


def import_archive(store: Store, request: ArchiveImportRequest) -> Document:
    return Document.of(archive.import_archive(store, request.directory))


def verify(store: Store, request: ReplayVerifyRequest) -> Document:
    return Document.of(replay.verify(store, request.limit).as_dict())


def absolute(path: Path) -> Path:
    """Paths go to the stack's worker, which does not share this shell's directory."""
    return path.expanduser().resolve()


def replay_into(
    operations: Callable[[], AbstractContextManager[Operations]],
    data_dir: Path,
    into: Path,
    as_of: str | None,
) -> dict[str, Any]:
    """Export the archive up to T from the live store (``operations`` opens those of
    ``data_dir``), import it into a fresh directory.

    The embedded engine opens one data directory per process, so the import runs in a
    child process of its own on the new directory.
    """
    if as_of is not None:
        parse_as_of(as_of)  # before anything is created
    target = absolute(into)
    if target == absolute(data_dir):
        raise OperationError("--into must be another directory than --data-dir")
    if target.exists() and any(target.iterdir()):
        raise OperationError(f"--into {target}: not empty; give a new or empty directory")
    target.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=".replay-archive-", dir=target))
    try:
        request = build(ArchiveExportRequest, out=staging / "archive", as_of=as_of)
        with operations() as opened:
            exported = opened.archive_export(request).root
        env = {k: v for k, v in os.environ.items() if k != "OSTWATCH_CLICKHOUSE_URL"}
        env["OSTWATCH_DATA_DIR"] = str(target)
        child = subprocess.run(  # noqa: S603 - our own CLI, arguments are paths
            [sys.executable, "-m", "infra.cli", "archive", "import", str(staging / "archive"),
             "--data-dir", str(target), "--format", "json"],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        if child.returncode != 0:
            reason = (child.stderr.strip().splitlines() or ["failed"])[-1]
            raise OperationError(f"importing into {target}: {reason}")
        imported = orjson.loads(child.stdout)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "into": str(target),
        "as_of": as_of,
        "exported": exported["events"],
        "imported": imported["imported"],
        "registry_versions": imported["registry_versions"],
        "seconds": round(time.monotonic() - started, 3),
    }
