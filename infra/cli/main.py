"""The ``ostwatch`` command group (CONTRACT §5), assembled from one module per command group
(as faust/cli does): infra/cli/<group>.py."""

from __future__ import annotations

import click

from infra.cli import (
    alerts,
    archive,
    audit,
    dashboards,
    deploy,
    export,
    ingest,
    notices,
    pseudonym,
    registry,
    report,
    simulate,
    stack,
)
from infra.cli.common import OstwatchGroup


@click.group(
    cls=OstwatchGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="ostwatch")
def main() -> None:
    """ostwatch — live monitoring of methadone/buprenorphine treatment programmes.

    Facilities' events flow through Kafka and Faust into ClickHouse. Start the whole
    stack with `ostwatch up`, load the reference files with `ostwatch registry load DIR`,
    feed events with `ostwatch ingest FILE` (or `ostwatch up --simulate`), and read the
    results with `ostwatch report …`.

    Settings come from OSTWATCH_* environment variables (docs/operations.md, "Configuration").
    """


for _module in (
    stack,
    registry,
    ingest,
    pseudonym,
    deploy,
    simulate,
    report,
    export,
    alerts,
    notices,
    dashboards,
    archive,
    audit,
):
    for _command in _module.COMMANDS:
        main.add_command(_command)
