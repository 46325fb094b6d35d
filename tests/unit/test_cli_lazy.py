"""The top-level command group imports a command's module only when it runs, and its table
of names names every command each module offers (a new command cannot be forgotten)."""

from __future__ import annotations

import importlib
import subprocess
import sys

from infra.cli.main import COMMAND_MODULES


def test_the_table_names_every_command_of_every_module_once() -> None:
    by_module: dict[str, set[str]] = {}
    for name, (module_name, attribute) in COMMAND_MODULES.items():
        module = importlib.import_module(f"infra.cli.{module_name}")
        command = getattr(module, attribute)
        assert command.name == name
        by_module.setdefault(module_name, set()).add(name)
    for module_name, names in by_module.items():
        module = importlib.import_module(f"infra.cli.{module_name}")
        assert {command.name for command in module.COMMANDS} == names, module_name


def test_a_report_loads_neither_other_commands_nor_the_kafka_client() -> None:
    probe = (
        "import sys\n"
        "from infra.cli.main import main\n"
        "main(['report', '--help'], standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('infra.cli.', 'kafka'))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    assert loaded == str(["infra.cli.common", "infra.cli.main", "infra.cli.report"])
