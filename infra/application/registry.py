"""The registry (CONTRACT §2): loading a directory's reference files as a new version."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel

from infra.application.common import Request
from schemas.reference import REGISTRY_FILES
from sinks.store import Store

__all__ = ["REGISTRY_FILES", "RegistryLoadRequest", "RegistryLoaded", "load", "version"]


class RegistryLoadRequest(Request):
    """The reference files' texts by file name, and where they came from (kept with the
    version)."""

    files: dict[str, str]
    source: str = ""


class RegistryLoaded(BaseModel):
    """What a load did; ``warnings`` are printed totals that differ from their rows."""

    version: int
    unchanged: bool
    facilities: int
    items: int
    targets: int
    deadlines: int
    total_mismatches: list[dict[str, Any]] = []
    warnings: list[str] = []


class RegistryVersionRequest(Request):
    pass


class RegistryVersion(BaseModel):
    version: int


def load(store: Store, request: RegistryLoadRequest) -> RegistryLoaded:
    return RegistryLoaded.model_validate(asdict(store.load_registry(request.files, request.source)))


def version(store: Store, request: RegistryVersionRequest) -> RegistryVersion:
    return RegistryVersion(version=store.registry_version())
