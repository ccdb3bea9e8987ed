"""``numident operator ...``: run and administer an operator gateway."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from numident.cli import audit
from numident.cli.common import (
    ConfigOption,
    console,
    count_lines,
    database,
    exits,
    migrate_schema,
    progress_bar,
    serve_forever,
    settings,
)
from numident.cli.reports import Format, FormatOption, FromOption, ToOption, period, render
from numident.client.keys import ensure_private_key
from numident.config import Settings
from numident.core.clock import SystemClock, rfc3339
from numident.core.notices import NoticeType
from numident.core.numbers import normalize
from numident.errors import InvalidInput, NotFound
from numident.operator import bootstrap, ciba, organizers, registry, sla
from numident.operator.authorization import Authentication
from numident.operator.bootstrap import signing_key_path
from numident.outbox.tables import STATUSES
from numident.trust.holder_key import holder_key

app = typer.Typer(no_args_is_help=True, help="Run and administer an operator gateway.")
report = typer.Typer(no_args_is_help=True, help="Figures from the audit trail.")
app.add_typer(report, name="report")
app.add_typer(audit.operator_app, name="audit")


@app.command()
@exits
def serve(config: ConfigOption = None, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Start the gateway's HTTP server (uvicorn).

    Without ``operator.public_url`` the gateway's issuer is ``http://HOST:PORT``.
    """
    from numident.operator.app import create_app

    listening = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    serve_forever(lambda loaded: create_app(loaded, listen_url=listening), config, host, port,
                  "operator")


@app.command()
@exits
def migrate(config: ConfigOption = None) -> None:
    """Bring the gateway's database to the newest schema (``serve`` does it at start too)."""
    migrate_schema(settings(config), "operator")


@app.command("public-key")
@exits
def public_key(config: ConfigOption = None) -> None:
    """Print the gateway's public key (JWK) for organizers to register."""
    key = ensure_private_key(signing_key_path(settings(config)))
    console.print_json(json.dumps(key.public_jwk()))


@app.command("import-subscribers")
@exits
def import_subscribers(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    config: ConfigOption = None,
    partial: Annotated[bool, typer.Option(
        "--partial", help="Load good rows and write bad ones to --reject-file")] = False,
    reject_file: Annotated[Path | None, typer.Option(help="Where --partial writes bad rows")]
    = None,
) -> None:
    """Load the billing export (phone_number,contract_id,status,activated_at) idempotently."""
    if partial and reject_file is None:
        raise InvalidInput("--partial needs --reject-file to say where bad rows go")
    loaded = settings(config)
    with database(loaded, "operator") as engine, \
            progress_bar("importing subscribers", count_lines(file)) as advance:
        report = registry.import_subscribers(
            engine, file, now=SystemClock().now(), notice_source=loaded.operator.base_url(),
            partial=partial, reject_file=reject_file, progress=advance,
            holder_key=holder_key(loaded), regions=loaded.operator.allowed_regions,
            handlers=bootstrap.lifecycle_handlers(),
            columns=bootstrap.registry_columns())
    for earlier in report.resumed:
        console.print(f"completed an interrupted import of {earlier.rows} rows: "
                      f"{earlier.inserted} new, {earlier.updated} changed, "
                      f"{earlier.unchanged} unchanged; {earlier.notices} notices queued in all")
    newer = (f", {report.superseded} left as newer lifecycle events made them"
             if report.superseded else "")
    console.print(f"{report.rows} rows: {report.inserted} new, {report.updated} changed, "
                  f"{report.unchanged} unchanged{newer}, {report.rejected} rejected; "
                  f"{report.notices} notices queued")
    if report.rejected:
        console.print(f"rejected rows written to {escape(str(reject_file))}")


@app.command("add-organizer")
@exits
def add_organizer(
    name: str,
    notice_url: Annotated[str, typer.Option("--notice-url", help="Where notices are POSTed")],
    public_key_file: Annotated[Path, typer.Option(
        "--public-key", exists=True, dir_okay=False,
        help="The organizer's public key (PEM or JWK)")],
    config: ConfigOption = None,
    replace: bool = typer.Option(False, "--replace", help="Update an existing organizer"),
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help="An OAuth2 scope it may be granted (repeat; default identification)")]
    = None,
    redirect_uri: Annotated[list[str] | None, typer.Option(
        "--redirect-uri", help="A redirect URI of its authorization-code flow (repeat)")] = None,
    rate_limit: Annotated[int | None, typer.Option(
        "--rate-limit", min=1, help="Identification items per second (per replica); default: "
        "operator.limits.rate_limit")] = None,
    daily_quota: Annotated[int | None, typer.Option(
        "--daily-quota", min=1, help="Identification items per UTC day; default: "
        "operator.limits.daily_quota")] = None,
) -> None:
    """Register an organizer: its name is its OAuth2 client_id."""
    loaded = settings(config)
    with database(loaded, "operator") as engine:
        record = bootstrap.gateway(loaded, engine).register_organizer(
            name, notice_url, public_key_file.read_text(encoding="utf-8"), replace=replace,
            scopes=scope or organizers.DEFAULT_SCOPES, redirect_uris=redirect_uri or (),
            limits=organizers.Limits(rate_limit, daily_quota))
    console.print(f"organizer {record.name} registered; notices go to {record.notice_url}; "
                  f"scopes: {' '.join(sorted(record.scopes))}; {_describe(record.limits)}")


