"""The ``ostwatch`` command group (CONTRACT §5), assembled from one module per command group
(as faust/cli does): infra/cli/<group>.py.

A command's module is imported only when that command runs (or help lists it): every call
of a data command is a new process, and importing all thirteen modules (the broker client,
the simulator, the exports…) cost more than the answer of a small report.
"""

from __future__ import annotations

import importlib

import click

from infra.cli.common import OstwatchGroup

# Each command name on the command line → (its module in infra/cli, its attribute there).
COMMAND_MODULES: dict[str, tuple[str, str]] = {
    "up": ("stack", "up"),
    "status": ("stack", "status"),
    "worker": ("stack", "worker"),
    "registry": ("registry", "registry"),
    "ingest": ("ingest", "ingest"),
    "pseudonymize": ("pseudonym", "pseudonymize"),
    "rekey-map": ("pseudonym", "rekey_map_command"),
    "security": ("deploy", "security"),
    "schema": ("deploy", "schema_command"),
    "cluster": ("deploy", "cluster_group"),
    "simulate": ("simulate", "simulate"),
    "report": ("report", "report"),
    "export": ("export", "export_group"),
    "alerts": ("alerts", "alerts"),
    "notices": ("notices", "notices"),
    "dashboards": ("dashboards", "dashboards"),
    "replay": ("archive", "replay_command"),
    "archive": ("archive", "archive"),
    "audit": ("audit", "audit"),
}


class LazyGroup(OstwatchGroup):
    """The top-level group: commands listed by name, each module imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMAND_MODULES, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            module_name, attribute = COMMAND_MODULES[cmd_name]
            module = importlib.import_module(f"infra.cli.{module_name}")
            self.add_command(getattr(module, attribute), cmd_name)
        return self.commands.get(cmd_name)


@click.group(
    cls=LazyGroup,
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
