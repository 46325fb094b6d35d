"""``simulate``: the simulated Bắc Giang province, published to the running stack or written
to files (the generators: producers/simulator/; the feeder thread: infra/simulation.py)."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from pathlib import Path

import click
import orjson

from infra.cli.common import UserError, data_dir_option, friendly_errors
from ostwatch.settings import BrokerSettings, StreamSettings, load
from ostwatch.timeutil import LOCAL_TZ


def _start_date(text: str | None, days: int) -> date:
    """--start, or else the day that makes the window end yesterday (every event in it has
    happened, so none is refused as coming from the future)."""
    if text:
        return date.fromisoformat(text)
    return datetime.now(LOCAL_TZ).date() - timedelta(days=days)


@click.command()
@data_dir_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write JSON Lines here instead of publishing.",
)
@click.option(
    "--registry-out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the province's registry CSVs here.",
)
@click.option(
    "--start",
    "start_text",
    metavar="YYYY-MM-DD",
    help="First simulated day (default: --days before today, so the window ends yesterday).",
)
@click.option("--days", type=int, default=7, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--scale", type=float, default=1.0, show_default=True, help="Patients × N (30 ≈ national)."
)
@click.option(
    "--speed",
    type=float,
    default=0.0,
    show_default=True,
    help="Real time × N; 0 = as fast as possible.",
)
@friendly_errors
def simulate(
    data_dir: Path,
    out: Path | None,
    registry_out: Path | None,
    start_text: str | None,
    days: int,
    seed: int,
    scale: float,
    speed: float,
) -> None:
    """Generate the simulated Bắc Giang province: publish to the running stack, or write files."""
    from infra.gateway import StackInfo
    from infra.simulation import start_simulation
    from producers.simulator.generator import generate
    from producers.simulator.province import build_province
    from producers.simulator.registry_files import write_registry

    start = _start_date(start_text, days)
    province = build_province(scale=scale, seed=seed, target_year=start.year)
    if registry_out is not None:
        write_registry(province, registry_out, live_from=start)
    events = generate(province, start=start, days=days, seed=seed)
    if out is not None:
        count = 0
        with out.open("wb") as handle:
            for item in events:
                handle.write(orjson.dumps(item.event) + b"\n")
                count += 1
        click.echo(f"wrote {count} events to {out}", err=True)
        return
    info = StackInfo.read(data_dir)
    if info is None:
        raise UserError(f"no running stack for {data_dir} (use --out FILE to write events instead)")
    feeder = start_simulation(
        info,
        speed or None,
        seed,
        days,
        threading.Event(),
        broker=load(BrokerSettings),
        stream=load(StreamSettings),
        province=province,
        start=start,
    )
    feeder.join()
    click.echo(f"published {feeder.sent} events", err=True)


COMMANDS = (simulate,)
