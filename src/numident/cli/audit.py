"""``numident operator audit ...``, ``numident messenger audit verify`` and
``numident audit verify-export``: the hash chains of each side's audit trails (docs/audit.md).

``verify`` exits 0 when every chain of the side holds and 1 naming, for each broken one, the
first entry that was changed, removed or inserted; ``export`` writes a period's bundle;
``verify-export`` checks one offline (exit 1 naming what is wrong). A bad date, a reversed
period or one in the future is exit 2.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from numident.audit.bundle import InvalidBundle, export, period, verify_bundle
from numident.audit.checkpoints import key_lookup
from numident.audit.log import Side, audit_log, audit_logs
from numident.audit.verify import Broken, Verified, verify_chain
from numident.cli.common import ConfigOption, console, database, errors, exits, settings
from numident.client.keys import PrivateKey, ensure_private_key, load_public_key
from numident.config import Settings

PublicKeyOption = Annotated[list[Path] | None, typer.Option(
    "--public-key", exists=True, dir_okay=False,
    help="Also accept checkpoints signed by this public key (PEM or JWK), e.g. the key used "
    "before a key change (repeat)")]


def side_key(loaded: Settings, side: Side) -> PrivateKey:
    """The key that signs ``side``'s checkpoints: the gateway's notice key, or the
    organizer's key on the messenger side."""
    if side == "operator":
        from numident.operator.app import signing_key_path

        return ensure_private_key(signing_key_path(loaded))
    from numident.messenger.keys import organizer_key

    return organizer_key(loaded)


TITLES = {"operator": "audit chain", "messenger": "account audit chain",
          "messenger-possession": "possession audit chain"}
"""How the report names each chain (by :attr:`AuditLog.name`)."""


def _verify(side: Side, config: Path | None, public_keys: list[Path] | None) -> None:
    """Walk every chain of ``side`` in turn (the messenger's account chain, then its
    possession chain), report each, and exit 1 when any is broken."""
    loaded = settings(config)
    keys = key_lookup(side_key(loaded, side).public(),
                      *(load_public_key(p) for p in public_keys or ()))
    with database(loaded, side) as engine:
        broken = [not report(verify_chain(engine, chain, keys), TITLES[chain.name])
                  for chain in audit_logs(side)]
    if any(broken):
        sys.exit(1)


def report(result: Verified | Broken, title: str = "audit chain") -> bool:
    """Print what was verified of the chain called ``title``; False when it is broken."""
    checkpoint = result.checkpoint
    signed = (f"the last good checkpoint signs entry {checkpoint.seq} ({checkpoint.signed_at}, "
              f"key {checkpoint.kid})" if checkpoint else "no checkpoint was verified")
    if isinstance(result, Broken):
        errors.print(f"[red]{title} broken at entry {result.problem.seq}:[/] "
                     f"{escape(result.problem.message)}", highlight=False)
        errors.print(f"entries 1..{result.verified} verified before it; {signed}",
                     highlight=False)
        return False
    if result.seq == 0:
        console.print(f"{title} empty: no entry to verify yet", highlight=False)
        return True
    console.print(f"{title} intact: entries 1..{result.seq} verified, "
                  f"{result.checkpoints} checkpoints; {signed}", highlight=False)
    if checkpoint is None or checkpoint.seq < result.seq:
        after = checkpoint.seq + 1 if checkpoint else 1
        console.print(f"entries {after}..{result.seq} are chained but not yet signed by a "
                      "checkpoint", highlight=False)
    if result.unsealed:
        console.print(f"{result.unsealed} entries were still being written and are not "
                      "chained yet", highlight=False)
    return True


operator_app = typer.Typer(no_args_is_help=True,
                           help="Verify and export the gateway's tamper-evident audit trail.")
messenger_app = typer.Typer(no_args_is_help=True,
                            help="Verify the messenger's tamper-evident audit trails.")
app = typer.Typer(no_args_is_help=True, help="Check audit exports offline.")


@operator_app.command("verify")
@exits
def verify_operator(config: ConfigOption = None, public_key: PublicKeyOption = None) -> None:
    """Walk the gateway's audit chain: exit 0 when intact, 1 naming the first bad entry."""
    _verify("operator", config, public_key)


@messenger_app.command("verify")
@exits
def verify_messenger(config: ConfigOption = None, public_key: PublicKeyOption = None) -> None:
    """Walk the messenger's account audit chain, then its possession audit chain: exit 0
    when both are intact, 1 naming the first bad entry of each broken one."""
    _verify("messenger", config, public_key)


@operator_app.command("export")
@exits
def export_operator(
    start: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"],
                                            help="First UTC day, YYYY-MM-DD")],
    end: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"],
                                          help="Last UTC day (included), YYYY-MM-DD")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="The zip to write")],
    config: ConfigOption = None,
) -> None:
    """Write the audit entries of a period with the checkpoints that cover them, signed."""
    now = datetime.now(UTC)
    first, last = start.date(), end.date()
    period(first, last, now.date())  # refuse a bad period before touching the database
    loaded = settings(config)
    key = side_key(loaded, "operator")
    with database(loaded, "operator") as engine:
        done = export(engine, audit_log("operator"), key, first, last, out, now)
    console.print(f"wrote {escape(str(done.path))}: entries {done.first_seq}..{done.last_seq} "
                  f"({done.count}), {done.checkpoints} checkpoints, signed by key {key.kid}",
                  highlight=False)


@app.command("verify-export")
@exits
def verify_export(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    public_key: Annotated[Path, typer.Option(
        "--public-key", exists=True, dir_okay=False,
        help="The operator's public key (PEM or JWK, e.g. from its JWKS)")],
) -> None:
    """Verify an audit export offline: exit 0 when it holds, 1 naming what is wrong."""
    key = load_public_key(public_key)
    try:
        checked = verify_bundle(file, key)
    except InvalidBundle as exc:
        errors.print(f"[red]export does not verify:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)
    console.print(f"export verified: {checked.log} entries {checked.first_seq}.."
                  f"{checked.last_seq} ({checked.count}) of {checked.period[0]}.."
                  f"{checked.period[1]}, {checked.checkpoints} checkpoints, statement signed "
                  f"{checked.signed_at}", highlight=False)


