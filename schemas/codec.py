"""Kafka message values: Avro bodies in the Confluent wire format, with stable schema ids.

A value is ``0x00``, the writer schema's id as a 4-byte big-endian integer, then the Avro binary
body. Ids come from ``avro/registry.json`` and never change, so a message archived years ago still
names the schema it was written with. A consumer reads every message with the newest schema it
knows for that record (Avro schema resolution), so producers and consumers can be upgraded apart.

The Avro schemas cannot say "greater than 0" or "8–64 characters": ``event_from_decoded``
re-validates every decoded record with the pydantic models.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from io import BytesIO
from typing import Any, Final, cast
from uuid import UUID

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from schemas.models import (
    DEFAULT_BOUNDS,
    BaseEvent,
    EventBounds,
    EventRejected,
    parse_event_dict,
    parse_event_line,
)

__all__ = [
    "RAW_SUBMISSION_NAME",
    "RAW_SUBMISSION_SCHEMA_ID",
    "Decoded",
    "SchemaCatalog",
    "SchemaInfo",
    "UndecodableMessage",
    "decode",
    "default_catalog",
    "encode_event",
    "encode_raw_submission",
    "event_from_decoded",
    "known_schemas",
    "schema_by_id",
]

MAGIC_BYTE: Final = 0
HEADER_SIZE: Final = 5
RAW_SUBMISSION_SCHEMA_ID: Final = 1000
RAW_SUBMISSION_NAME: Final = "vn.ostwatch.ingest.v1.RawSubmission"
SUBMISSION_BATCH_SCHEMA_ID: Final = 1001
_HEADER = struct.Struct(">bI")

# What fastavro raises on a body that does not match its schema (truncated, corrupt lengths,
# indexes out of range, bad UTF-8, a malformed UUID string). Anything else is a bug and escapes.
_CORRUPT_BODY_ERRORS = (
    EOFError,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    OverflowError,
    MemoryError,
    StopIteration,
)


class UndecodableMessage(ValueError):
    """A Kafka value that cannot be turned into a record; ``reason`` says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SchemaInfo:
    """One entry of the schema registry: a stable id for one version of one record schema."""

    schema_id: int
    name: str
    event_type: str | None
    version: int


@dataclass(frozen=True)
class Decoded:
    """A decoded message: ``schema`` is the writer's (named by the id in the message);
    ``record`` has the shape of the newest known version of that record."""

    schema: SchemaInfo
    record: dict[str, Any]


CatalogEntry = tuple[SchemaInfo, Mapping[str, Any]]


def _full_name(schema: Mapping[str, Any]) -> str:
    """The Avro full name of a record schema (namespace + name)."""
    name = str(schema.get("name", ""))
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


