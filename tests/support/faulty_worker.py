"""``ostwatch worker`` with a switch that makes ClickHouse fail, for the fault tests.

While the file named by ``OSTWATCH_TEST_CLICKHOUSE_DOWN`` exists, every statement the worker
sends to ClickHouse fails as a lost connection does (``StoreUnavailable``), before it reaches
the engine; if the file says ``refuse``, every statement fails as one ClickHouse refuses
does (an error no retry covers). Everything else is the real worker: the real broker,
Faust, chDB and retry loop.
Run as ``python -m tests.support.faulty_worker`` with the worker's usual environment.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sinks.clickhouse import ClickHouse, StoreUnavailable

SWITCH_ENV = "OSTWATCH_TEST_CLICKHOUSE_DOWN"


def _failing_while_down(method: Callable[..., Any], switch: Path) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: ClickHouse, *args: Any, **kwargs: Any) -> Any:
        try:
            mode = switch.read_text().strip()
        except FileNotFoundError:
            return method(self, *args, **kwargs)
        if mode == "refuse":
            raise RuntimeError("Injected failure: Code: 62. a statement ClickHouse refuses")
        raise StoreUnavailable("Injected failure: connection refused (ClickHouse down)")

    return wrapper


def install(switch: Path) -> None:
    """Route every ClickHouse call of this process through the switch."""
    for name in ("command", "query_rows", "query_dicts", "insert_columns"):
        setattr(ClickHouse, name, _failing_while_down(getattr(ClickHouse, name), switch))


def main() -> None:
    from infra.cli import main as cli

    install(Path(os.environ[SWITCH_ENV]))
    cli(["worker"])


if __name__ == "__main__":
    main()
