"""The live summary of a running stack: events/s, accepted/rejected, per-facility counts.

On a terminal it redraws in place; otherwise it logs one line per tick, so a stack run by
a service manager still shows it is alive.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from infra.application.client import RemoteOperations
from infra.application.status import IntakeTotalsRequest
from infra.gateway import GatewayError, StackInfo
from infra.tables import format_number

log = logging.getLogger(__name__)


class LiveView:
    def __init__(self, info: StackInfo, data_dir: Path, feeder: Any, *, interactive: bool) -> None:
        self.info = info
        self.data_dir = data_dir
        self.feeder = feeder
        self.interactive = interactive
        self.operations = RemoteOperations.of(info)
        self._live: Live | None = None
        self._last: tuple[float, int] | None = None

    def __enter__(self) -> LiveView:
        if self.interactive:
            self._live = Live(self._render({}, {}), refresh_per_second=2, screen=False)
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()

    def refresh(self) -> None:
        try:
            _, status = self.info.api("/api/status", timeout=5)
            totals = self.operations.intake_totals(IntakeTotalsRequest()).root
        except GatewayError as exc:
            status, totals = {"ready": False, "reason": str(exc)}, {}
        if self._live is not None:
            self._live.update(self._render(status, totals))
        else:
            log.info(
                "live: ready=%s accepted=%s rejected=%s duplicates=%s rate=%s/s simulated=%s",
                status.get("ready"),
                totals.get("accepted"),
                totals.get("rejected"),
                totals.get("duplicates"),
                (status.get("intake") or {}).get("events_per_s"),
                getattr(self.feeder, "sent", None),
            )

    def _rate(self, accepted: int) -> float:
        now = time.monotonic()
        previous, self._last = self._last, (now, accepted)
        if previous is None or now <= previous[0]:
            return 0.0
        return max(0.0, (accepted - previous[1]) / (now - previous[0]))

    def _render(self, status: dict[str, Any], totals: dict[str, Any]) -> Group:
        intake = status.get("intake") or {}
        decided = sum(int(totals.get(k, 0)) for k in ("accepted", "rejected", "duplicates"))
        rate = self._rate(decided) if totals else 0.0
        head = Table.grid(padding=(0, 3))
        head.add_row(
            f"[b]{'SẴN SÀNG / READY' if status.get('ready') else 'ĐANG KHỞI ĐỘNG / STARTING'}[/b]",
            f"sự kiện/giây · events/s: [b]{format_number(round(rate, 1))}[/b]",
            f"chấp nhận · accepted: [green]{format_number(totals.get('accepted', 0))}[/green]",
            f"từ chối · rejected: [red]{format_number(totals.get('rejected', 0))}[/red]",
            f"trùng · duplicates: [yellow]{format_number(totals.get('duplicates', 0))}[/yellow]",
            f"độ trễ p99 · freshness p99: {_ms((intake.get('freshness') or {}).get('p99_ms'))}",
        )
        sim = ""
        if self.feeder is not None:
            clock = self.feeder.sim_clock
            sim = (
                f"mô phỏng · simulator: {format_number(self.feeder.sent)} sent, clock "
                f"{clock.strftime('%d/%m/%Y %H:%M') if clock else '—'}"
                + (f" [red]{self.feeder.error}[/red]" if self.feeder.error else "")
            )
        facilities = Table(title="Cơ sở · Facilities", title_justify="left", expand=False)
        for column in ("facility_id", "events", "doses", "latest event (local)"):
            facilities.add_column(column, justify="right" if column != "facility_id" else "left")
        busiest = sorted(totals.get("facilities", []), key=lambda r: -int(r["events"]))
        for row in busiest[:30]:
            facilities.add_row(
                row["facility_id"],
                format_number(row["events"]),
                format_number(row["doses"]),
                _local(row.get("latest_occurred_at")),
            )
        footer = (
            f"registry v{status.get('registry_version', '—')} · broker {self.info.bootstrap} · "
            f"API {self.info.api_url} · web {self.info.live_url} · "
            f"logs {self.data_dir}/logs · Ctrl-C dừng / stops · "
            f"write retries {intake.get('write_retries', 0)}"
        )
        return Group(
            Panel(head, title="ostwatch — Bắc Giang"), sim, facilities, f"[dim]{footer}[/dim]"
        )


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{format_number(round(value / 1000, 2))} s"


def _local(text: str | None) -> str:
    if not text:
        return "—"
    from datetime import datetime

    from ostwatch.timeutil import LOCAL_TZ

    return datetime.fromisoformat(text).astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M")
