"""The ``numident`` command: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from numident import __version__
from numident.cli import audit, demo, messenger, operator


def _version(value: bool) -> None:
    if value:
        typer.echo(f"numident {__version__}")
        raise typer.Exit


app = typer.Typer(name="numident", no_args_is_help=True, add_completion=False,
                  help="Identification exchange between instant messengers and mobile operators.")
app.add_typer(operator.app, name="operator")
app.add_typer(messenger.app, name="messenger")
app.add_typer(audit.app, name="audit")
app.command("demo")(demo.demo)


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """numident: operator gateways and messenger services."""


def main() -> None:
    app()
