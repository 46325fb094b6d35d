"""bench/compare.py's table: ratios the right way round, lower bounds shown as such."""

from __future__ import annotations

from typing import Any

from bench.compare import table


def _freshness(p50: float | None, p99: float | None, bound: float | None = None) -> dict[str, Any]:
    return {
        "sustained_rate": 1990.0 if bound is None else 90.0,
        "p50_ms": p50,
        "p99_ms": p99,
        "p50_ms_at_least": bound if p50 is None else None,
        "p99_ms_at_least": bound if p99 is None else None,
    }


def test_table_ratios_and_bounds() -> None:
    results = {
        "ours": {
            "throughput": {"events_per_s": 12000.0, "complete": True},
            "freshness": _freshness(400, 1000),
        },
        "quix": {
            "throughput": {"events_per_s": 8000.0, "complete": True},
            "freshness": _freshness(600, 1500),
        },
        "plain": {
            "throughput": {
                "events_per_s": 100.0,
                "complete": False,
                "decided": 6000,
                "events": 100000,
                "seconds": 60.0,
            },
            "freshness": _freshness(None, None, bound=30000),
        },
    }
    lines = table(results, 2000).splitlines()
    quix = next(line for line in lines if line.startswith("Quix"))
    plain = next(line for line in lines if line.startswith("plain"))
    cells = [cell.strip() for cell in quix.split("|")]
    # ours/it on throughput: 12000 / 8000; it/ours on p99: 1500 / 1000
    assert cells[1:] == ["8,000", "1.50", "1,990/s", "600 ms", "1,500 ms", "1.50"]
    cells = [cell.strip() for cell in plain.split("|")]
    assert cells[1:] == ["100*", "120.00", "90/s", "> 30 s", "> 30 s", "> 30.00"]
    assert lines[-1].startswith("* plain consumer")
    assert "6,000 of 100,000 events decided in 60 s" in lines[-1]
