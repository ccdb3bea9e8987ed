"""``numident demo``: the whole exchange on loopback, with synthetic data."""

from __future__ import annotations

from typing import Annotated

import typer


def demo(
    serve: Annotated[bool, typer.Option(
        "--serve", help="Keep the servers running after the walk-through and print their URLs")]
    = False,
) -> None:
    """Run three operator gateways and a messenger service on loopback and show the exchange."""
    from numident.demo import run

    raise typer.Exit(run(serve=serve))
