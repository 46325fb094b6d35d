"""Comparing report JSON: exact structure, floats within a tolerance.

Sums taken in another order (SQL aggregates against Python loops) round apart by a few units
in the last place, so floats match within 1e-6 (relative or absolute); everything else —
keys, row order, ints, strings, None — must be identical, and a float must be a float.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["TOLERANCE", "assert_same_json", "differences"]

TOLERANCE = 1e-6
ROW_KEYS = ("facility_id", "item", "date", "programme", "month", "year")


def differences(actual: Any, expected: Any, path: str = "$", limit: int = 10) -> list[str]:
    """Where ``actual`` differs from ``expected``, as ``path: actual != expected`` lines."""
    found: list[str] = []
    _walk(actual, expected, path, found, limit)
    return found


def _row_name(row: Any) -> str:
    """`` TF-01/MET10`` for a report row, so that a difference names its row."""
    if not isinstance(row, dict):
        return ""
    return " " + "/".join(str(row[key]) for key in ROW_KEYS if key in row)


def _walk(actual: Any, expected: Any, path: str, found: list[str], limit: int) -> None:
    if len(found) >= limit:
        return
    if isinstance(expected, float):
        if not isinstance(actual, float) or not math.isclose(
            actual, expected, rel_tol=TOLERANCE, abs_tol=TOLERANCE
        ):
            found.append(f"{path}: {actual!r} != {expected!r}")
    elif isinstance(expected, dict):
        if not isinstance(actual, dict):
            found.append(f"{path}: {actual!r} is not an object like {expected!r}")
        elif actual.keys() != expected.keys():
            found.append(f"{path}: keys {sorted(actual)} != {sorted(expected)}")
        else:
            for key in expected:
                _walk(actual[key], expected[key], f"{path}.{key}", found, limit)
    elif isinstance(expected, list):
        if not isinstance(actual, list):
            found.append(f"{path}: {actual!r} is not a list")
        elif len(actual) != len(expected):
            found.append(
                f"{path}: {len(actual)} rows != {len(expected)} rows\n"
                f"    actual:   {actual}\n    expected: {expected}"
            )
        else:
            for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
                _walk(a, e, f"{path}[{index}{_row_name(e)}]", found, limit)
    elif type(actual) is not type(expected) or actual != expected:
        found.append(f"{path}: {actual!r} != {expected!r}")


def assert_same_json(actual: Any, expected: Any, label: str = "$") -> None:
    """Fail with every difference (up to ten) if ``actual`` does not match ``expected``."""
    found = differences(actual, expected, label)
    assert not found, "\n".join(found)
