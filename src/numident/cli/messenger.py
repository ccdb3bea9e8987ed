"""``numident messenger ...``: run a messenger service, route numbers, identify accounts."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.table import Table
from sqlalchemy import Engine

from numident.cli import audit
from numident.cli.common import (
    ConfigOption,
    console,
    count_lines,
    database,
    errors,
    exits,
    migrate_schema,
    operator_progress,
    progress_bar,
    serve_forever,
    settings,
)
from numident.cli.reports import Format, FormatOption, FromOption, ToOption, period, render
from numident.config import Settings
from numident.core.accounts import AccountState
from numident.core.clock import SystemClock
from numident.errors import InvalidInput, NotFound
from numident.messenger.accounts import Account
from numident.messenger.bootstrap import bootstrap, routing_service
from numident.messenger.channels import Channel
from numident.messenger.keys import organizer_key
from numident.messenger.report import OperatorDay
from numident.messenger.service import MessengerService
from numident.routing.ports import Kind, kind_of
from numident.routing.service import parse_numbers

app = typer.Typer(no_args_is_help=True, help="Run a messenger service and identify accounts.")
app.add_typer(audit.messenger_app, name="audit")


@app.command()
@exits
def serve(config: ConfigOption = None, host: str = "127.0.0.1", port: int = 8090) -> None:
    """Start the messenger service's HTTP server (uvicorn)."""
    from numident.messenger.app import create_app

    serve_forever(create_app, config, host, port, "messenger")


@app.command()
@exits
def migrate(config: ConfigOption = None) -> None:
    """Bring the messenger's database to the newest schema (``serve`` does it at start too)."""
    migrate_schema(settings(config), "messenger")


@app.command("public-key")
@exits
def public_key(config: ConfigOption = None) -> None:
    """Print the organizer's public key (JWK) to register with each operator."""
    console.print_json(json.dumps(organizer_key(settings(config)).public_jwk()))


AllowShrink = Annotated[bool, typer.Option(
    "--allow-shrink", help="Accept a full load that loses more of the active data than "
    "messenger.routing.max_shrink_percent (the registry really shrank)")]


def _waiting(holder: str) -> None:
    errors.print(f"waiting for another routing load to end: {holder}", highlight=False,
                 markup=False)


@app.command("import-plan")
@exits
def import_plan(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    config: ConfigOption = None,
    allow_shrink: AllowShrink = False,
) -> None:
    """Load the national numbering plan (the registry's CSV, UTF-8 or Windows-1251).

    A file with any bad row, an empty plan, or one that would stop routing more than the
    allowed share of the numbers routed now is refused whole (exit 2) and the plan loaded
    before stays active. Waits for a running routing load; refused (exit 1) if it does not
    end within messenger.routing.load_wait_seconds.
    """
    loaded = settings(config)
    with database(loaded, "messenger") as engine, \
            progress_bar("importing numbering plan", count_lines(file)) as advance:
        report = routing_service(loaded, engine).import_plan(
            file, advance, allow_shrink=allow_shrink, waiting=_waiting)
    console.print(f"numbering plan loaded: {report}")


@app.command("import-ports")
@exits
def import_ports(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    config: ConfigOption = None,
    kind: Annotated[Kind | None, typer.Option(
        help="full (replaces all ports) or increment; by default Port_Increment* files are "
        "increments and all others full snapshots")] = None,
    allow_shrink: AllowShrink = False,
) -> None:
    """Load the portability database: a full snapshot or an increment.

    Refused whole (exit 2): a bad row, an empty snapshot, a national export whose RowCount
    is not the rows it holds, a snapshot with fewer ports than the allowed share of the
    active ones. An increment that arrives during a full load waits and then applies on
    top of it.
    """
    loaded = settings(config)
    chosen = kind_of(file, kind)
    with database(loaded, "messenger") as engine, \
            progress_bar(f"importing ports ({chosen})", count_lines(file)) as advance:
        report = routing_service(loaded, engine).import_ports(
            file, chosen, advance, allow_shrink=allow_shrink, waiting=_waiting)
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
        "--possession-proven", help="Skip the code: the holder was verified by other means")]
    = False,
    channel: Annotated[Channel | None, typer.Option(
        help="How the code is sent (default: messenger.channels); a flash call's code is the "
        "last digits of the number that calls")] = None,
) -> None:
    """Identify ACCOUNT on NUMBER: a code, then the operator's answer (exit 0 if identified).

    Without ``--code`` a code is sent by the configured provider of the channel and asked
    for here.
    """
    loaded = settings(config)

    async def run(engine: Engine) -> Account:
        async with _service(loaded, engine) as service:
            if possession_proven:
                return await service.identify_now(account, number, possession_proven=True)
            given = code
            if given is None:
                sent = await service.set_phone_number(
                    account, number, channel=channel.value if channel else None)
                used = service.code_channel(account, str(sent.phone_number))
                console.print(f"a code was sent to {sent.phone_number} "
                              f"({_channel_said(loaded, used)})")
                given = str(typer.prompt("code"))
            await service.confirm_possession(account, given.strip())
            console.print("possession proven; asking the operator ...")
            return await service.follow(account)

    with database(loaded, "messenger") as engine:
        result = anyio.run(run, engine)
    _print_account(result)
    if result.state is not AccountState.IDENTIFIED:
        raise typer.Exit(1)


