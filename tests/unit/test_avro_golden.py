"""Golden test: the pydantic models and the .avsc files describe the same events, field by field.

Neither is generated from the other, so this test is what keeps them together: a field added to
one and not the other, an enum symbol missing, an optional field made required, or a number
written as a string all fail here.
"""

from __future__ import annotations

import json
import types
from datetime import datetime
from importlib import resources
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest

from schemas.codec import RAW_SUBMISSION_NAME, RAW_SUBMISSION_SCHEMA_ID, default_catalog
from schemas.models import EVENT_TYPES, MODEL_BY_TYPE, BaseEvent

Kind = str | tuple[Any, ...]

_AVRO_NAMESPACE = "vn.ostwatch.events.v1"


def _model_kind(annotation: Any) -> tuple[Kind, bool]:
    """(kind, optional) of a model field's annotation, in Avro's terms."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _model_kind(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        assert len(members) == 1, annotation
        return _model_kind(members[0])[0], True
    if origin is Literal:
        values = get_args(annotation)
        if len(values) == 1:  # a constant: its Avro type is the value's type
            return {str: "string", int: "int"}[type(values[0])], False
        return ("enum", values), False
    if origin is dict:
        return ("map", _model_kind(get_args(annotation)[1])[0]), False
    return {str: "string", float: "double", int: "int", datetime: "string"}[annotation], False


def _avro_kind(avro_type: Any) -> tuple[Kind, bool]:
    """(kind, optional) of an Avro field type."""
    if isinstance(avro_type, list):
        members = [member for member in avro_type if member != "null"]
        assert avro_type[0] == "null" and len(members) == 1, avro_type
        return _avro_kind(members[0])[0], True
    if isinstance(avro_type, dict):
        if avro_type["type"] == "enum":
            return ("enum", tuple(avro_type["symbols"])), False
        if avro_type["type"] == "map":
            return ("map", _avro_kind(avro_type["values"])[0]), False
        return _avro_kind(avro_type["type"])[0], False
    return avro_type, False


def _schema_for(event_type: str) -> dict[str, Any]:
    catalog = default_catalog()
    return dict(catalog.schema_json(catalog.newest_for(event_type).schema_id))


def _model_fields(model: type[BaseEvent]) -> list[tuple[str, Kind, bool]]:
    fields = []
    for name, info in model.model_fields.items():
        kind, optional = _model_kind(info.annotation)
        fields.append((name, kind, optional or not info.is_required()))
    return fields


def _avro_fields(schema: dict[str, Any]) -> list[tuple[str, Kind, bool]]:
    return [(field["name"], *_avro_kind(field["type"])) for field in schema["fields"]]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_model_and_avro_schema_agree_field_by_field(event_type: str) -> None:
    model = MODEL_BY_TYPE[event_type]
    schema = _schema_for(event_type)
    assert schema["type"] == "record"
    assert schema["namespace"] == _AVRO_NAMESPACE
    assert schema["name"] == model.__name__
    assert _avro_fields(schema) == _model_fields(model)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_avro_schema_conventions(event_type: str) -> None:
    schema = _schema_for(event_type)
    assert schema["doc"]
    assert f"'{event_type}'" in schema["doc"]
    for field in schema["fields"]:
        assert field["doc"], field["name"]
        if isinstance(field["type"], list):  # optional: null first, null default
            assert field["default"] is None, field["name"]
        else:
            assert "default" not in field, field["name"]
    event_id = schema["fields"][0]
    assert event_id["name"] == "event_id"
    assert event_id["type"] == {"type": "string", "logicalType": "uuid"}


def test_registry_ids_are_stable() -> None:
    """Ids are forever: events 1–13 in contract order, the raw submission 1000."""
    registry = json.loads(
        resources.files("schemas").joinpath("avro/registry.json").read_text(encoding="utf-8")
    )
    rows = {row["id"]: row for row in registry["schemas"]}
    for number, event_type in enumerate(EVENT_TYPES, start=1):
        name = MODEL_BY_TYPE[event_type].__name__
        assert rows[number]["name"] == f"{_AVRO_NAMESPACE}.{name}"
        assert rows[number]["event_type"] == event_type
        assert rows[number]["version"] == 1
    raw = rows[RAW_SUBMISSION_SCHEMA_ID]
    assert (raw["name"], raw["event_type"], raw["version"]) == (RAW_SUBMISSION_NAME, None, 1)
    # Anything else is ingest plumbing, never a second version-1 schema of an event type.
    others = [row for number, row in rows.items() if number > len(EVENT_TYPES)]
    assert all(row["event_type"] is None or row["version"] > 1 for row in others)
    assert all(row["path"].endswith(".avsc") for row in rows.values())


def test_raw_submission_schema() -> None:
    schema = default_catalog().schema_json(RAW_SUBMISSION_SCHEMA_ID)
    assert schema["name"] == "RawSubmission"
    assert schema["namespace"] == "vn.ostwatch.ingest.v1"
    assert [(field["name"], field["type"]) for field in schema["fields"]] == [
        ("raw", "bytes"),
        ("client_reason", "string"),
    ]
