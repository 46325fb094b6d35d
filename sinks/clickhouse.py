"""One way to reach ClickHouse: clickhouse-connect, for chDB (``chdb://DIR``) and servers alike.

The embedded engine allows one process per directory, so the process that owns the stack
opens it once and every query in that process goes through the same client, serialised
by a lock (chDB is not documented as safe for concurrent use from threads).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.binding import DT64Param

from ostwatch.settings import ClickHouseSettings
from ostwatch.timeutil import utc_now
from sinks.cluster import render_statement, render_statements
from sinks.queries import identifier, sql

log = logging.getLogger(__name__)


class StoreUnavailable(RuntimeError):
    """ClickHouse could not be reached or refused a request (a retriable condition)."""


class StoreLocked(StoreUnavailable):
    """Another process owns this embedded ClickHouse directory (a running stack)."""


def resolve_dsn(settings: ClickHouseSettings, data_dir: Path) -> str:
    """The DSN to use: the configured server, or chDB inside the data directory."""
    if settings.url:
        return settings.url
    return f"chdb://{(data_dir / 'clickhouse').resolve()}"


def as_utc(instant: datetime) -> datetime:
    """ClickHouse returns DateTime64(…, 'UTC') values naive; mark them as the UTC they are."""
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def exact_times(parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Bind datetimes to the microsecond, in UTC like every DateTime64 column here.

    clickhouse-connect renders a plain ``datetime`` parameter to whole seconds, so "as of
    16:59:59.999" would silently become "as of 16:59:59" and drop that second's events.
    """
    if not parameters:
        return parameters
    return {name: _exact_time(value) for name, value in parameters.items()}