@contextlib.asynccontextmanager
async def _service(loaded: Settings, engine: Engine) -> AsyncIterator[MessengerService]:
    """The messenger's use cases over ``engine``, closed when the command is done."""
    service = bootstrap(loaded, engine=engine).service
    try:
        yield service
    finally:
        await service.aclose()


def _channel_said(loaded: Settings, used: str | None) -> str:
    if used == Channel.FLASH_CALL.value:
        digits = loaded.messenger.flash_call.code_digits
        return f"by flash call: the code is the last {digits} digits of the calling number"
    return f"by {str(used).replace('_', ' ')}"


@app.command("identify-all")
@exits
def identify_all(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="CSV: account_id,phone_number,"
                                         "possession_proven_at")],
    config: ConfigOption = None,
    unidentified: Annotated[Path, typer.Option(
        help="Where to write the accounts not identified, with their reasons")]
    = Path("unidentified.csv"),
    batch_size: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
    concurrency: Annotated[int, typer.Option(min=1, max=64,
                                             help="Batches in flight per operator")] = 4,
    give_up_after: Annotated[float, typer.Option(
        min=1, help="Seconds without a usable answer before an operator is left for the "
        "next run")] = 1200.0,
) -> None:
    """Identify an existing user base in bulk: route, batch per operator, resume on restart.

    Exit 0 when every account was answered; 1 when some operator gave no usable answer (its
    accounts wait for the next run of the same command); 2 when the file is bad.
    """
    loaded = settings(config)

    async def run(engine: Engine) -> bool:
        async with _service(loaded, engine) as service:
            job = service.bulk_identification(
                batch_size=batch_size, concurrency=concurrency, give_up_seconds=give_up_after,
                on_trouble=lambda inn, why: errors.print(f"operator {inn}: {why}",
                                                         highlight=False))
            # The file is checked whole first (exit 2, nothing stored); its accounts are then
            # stored and routed while the first batches are out.
            with service.bulk_loading(file) as stream, operator_progress() as bars:
                result = await job.run(bars, stream)
            console.print(f"accounts loaded: {stream.report}")
            for run in result.operators.values():
                if run.stopped:
                    errors.print(f"operator {run.inn}: {run.stopped}; its accounts stay "
                                 "queued for the next run", highlight=False)
            table = Table("operator", "ИНН", "status", "accounts", title="bulk identification")
            for name, inn, state, count in service.bulk_summary():
                table.add_row(name, inn, state, str(count))
            console.print(table)
            with unidentified.open("w", encoding="utf-8", newline="") as target:
                written = service.write_unidentified(target)
            console.print(f"{written} accounts not identified, with their reasons: "
                          f"{unidentified}")
            return result.complete

    with database(loaded, "messenger") as engine:
        complete = anyio.run(run, engine)
    if not complete:
        raise typer.Exit(1)


@app.command()
@exits
def status(account: Annotated[str, typer.Argument(metavar="ACCOUNT")],
           config: ConfigOption = None) -> None:
    """Show an account's state (exit 1 when there is no such account)."""
    loaded = settings(config)

    async def look(engine: Engine) -> Account:
        async with _service(loaded, engine) as service:
            return service.status(account)

    with database(loaded, "messenger") as engine:
        _print_account(anyio.run(look, engine))


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


REPORT_COLUMNS = [
    ("operator", "operator"), ("inn", "ИНН"), ("day", "day"), ("identified", "identified"),
    ("refused", "refused"), ("unanswered", "unanswered"), ("identify_p50", "identify p50 s"),
    ("identify_p95", "identify p95 s"), ("notices", "notices"), ("blocked", "blocked"),
    ("reidentified", "re-identified"), ("reidentify_p50", "re-identify p50 s"),
    ("reidentify_p95", "re-identify p95 s"),
]


@app.command()
@exits
def report(
    start: FromOption,
    end: ToOption,
    operator: Annotated[str | None, typer.Option(
        help="Only this operator's figures (its configured name or ИНН)")] = None,
    how: FormatOption = Format.TABLE,
    config: ConfigOption = None,
) -> None:
    """Per operator and UTC day: identifications, refusals, unanswered, time to identify,
    notices, accounts blocked and how long until identified again, from the audit trail."""
    first, last = period(start, end, SystemClock().now())
    chosen = settings(config)

    async def figures(engine: Engine) -> list[OperatorDay]:
        async with _service(chosen, engine) as service:
            return service.report(first, last, operator)

    with database(chosen, "messenger") as engine:
        try:
            days = anyio.run(figures, engine)
        except NotFound as exc:
            raise InvalidInput(exc.message) from exc
    render([d.as_dict() for d in days], REPORT_COLUMNS, how,
           f"identifications from {first} to {last} (UTC)")
