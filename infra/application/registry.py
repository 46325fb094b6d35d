"""The registry (CONTRACT §2): loading a directory's reference files as a new version."""

from __future__ import annotations

from pydantic import BaseModel, RootModel

from infra.application.common import Request
from schemas.reference import REGISTRY_FILES
from sinks.store import RegistryLoad, Store

__all__ = ["REGISTRY_FILES", "RegistryLoadRequest", "RegistryLoaded", "load", "version"]


class RegistryLoadRequest(Request):
    """The reference files' texts by file name, and where they came from (kept with the
    version)."""

    files: dict[str, str]
    source: str = ""


class RegistryLoaded(RootModel[RegistryLoad]):
    """What a load did (``sinks.store.RegistryLoad``); ``warnings`` are printed totals that
    differ from their rows."""


class RegistryVersionRequest(Request):
    pass


class RegistryVersion(BaseModel):
    version: int


def load(store: Store, request: RegistryLoadRequest) -> RegistryLoaded:
    return RegistryLoaded(store.load_registry(request.files, request.source))


def version(store: Store, request: RegistryVersionRequest) -> RegistryVersion:
    return RegistryVersion(version=store.registry_version())