def _exact_time(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return DT64Param(aware.astimezone(UTC), UTC)
    if isinstance(value, (list, tuple)):
        return type(value)(_exact_time(item) for item in value)
    return value


# A batch's keys are bound into its queries as literal IN lists (thousands of event ids or
# patients in a bulk import); ClickHouse's default 256 KiB query limit made such a batch fail
# as a syntax error, which no retry can mend. The data of an INSERT does not count here.
SESSION_SETTINGS = {"max_query_size": 64 * 1024 * 1024}


def embedded_engine_options(settings: ClickHouseSettings) -> dict[str, int]:
    """Server settings for the engine chDB runs inside the worker's own process.

    ClickHouse sizes its caches for a dedicated server (5 GiB each by default), so an
    embedded engine's share of the worker's memory would grow with the data it reads.
    Capped, the worker's memory stays near a bound (docs/measurements.md, load).
    Only the first connection of a process starts the engine, so these apply to it.
    """
    size = settings.embedded_cache_mb * 1024 * 1024
    names = ("mark_cache_size", "primary_index_cache_size", "index_mark_cache_size")
    return {**dict.fromkeys(names, size), "query_condition_cache_size": size}


def is_embedded(dsn: str) -> bool:
    return dsn.startswith("chdb:")


class ClickHouse:
    """A clickhouse-connect client bound to the ostwatch database, safe to share across threads."""

    def __init__(
        self,
        client: Any,
        database: str,
        dsn: str,
        options: dict[str, Any] | None = None,
        cluster: str = "",
    ) -> None:
        self._client = client
        self.database = database
        self.dsn = dsn
        self.cluster = cluster
        self._options = options or {"dsn": dsn}
        self._lock = threading.RLock()

    @classmethod
    def connect(cls, settings: ClickHouseSettings, data_dir: Path) -> ClickHouse:
        """Open the store, creating the database if needed; raise StoreLocked/StoreUnavailable."""
        dsn = resolve_dsn(settings, data_dir)
        options: dict[str, Any] = {"dsn": dsn, "settings": SESSION_SETTINGS}
        if is_embedded(dsn):
            Path(dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
            options["chdb_options"] = embedded_engine_options(settings)
        if not is_embedded(dsn):
            options.update(
                username=settings.username,
                password=settings.password.get_secret_value(),
                connect_timeout=5,
                send_receive_timeout=60,
                autogenerate_session_id=False,
            )
        try:
            bootstrap = clickhouse_connect.get_client(**options)
            create = sql("schema.create_database", database=identifier(settings.database))
            for statement in render_statement(create, settings.cluster, settings.database):
                bootstrap.command(statement)
            client = clickhouse_connect.get_client(**options, database=settings.database)
        except Exception as exc:  # clickhouse-connect and chDB raise many unrelated types
            text = str(exc)
            locked = ("Cannot lock file", "already running", "Error initializing")
            if is_embedded(dsn) and any(marker in text for marker in locked):
                raise StoreLocked(
                    f"the ClickHouse data in {dsn} is in use by another process "
                    "(is `ostwatch up` running for this data directory?)"
                ) from exc
            raise StoreUnavailable(f"cannot open ClickHouse at {_redact(dsn)}: {exc}") from exc
        return cls(client, settings.database, dsn, options, settings.cluster)

    def sibling(self, database: str) -> ClickHouse:
        """A client for another database of the same ClickHouse, created if missing.

        chDB allows one data directory per process, so a scratch store (replay) lives as
        another database beside the live one rather than in another directory. On a cluster
        the sibling is a plain database of the node this client talks to (a throwaway scratch
        store needs no replicas), so it is opened without the cluster.
        """
        with self._guard() as client:
            client.command(sql("schema.create_database", database=identifier(database)))
        client = clickhouse_connect.get_client(**self._options, database=database)
        return ClickHouse(client, database, self.dsn, self._options)

    @contextmanager
    def _guard(self) -> Iterator[Any]:
        with self._lock:
            try:
                yield self._client
            except StoreUnavailable:
                raise
            except Exception as exc:
                if _is_retriable(exc):
                    raise StoreUnavailable(str(exc)) from exc
                raise

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        with self._guard() as client:
            return client.command(sql, parameters=exact_times(parameters))

    def query_rows(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        with self._guard() as client:
            return list(client.query(sql, parameters=exact_times(parameters)).result_rows)

    def stream_column(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> Iterator[Sequence[Any]]:
        """The first column of a query, block by block as the engine produces them: one scan,
        and never the whole result in memory (the client is held until the last block)."""
        with (
            self._guard() as client,
            client.query_column_block_stream(sql, parameters=exact_times(parameters)) as stream,
        ):
            for block in stream:
                yield block[0]

    def query_dicts(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        with self._guard() as client:
            result = client.query(sql, parameters=exact_times(parameters))
            names = result.column_names
            return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def insert_columns(
        self,
        table: str,
        columns: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        dedup_token: str | None = None,
    ) -> None:
        """One INSERT of a whole batch, column-oriented; a token makes a retried batch a no-op."""
        if not columns or not columns[0]:
            return
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        with self._guard() as client:
            client.insert(
                table,
                columns,
                column_names=list(column_names),
                column_oriented=True,
                settings=settings,
            )

    def insert_rows(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        dedup_token: str | None = None,
    ) -> None:
        """``insert_columns`` for rows (transposed here: the insert is column-oriented)."""
        if rows:
            columns = [list(column) for column in zip(*rows, strict=True)]
            self.insert_columns(table, columns, column_names, dedup_token)

    def close(self) -> None:
        with self._lock:
            self._client.close()


def _is_retriable(exc: BaseException) -> bool:
    """Network trouble and server overload are retriable; bad SQL and bad data are not."""
    text = f"{type(exc).__name__}: {exc}"
    markers = (
        "OperationalError",
        "Connection",
        "timed out",
        "Timeout",
        "TOO_MANY_PARTS",
        "MEMORY_LIMIT_EXCEEDED",
        "TOO_MANY_SIMULTANEOUS_QUERIES",
        "NETWORK_ERROR",
        "SOCKET_TIMEOUT",
        # A full disk: retry until space is freed, rather than crash the intake agent
        # (which left a worker that looked healthy and consumed nothing).
        "NOT_ENOUGH_SPACE",
        "No space left on device",
        "Injected",
    )
    return any(marker in text for marker in markers)


def _redact(dsn: str) -> str:
    """A DSN without its password, for messages."""
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return dsn


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration shipped in sinks/migrations, in order."""
    found = []
    for entry in resources.files("sinks").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def split_statements(sql: str) -> list[str]:
    """Split a migration file on ';' at line ends, dropping comment-only chunks."""
    statements = []
    for chunk in sql.split(";\n"):
        body = "\n".join(
            line for line in chunk.splitlines() if not line.strip().startswith("--")
        ).strip()
        if body:
            statements.append(body.rstrip(";"))
    return statements


SCHEMA_MIGRATIONS = sql("schema.migrations_table")


def schema_statements(cluster: str, database: str) -> list[tuple[str, list[str]]]:
    """(migration name, statements) as ``migrate`` runs them, schema_migrations first.

    With an empty ``cluster`` every statement is exactly the migration's text; with a cluster
    each is rendered by sinks/cluster.py (``ostwatch schema --cluster NAME`` prints these).
    """
    rendered = [("schema_migrations", render_statement(SCHEMA_MIGRATIONS, cluster, database))]
    for _, name, text in migration_files():
        rendered.append((name, render_statements(split_statements(text), cluster, database)))
    return rendered


def migrate(db: ClickHouse) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    for statement in render_statement(SCHEMA_MIGRATIONS, db.cluster, db.database):
        db.command(statement)
    done = {row[0] for row in db.query_rows(sql("schema.migrations_applied"))}
    applied = []
    for version, name, text in migration_files():
        if version in done:
            continue
        for statement in render_statements(split_statements(text), db.cluster, db.database):
            db.command(statement)
        db.insert_columns(
            "schema_migrations", [[version], [name], [utc_now()]], ["version", "name", "applied_at"]
        )
        log.info("applied migration %s", name, extra={"migration": name})
        applied.append(name)
    return applied