def _limit_option(value: str | None, current: int | None, option: str) -> int | None:
    """``N``, ``default`` (the gateway's default) or unset (keep ``current``)."""
    if value is None:
        return current
    if value == "default":
        return None
    if not value.isdigit() or int(value) < 1:
        raise InvalidInput(f"{option} must be a whole number of at least 1 or 'default', "
                           f"not {value!r}")
    return int(value)


def _describe(limits: organizers.Limits) -> str:
    rate = f"{limits.rate_limit}/s" if limits.rate_limit else "default"
    quota = f"{limits.daily_quota}/day" if limits.daily_quota else "default"
    return f"rate limit {rate}, daily quota {quota}"


@app.command("set-limits")
@exits
def set_limits(
    name: str,
    rate_limit: Annotated[str | None, typer.Option(
        "--rate-limit", metavar="N|default",
        help="Identification items per second (per replica)")] = None,
    daily_quota: Annotated[str | None, typer.Option(
        "--daily-quota", metavar="N|default", help="Identification items per UTC day")] = None,
    config: ConfigOption = None,
) -> None:
    """Change an organizer's limits; 'default' returns one to the gateway's default.

    Serving gateways read limits afresh every second, so the change applies within one.
    """
    loaded = settings(config)
    with database(loaded, "operator") as engine:
        use_cases = bootstrap.gateway(loaded, engine)
        current = use_cases.organizer(name).limits
        record = use_cases.set_limits(name, organizers.Limits(
            _limit_option(rate_limit, current.rate_limit, "--rate-limit"),
            _limit_option(daily_quota, current.daily_quota, "--daily-quota")))
    console.print(f"organizer {name}: {_describe(record.limits)}")


@app.command("network-session")
@exits
def network_session(
    session_id: Annotated[str, typer.Argument(metavar="SESSION",
                                              help="Client address or enrichment id")],
    number: Annotated[str | None, typer.Argument(metavar="NUMBER")] = None,
    authentication: Annotated[Authentication, typer.Option(
        case_sensitive=False, help="How the network knows the line")]
    = Authentication.NETWORK,
    end: bool = typer.Option(False, "--end", help="Forget the session instead"),
    config: ConfigOption = None,
) -> None:
    """Record which line a network session belongs to (three-legged tokens use it)."""
    loaded = settings(config)
    with database(loaded, "operator") as engine:
        use_cases = bootstrap.gateway(loaded, engine)
        if end:
            use_cases.end_session(session_id)
            console.print(f"session {session_id} forgotten")
            return
        if number is None:
            raise typer.BadParameter("NUMBER is required unless --end is given")
        line = staff_number(loaded, number)
        use_cases.set_session(session_id, line, authentication)
    console.print(f"session {session_id} is {line} ({authentication.value})")


def staff_number(loaded: Settings, raw: str) -> str:
    """A number as the operator's staff type it (E.164 or national) in E.164."""
    op = loaded.operator
    return normalize(raw, default_region=op.national_region,
                     allowed_regions=op.allowed_regions or None)


@app.command()
@exits
def event(
    type_: Annotated[NoticeType, typer.Argument(metavar="TYPE", case_sensitive=False)],
    number: Annotated[str, typer.Argument(metavar="NUMBER")],
    config: ConfigOption = None,
    occurred_at: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"], help="When it happened (UTC)")]
    = None,
    event_id: Annotated[str | None, typer.Option(help="Idempotency id of the event")] = None,
    new_contract_id: Annotated[str | None, typer.Option(
        help="The new contract (number_reassigned, holder_changed)")] = None,
) -> None:
    """Record a lifecycle event now and queue a notice for every affected usage."""
    loaded = settings(config)
    when = occurred_at
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    with database(loaded, "operator") as engine:
        outcome = bootstrap.gateway(loaded, engine).record_event(
            type_, staff_number(loaded, number), source="cli", occurred_at=when,
            event_id=event_id, new_contract_id=new_contract_id)
    if outcome.duplicate:
        console.print(f"event {outcome.event_id} was already recorded; nothing changed")
    else:
        console.print(f"{outcome.type.value} recorded for {outcome.phone_number} "
                      f"(event {outcome.event_id}); {outcome.notices} notice(s) queued")


