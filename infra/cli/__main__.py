"""``python -m infra.cli``: the ``ostwatch`` command (the stack starts its worker this way)."""

from infra.cli.main import main

if __name__ == "__main__":
    main()
