"""The ``numident`` console script: the CLI, or one line saying how to install it.

The base install (``pip install numident``) is the organizer's client alone; the CLI's
modules import the servers' dependencies, which ``numident[server]`` brings.
"""

from __future__ import annotations

import sys

SERVER_EXTRA = "pip install 'numident[server]'"


def main() -> None:
    """Run the CLI; exit 1 with a one-line message when a dependency of the CLI is missing."""
    try:
        from numident.cli.main import main as run  # imports typer, fastapi, sqlalchemy, ...
    except ModuleNotFoundError as exc:
        missing = exc.name or "a dependency"
        if missing.split(".")[0] == "numident":
            raise  # a broken install of numident itself, not a missing extra
        sys.stderr.write(f"numident: the command needs the server dependencies ({missing} "
                         f"is not installed): {SERVER_EXTRA}\n")
        raise SystemExit(1) from None
    run()