@app.command()
@exits
def notices(
    config: ConfigOption = None,
    status: Annotated[str | None, typer.Option(
        help=f"Only those in this state: {', '.join(STATUSES)}")] = None,
    organizer: Annotated[str | None, typer.Option(help="Only this organizer's")] = None,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option(
        "--json", help="One JSON array of the notices (times in RFC 3339 UTC) instead of the "
        "table")] = False,
) -> None:
    """List notices in the outbox with their delivery state (dead letters included)."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"must be one of {', '.join(STATUSES)}, not {status!r}",
                                 param_hint="--status")
    loaded = settings(config)
    with database(loaded, "operator") as engine:
        counts, messages = bootstrap.gateway(loaded, engine).notices(
            status=status, organizer=organizer, limit=limit)
    if as_json:
        typer.echo(json.dumps([
            {"id": m.id, "organizer": m.owner, "status": m.status, "attempts": m.attempts,
             "created": rfc3339(m.created_at), "last_error": m.last_error}
            for m in messages], ensure_ascii=False, indent=2))
        return
    table = Table("id", "organizer", "status", "attempts", "created", "last error",
                  title="notices: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for message in messages:
        table.add_row(message.id, message.owner or "", message.status, str(message.attempts),
                      message.created_at.isoformat(timespec="seconds"),
                      (message.last_error or "")[:60])
    console.print(table)


@app.command("retry-notice")
@exits
def retry_notice(notice_id: str, config: ConfigOption = None) -> None:
    """Put a dead-lettered notice back in the queue."""
    loaded = settings(config)
    with database(loaded, "operator") as engine:
        count = bootstrap.gateway(loaded, engine).retry_notice(notice_id)
    if not count:
        raise InvalidInput(f"no dead notice {notice_id}")
    console.print(f"notice {notice_id} queued again")


@app.command()
@exits
def openapi(config: ConfigOption = None) -> None:
    """Print the gateway's OpenAPI document (the one it serves at /openapi.json)."""
    import tempfile

    from numident.operator.app import create_app

    with tempfile.TemporaryDirectory() as home:
        loaded = settings(config, home=home, database_url=f"sqlite:///{home}/openapi.db")
        gateway = create_app(loaded, background=False)
        document = gateway.openapi()
        gateway.state.gateway.engine.dispose()
    typer.echo(json.dumps(document, ensure_ascii=False, sort_keys=True, indent=2))


@app.command("ciba-client")
@exits
def ciba_client(
    name: Annotated[str, typer.Argument(metavar="ORGANIZER")],
    ping: Annotated[str | None, typer.Option(
        metavar="URL", help="Ping mode: POST each decision to this notification endpoint "
        "(https; http too with operator.camara.sim_swap_http_sinks)")] = None,
    config: ConfigOption = None,
) -> None:
    """How an organizer learns CIBA decisions: by polling the token endpoint, or by ping."""
    chosen = settings(config)
    with database(chosen, "operator") as engine:
        organizers.find(engine, name)
        ciba.register_client(engine, name,
                             ciba.DeliveryMode.PING if ping else ciba.DeliveryMode.POLL, ping,
                             http_allowed=chosen.operator.camara.sim_swap_http_sinks)
    console.print(f"{name} learns CIBA decisions by ping to {ping}" if ping
                  else f"{name} learns CIBA decisions by polling", highlight=False)


SLA_COLUMNS = [
    ("organizer", "organizer"), ("day", "day"), ("requests", "requests"),
    ("answered_in_time", "in 20 min"), ("late", "late"), ("open", "open"),
    ("refused", "refused (429)"), ("answer_p50", "p50 s"), ("answer_p95", "p95 s"),
    ("answer_p99", "p99 s"), ("notices", "notices"), ("delivered_in_time", "in 24 h"),
    ("dead_letters", "dead letters"), ("delivery_p99", "delivery p99 s"),
]


@report.command("sla")
@exits
def report_sla(
    start: FromOption,
    end: ToOption,
    organizer: Annotated[str | None, typer.Option(help="Only this organizer's figures")] = None,
    how: FormatOption = Format.TABLE,
    config: ConfigOption = None,
) -> None:
    """Per organizer and UTC day: requests answered in time and late, refusals, answer times,
    notices delivered within 24 hours and dead letters, from the audit trail."""
    now = SystemClock().now()
    first, last = period(start, end, now)
    chosen = settings(config)
    deadline = timedelta(seconds=chosen.operator.answer_deadline_seconds)
    with database(chosen, "operator") as engine:
        try:
            days = sla.sla_report(engine, first, last, organizer, now=now, deadline=deadline)
        except NotFound as exc:
            raise InvalidInput(exc.message) from exc
    render([d.as_dict() for d in days], SLA_COLUMNS, how, f"SLA from {first} to {last} (UTC)")
