"""``registry load``: the reference files of CONTRACT §2 as a new registry version."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from infra.application.registry import REGISTRY_FILES, RegistryLoadRequest
from infra.cli.common import (
    data_dir_option,
    emit,
    format_option,
    friendly_errors,
    operations,
    request,
)


@click.group()
def registry() -> None:
    """Reference files: facilities, items, targets, deadlines (CONTRACT §2)."""


@registry.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@data_dir_option
@format_option
@friendly_errors
def registry_load(directory: Path, data_dir: Path, output_format: str) -> None:
    """Load DIRECTORY's CSV files as a new registry version (earlier versions are kept)."""
    files = {
        name: (directory / name).read_text(encoding="utf-8-sig")
        for name in REGISTRY_FILES
        if (directory / name).is_file()
    }
    asked = request(RegistryLoadRequest, files=files, source=str(directory.resolve()))
    with operations(data_dir) as ops:
        result = ops.registry_load(asked).root
    state = "unchanged" if result.unchanged else "loaded"
    emit(
        asdict(result),
        output_format,
        f"registry version {result.version} {state}: {result.facilities} facilities, "
        f"{result.items} items, {result.targets} targets, "
        f"{result.deadlines} deadlines",
    )
    for warning in result.warnings:
        click.echo(f"ostwatch: cảnh báo / warning: {warning}", err=True)


COMMANDS = (registry,)
