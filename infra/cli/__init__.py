"""The ``ostwatch`` command line: ``main`` (infra/cli/main.py) and one module per command
group; ``python -m infra.cli`` runs it too."""

from __future__ import annotations

from infra.cli.main import main

__all__ = ["main"]