class SchemaCatalog:
    """The schemas a process knows, by id; encodes with the newest, decodes any of them.

    The default catalog comes from ``avro/registry.json``; tests build others with
    ``from_entries`` (for example the default entries plus a version 2 fixture).
    """

    def __init__(self, entries: Iterable[CatalogEntry]) -> None:
        self._entries: dict[int, CatalogEntry] = {}
        self._parsed: dict[int, dict[str, Any]] = {}
        self._header: dict[int, bytes] = {}
        problems: list[str] = []
        for info, schema in entries:
            if info.schema_id in self._entries:
                problems.append(f"schema id {info.schema_id} listed twice")
                continue
            if schema.get("type") != "record":
                problems.append(f"schema id {info.schema_id} is not a record schema")
                continue
            if _full_name(schema) != info.name:
                problems.append(
                    f"schema id {info.schema_id}: file names {_full_name(schema)!r}, "
                    f"registry says {info.name!r}"
                )
                continue
            self._entries[info.schema_id] = (info, schema)
            # Each schema gets its own name space: versions of one record share their names.
            # A record schema parses to a dict (checked above).
            parsed = parse_schema(dict(schema), named_schemas={})
            self._parsed[info.schema_id] = cast(dict[str, Any], parsed)
            self._header[info.schema_id] = _HEADER.pack(MAGIC_BYTE, info.schema_id)
        newest_by_name: dict[str, SchemaInfo] = {}
        for info, _ in self._entries.values():
            current = newest_by_name.get(info.name)
            if current is not None and current.version == info.version:
                problems.append(f"{info.name} version {info.version} listed twice")
            if current is not None and current.event_type != info.event_type:
                problems.append(f"{info.name}: versions disagree on event_type")
            if current is None or info.version > current.version:
                newest_by_name[info.name] = info
        if problems:
            raise ValueError("bad schema catalog: " + "; ".join(problems))
        self._reader_id = {
            schema_id: newest_by_name[info.name].schema_id
            for schema_id, (info, _) in self._entries.items()
        }
        self._newest_by_event_type: dict[str, SchemaInfo] = {}
        for info in newest_by_name.values():
            if info.event_type is None:
                continue
            current = self._newest_by_event_type.get(info.event_type)
            if current is None or info.version > current.version:
                self._newest_by_event_type[info.event_type] = info

    @classmethod
    def from_entries(cls, entries: Iterable[CatalogEntry]) -> SchemaCatalog:
        """A catalog of exactly these (info, schema JSON) pairs."""
        return cls(entries)

    @classmethod
    def from_package(cls) -> SchemaCatalog:
        """The catalog shipped in this package: ``avro/registry.json`` and its ``.avsc`` files."""
        root = resources.files("schemas").joinpath("avro")
        registry = json.loads(root.joinpath("registry.json").read_text(encoding="utf-8"))
        entries: list[CatalogEntry] = []
        for row in registry["schemas"]:
            info = SchemaInfo(
                schema_id=int(row["id"]),
                name=str(row["name"]),
                event_type=row["event_type"],
                version=int(row["version"]),
            )
            schema = json.loads(root.joinpath(row["path"]).read_text(encoding="utf-8"))
            entries.append((info, schema))
        return cls(entries)

    def entries(self) -> list[CatalogEntry]:
        """Every (info, schema JSON) pair, by id; the base for an extended catalog."""
        return [self._entries[schema_id] for schema_id in sorted(self._entries)]

    def extended(self, extra: Iterable[CatalogEntry]) -> SchemaCatalog:
        """This catalog plus more schemas (for instance a newer version of an event type)."""
        return SchemaCatalog([*self.entries(), *extra])

    def known_schemas(self) -> list[SchemaInfo]:
        """Every schema this catalog can decode, by id."""
        return [info for info, _ in self.entries()]

    def schema_by_id(self, schema_id: int) -> SchemaInfo:
        """The registry entry for an id; KeyError if this catalog does not know it."""
        return self._entries[schema_id][0]

    def schema_json(self, schema_id: int) -> Mapping[str, Any]:
        """The Avro schema (as read from its .avsc) for an id; KeyError if unknown."""
        return self._entries[schema_id][1]

    def newest_for(self, event_type: str) -> SchemaInfo:
        """The schema new events of this type are written with."""
        return self._newest_by_event_type[event_type]

    def encode_record(self, schema_id: int, record: Mapping[str, Any]) -> bytes:
        """Frame one record written with the schema ``schema_id``."""
        out = BytesIO()
        out.write(self._header[schema_id])
        schemaless_writer(out, self._parsed[schema_id], record)
        return out.getvalue()

    def encode_event(self, event: BaseEvent) -> bytes:
        """A validated event as a Kafka value, written with its type's newest schema."""
        info = self._newest_by_event_type[event.event_type]
        return self.encode_record(info.schema_id, event.to_contract_dict())

    def encode_raw_submission(self, raw: bytes, client_reason: str) -> bytes:
        """A line the sender could not validate, framed so the stream can give the reason."""
        return self.encode_record(
            RAW_SUBMISSION_SCHEMA_ID, {"raw": raw, "client_reason": client_reason}
        )

    def encode_submission_batch(self, items: Iterable[tuple[int, bytes]]) -> bytes:
        """Several framed submissions (seq, value) of one facility in one Kafka value."""
        return self.encode_record(
            SUBMISSION_BATCH_SCHEMA_ID,
            {"items": [{"seq": seq, "value": value} for seq, value in items]},
        )

    def decode(self, value: bytes, *, reader_id: int | None = None) -> Decoded:
        """Read a Kafka value; UndecodableMessage if it is not one this catalog can read.

        The record comes in the shape of the newest known version of the writer's record, or of
        ``reader_id`` when given (a consumer pinned to an older version of the models).
        """
        if not value:
            raise UndecodableMessage("empty message")
        if value[0] != MAGIC_BYTE:
            raise UndecodableMessage(
                f"wrong magic byte 0x{value[0]:02x}, expected 0x00 (Confluent wire format)"
            )
        if len(value) < HEADER_SIZE:
            raise UndecodableMessage(f"truncated header: {len(value)} bytes, need {HEADER_SIZE}")
        _, schema_id = _HEADER.unpack_from(value)
        entry = self._entries.get(schema_id)
        if entry is None:
            raise UndecodableMessage(f"unknown schema id {schema_id}")
        info = entry[0]
        if reader_id is None:
            reader_id = self._reader_id[schema_id]
        elif self._entries[reader_id][0].name != info.name:
            raise ValueError(f"schema id {reader_id} is not a version of {info.name}")
        body = BytesIO(value)
        body.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(  # a dict: every catalog schema is a record
                body,
                self._parsed[schema_id],
                None if reader_id == schema_id else self._parsed[reader_id],
            )
        except SchemaResolutionError as exc:
            raise UndecodableMessage(
                f"schema id {schema_id} ({info.name} v{info.version}) cannot be read as "
                f"schema id {reader_id}: {exc}"
            ) from None
        except _CORRUPT_BODY_ERRORS as exc:
            raise UndecodableMessage(
                f"corrupt body for schema id {schema_id} ({info.name}): "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        if body.tell() != len(value):
            raise UndecodableMessage(
                f"corrupt body for schema id {schema_id} ({info.name}): "
                f"{len(value) - body.tell()} trailing bytes"
            )
        return Decoded(schema=info, record=cast(dict[str, Any], record))


@functools.cache
def default_catalog() -> SchemaCatalog:
    """The packaged catalog, read and parsed once, on first use."""
    return SchemaCatalog.from_package()


def schema_by_id(schema_id: int) -> SchemaInfo:
    """The packaged registry entry for an id; KeyError if unknown."""
    return default_catalog().schema_by_id(schema_id)


def known_schemas() -> list[SchemaInfo]:
    """Every packaged schema, by id."""
    return default_catalog().known_schemas()


def encode_event(event: BaseEvent) -> bytes:
    """A validated event as a Kafka value (packaged catalog)."""
    return default_catalog().encode_event(event)


def encode_raw_submission(raw: bytes, client_reason: str) -> bytes:
    """A refused line as a Kafka value (packaged catalog)."""
    return default_catalog().encode_raw_submission(raw, client_reason)


def encode_submission_batch(items: Iterable[tuple[int, bytes]]) -> bytes:
    """Several framed submissions in one Kafka value (packaged catalog)."""
    return default_catalog().encode_submission_batch(items)


def decode(value: bytes) -> Decoded:
    """Read a Kafka value with the packaged catalog."""
    return default_catalog().decode(value)


def event_from_decoded(
    decoded: Decoded, *, arrival: datetime | None = None, bounds: EventBounds = DEFAULT_BOUNDS
) -> BaseEvent:
    """Re-validate a decoded record as a contract event; EventRejected if it breaks a rule.

    A raw submission is parsed from its original line, so the reason the stream gives is its
    own, not the sender's. ``arrival`` is when the platform received the message (the bound
    on future event times; default now).
    """
    if decoded.schema.event_type is None:
        if decoded.schema.name == RAW_SUBMISSION_NAME:
            return parse_event_line(decoded.record["raw"], arrival=arrival, bounds=bounds)
        raise EventRejected(f"schema {decoded.schema.name} does not carry an event")
    doc = {
        key: str(value) if isinstance(value, UUID) else value
        for key, value in decoded.record.items()
        if value is not None
    }
    if doc.get("event_type") != decoded.schema.event_type:
        raise EventRejected(
            f"event_type: {doc.get('event_type')!r} does not match the message schema "
            f"{decoded.schema.name} ({decoded.schema.event_type!r})"
        )
    # A record's nesting is its schema's (an event's results map at most).
    return parse_event_dict(doc, arrival=arrival, bounds=bounds, depth_checked=True)
