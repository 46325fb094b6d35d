"""The imports this layout depends on (issue 16): storage never reaches the stream processor or
the entry points, the stream processor never the entry points or the dashboards, and the
labels module is a leaf that anyone may import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported(package: str) -> dict[str, set[str]]:
    """Every module of ``package`` → the top-level names of what it imports (ours or not)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("sinks", ("streams", "infra", "dashboards", "producers")),
        ("streams", ("infra", "dashboards", "producers")),
        ("dashboards", ("streams", "infra")),
    ],
)
def test_a_package_does_not_import_the_ones_that_build_on_it(
    package: str, forbidden: tuple[str, ...]
) -> None:
    wrong = {
        module: sorted(name for name in names if name.split(".")[0] in forbidden)
        for module, names in imported(package).items()
    }
    assert {module: names for module, names in wrong.items() if names} == {}


def test_the_labels_are_a_leaf() -> None:
    ours = ("ostwatch", "schemas", "producers", "streams", "sinks", "dashboards", "infra")
    names = imported("schemas")["schemas/labels.py"]
    assert not [name for name in names if name.split(".")[0] in ours]
