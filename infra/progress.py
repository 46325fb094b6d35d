"""Progress bars on a terminal (stderr), silent otherwise, so JSON on stdout stays clean."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress


class Progress:
    """A few named bars; a no-op when ``enabled`` is False."""

    def __init__(self, enabled: bool) -> None:
        self._bars: RichProgress | None = None
        if enabled:
            self._bars = RichProgress(
                TextColumn("{task.description:>18}"),
                BarColumn(),
                MofNCompleteColumn(),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )

    def __enter__(self) -> Progress:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()

    def add(self, description: str, total: int) -> TaskID:
        return self._bars.add_task(description, total=total) if self._bars else TaskID(0)

    def advance(self, task: TaskID, steps: int = 1) -> None:
        if self._bars is not None:
            self._bars.advance(task, steps)

    def update(self, task: TaskID, completed: int) -> None:
        if self._bars is not None:
            self._bars.update(task, completed=completed)
