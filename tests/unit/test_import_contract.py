"""The architecture as a contract: pyproject's [tool.importlinter], run as `make lint` runs it.

The contract holds on the real tree, and fails on a copy of it with one wrong import planted:
storage importing the stream processor, a dashboard importing the stream, a producer importing
storage, schemas importing the shared kernel, a sink importing Faust. Each copy runs
``lint-imports`` in a child process, whose path starts at the copy, so the graph is the copy's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "importlinter"
]
PACKAGES: tuple[str, ...] = tuple(CONFIG["root_packages"])
# The command `make lint` runs, from this interpreter's environment.
LINT_IMPORTS = (str(Path(sys.executable).with_name("lint-imports")), "--no-cache")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the packages under ``root``, with ``root``'s pyproject.toml."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(root)}
    return subprocess.run(
        [*LINT_IMPORTS, "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the product's Python sources and pyproject.toml."""
    copy = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            copy / package,
            ignore=lambda _, names: [n for n in names if n == "__pycache__"],
        )
    shutil.copy2(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_the_real_tree_keeps_the_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_the_copy_keeps_the_contract_before_anything_is_planted(tree: Path) -> None:
    """The copy alone passes, so a failure below is the planted import's."""
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("sinks/planted.py", "import streams.alerts.engine", "sinks.planted -> streams"),
        ("dashboards/planted.py", "from streams import app", "dashboards.planted -> streams"),
        ("sinks/planted.py", "import infra.worker", "sinks.planted -> infra"),
        ("producers/planted.py", "import sinks.store", "producers.planted -> sinks"),
        ("schemas/planted.py", "import ostwatch.timeutil", "schemas.planted -> ostwatch"),
        ("sinks/planted.py", "import faust", "sinks.planted -> faust"),
    ],
)
def test_a_planted_wrong_import_breaks_the_contract(
    tree: Path, module: str, line: str, broken: str
) -> None:
    planted = tree / module
    planted.write_text(f'"""A wrong import, planted by the test."""\n\n{line}\n', encoding="utf-8")
    try:
        result = lint_imports(tree)
    finally:
        planted.unlink()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout, result.stdout
    assert broken in result.stdout, result.stdout
