"""The package as pyproject.toml and the Dockerfile declare it, checked without building it.

What is imported at run time must be a declared runtime dependency (PyYAML was only a dev
extra, so `dashboards export` failed when installed); every package directory must be found
by the build's discovery (a hand list once left out streams/alerts); the image installs the
built wheel. tests/integration/test_installed_package.py builds and runs the real thing.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("ostwatch", "schemas", "producers", "streams", "sinks", "dashboards", "infra")


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    loaded: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return loaded


def imported_names(path: Path) -> set[str]:
    """Top-level names of every absolute import in a module, lazy ones inside functions too."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def product_modules() -> list[Path]:
    return sorted(p for top in PRODUCT for p in (ROOT / top).rglob("*.py"))


# Standard modules whose data comes from a distribution where the system has none.
DATA_DISTRIBUTIONS = {"zoneinfo": "tzdata"}


def test_every_third_party_import_is_a_runtime_dependency(pyproject: dict[str, Any]) -> None:
    declared = {
        canonicalize_name(Requirement(r).name) for r in pyproject["project"]["dependencies"]
    }
    providers = importlib.metadata.packages_distributions() | {
        module: [distribution] for module, distribution in DATA_DISTRIBUTIONS.items()
    }
    standard = sys.stdlib_module_names - DATA_DISTRIBUTIONS.keys()
    undeclared: dict[str, list[str]] = {}
    for path in product_modules():
        for name in imported_names(path) - set(PRODUCT) - standard:
            distributions = {canonicalize_name(d) for d in providers.get(name, [])}
            assert distributions, f"{path.relative_to(ROOT)} imports {name}, which nothing provides"
            if not distributions & declared:
                undeclared.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not undeclared, f"imported at run time but not in [project].dependencies: {undeclared}"


def test_the_import_walk_sees_lazy_imports() -> None:
    """The check above would be empty if it missed imports inside functions."""
    assert "yaml" in imported_names(ROOT / "dashboards" / "provisioning.py")
    assert "aiokafka" in imported_names(ROOT / "streams" / "kafka_compat.py")  # in a function


def test_discovery_finds_every_package(pyproject: dict[str, Any]) -> None:
    """setuptools' find: a dotted name is in when it matches an include pattern and no
    exclude pattern; every directory holding an __init__.py must be in."""
    packages_config = pyproject["tool"]["setuptools"]["packages"]
    assert isinstance(packages_config, dict), "found, not a hand-written list"
    find = packages_config["find"]
    assert find.get("namespaces", True), "data directories ship as namespace packages"
    packages = sorted(
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in PRODUCT
        for init in (ROOT / top).rglob("__init__.py")
    )
    assert "streams.alerts" in packages

    def found(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in find["include"]) and not any(
            fnmatch.fnmatchcase(name, p) for p in find.get("exclude", [])
        )

    assert [name for name in packages if not found(name)] == []
    assert not any(found(name) for name in ("tests", "tests.unit", "bench"))


def test_license_is_an_spdx_expression_with_its_text(pyproject: dict[str, Any]) -> None:
    project = pyproject["project"]
    assert project["license"] == "Apache-2.0"
    assert [(ROOT / f).is_file() for f in project["license-files"]] == [True]
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    (requirement,) = pyproject["build-system"]["requires"]
    # SPDX license expressions and license-files need setuptools 77 (PEP 639).
    assert requirement == "setuptools>=77"


def stages(dockerfile: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), one list per FROM."""
    text = re.sub(r"\\\n", " ", dockerfile)
    found: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            found.append([])
        found[-1].append(line)
    return found


def test_the_image_installs_the_built_wheel_and_nothing_else() -> None:
    build, runtime = stages((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    assert build[0].endswith(" AS build")
    assert any("python -m build" in line for line in build)
    copies = [line for line in runtime if line.startswith("COPY")]
    assert copies == ["COPY --from=build /dist/*.whl /tmp/dist/"], "only the wheel reaches it"
    installs = [line for line in runtime if "pip install" in line]
    assert len(installs) == 1 and "pip install --no-cache-dir /tmp/dist/*.whl" in installs[0]
    assert "USER ostwatch" in runtime
    assert runtime[-1] == 'CMD ["ostwatch", "worker"]'


def test_the_build_context_keeps_what_the_build_needs() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    needed = ["pyproject.toml", "README.md", "LICENSE", *PRODUCT]
    assert [n for n in needed if any(fnmatch.fnmatchcase(n, p) for p in ignored)] == []
    assert {".venv", ".git", "tests"} <= set(ignored)
