"""``numident messenger ...``: run a messenger service, route numbers, identify accounts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.table import Table
from sqlalchemy import Engine

from numident.cli.common import (
    ConfigOption,
    console,
    count_lines,
    database,
    exits,
    progress_bar,
    serve_forever,
    settings,
)
from numident.core.accounts import AccountState
from numident.errors import NotFound
from numident.messenger.accounts import Account, AccountStore, validate_account_id
from numident.messenger.app import routing_service
from numident.messenger.keys import organizer_key
from numident.routing.ports import Kind, kind_of
from numident.routing.service import parse_numbers

app = typer.Typer(no_args_is_help=True, help="Run a messenger service and identify accounts.")


@app.command()
@exits
def serve(config: ConfigOption = None, host: str = "127.0.0.1", port: int = 8090) -> None:
    """Start the messenger service's HTTP server (uvicorn)."""
    from numident.messenger.app import create_app

    serve_forever(create_app, config, host, port, "messenger")


@app.command()
@exits
def migrate(config: ConfigOption = None) -> None:
    """Bring the messenger's database to the newest schema."""
    with database(settings(config), "messenger"):
        console.print("schema is up to date")


@app.command("public-key")
@exits
def public_key(config: ConfigOption = None) -> None:
    """Print the organizer's public key (JWK) to register with each operator."""
    console.print_json(json.dumps(organizer_key(settings(config)).public_jwk()))


@app.command("import-plan")
@exits
def import_plan(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    config: ConfigOption = None,
) -> None:
    """Load the national numbering plan (the registry's CSV, UTF-8 or Windows-1251).

    A file with any bad row is refused whole and the plan loaded before stays active.
    """
    loaded = settings(config)
    with database(loaded, "messenger") as engine, \
            progress_bar("importing numbering plan", count_lines(file)) as advance:
        report = routing_service(loaded, engine).import_plan(file, advance)
    console.print(f"numbering plan loaded: {report}")


@app.command("import-ports")
@exits
def import_ports(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    config: ConfigOption = None,
    kind: Annotated[Kind | None, typer.Option(
        help="full (replaces all ports) or increment; by default Port_Increment* files are "
        "increments and all others full snapshots")] = None,
) -> None:
    """Load the portability database: a full snapshot or an increment."""
    loaded = settings(config)
    chosen = kind_of(file, kind)
    with database(loaded, "messenger") as engine, \
            progress_bar(f"importing ports ({chosen})", count_lines(file)) as advance:
        report = routing_service(loaded, engine).import_ports(file, chosen, advance)
    console.print(f"portability data loaded: {report}")


@app.command()
@exits
def route(
    numbers: Annotated[list[str], typer.Argument(metavar="NUMBER...")],
    config: ConfigOption = None,
) -> None:
    """Show the operator that serves each number now (numbering plan + portability)."""
    parsed = parse_numbers(numbers)
    loaded = settings(config)
    with database(loaded, "messenger") as engine:
        results = routing_service(loaded, engine).route_many(parsed)
    table = Table("number", "operator", "ИНН", "region", "source")
    for result in results:
        operator = result.operator
        table.add_row(result.phone_number, operator.name if operator else "no operator",
                      operator.key if operator else "-", result.region or "-", result.source)
    console.print(table)


@app.command()
@exits
def identify(
    account: Annotated[str, typer.Argument(metavar="ACCOUNT")],
    number: Annotated[str, typer.Argument(metavar="NUMBER")],
    config: ConfigOption = None,
    code: Annotated[str | None, typer.Option(
        help="Confirm a code sent earlier instead of sending a new one")] = None,
    possession_proven: Annotated[bool, typer.Option(
        "--possession-proven", help="Skip the SMS: the holder was verified by other means")]
    = False,
) -> None:
    """Identify ACCOUNT on NUMBER: SMS code, then the operator's answer (exit 0 if identified).

    Without ``--code`` a code is sent by the configured SMS sender and asked for here.
    """
    from numident.messenger.app import build_service

    loaded = settings(config)

    async def run(engine: Engine) -> Account:
        service = build_service(loaded, engine=engine)
        try:
            if possession_proven:
                return await service.identify_now(account, number, possession_proven=True)
            given = code
            if given is None:
                sent = await service.set_phone_number(account, number)
                console.print(f"a code was sent to {sent.phone_number}")
                given = str(typer.prompt("code"))
            await service.confirm_possession(account, given.strip())
            console.print("possession proven; asking the operator ...")
            return await service.follow(account)
        finally:
            await service.aclose()

    with database(loaded, "messenger") as engine:
        result = anyio.run(run, engine)
    _print_account(result)
    if result.state is not AccountState.IDENTIFIED:
        raise typer.Exit(1)


@app.command()
@exits
def status(account: Annotated[str, typer.Argument(metavar="ACCOUNT")],
           config: ConfigOption = None) -> None:
    """Show an account's state (exit 1 when there is no such account)."""
    with database(settings(config), "messenger") as engine, engine.connect() as conn:
        found = AccountStore(None, None).get(conn, validate_account_id(account))
    if found is None:
        raise NotFound(f"no account {account}", code="ACCOUNT_NOT_FOUND")
    _print_account(found)


def _print_account(account: Account) -> None:
    table = Table("field", "value", title=f"account {account.account_id}")
    rows = [("phone number", account.phone_number), ("state", account.state.value),
            ("can send", "yes" if account.can_send else "no"),
            ("operator", f"{account.operator_name or ''} ({account.operator_inn})"
             if account.operator_inn else None),
            ("identification code", account.identification_code),
            ("reason", account.reason), ("updated", account.updated_at.isoformat()),
            ("SIM swapped", account.sim_swapped_at.isoformat()
             if account.sim_swapped_at else None)]
    for name, value in rows:
        table.add_row(name, value or "-")
    console.print(table)


@app.command()
@exits
def openapi(config: ConfigOption = None) -> None:
    """Print the messenger service's OpenAPI document (the one it serves at /openapi.json)."""
    import tempfile

    from numident.messenger.app import create_app

    with tempfile.TemporaryDirectory() as home:
        loaded = settings(config, home=home, database_url=f"sqlite:///{home}/openapi.db")
        document = create_app(loaded, background=False).openapi()
    typer.echo(json.dumps(document, ensure_ascii=False, sort_keys=True, indent=2))
