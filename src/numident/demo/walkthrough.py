"""The demo's story, step by step, checked against the outcome each step should have."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
from rich.console import Console
from rich.table import Table

from numident.client.assertions import ASSERTION_TYPE, make_client_assertion
from numident.client.keys import PrivateKey
from numident.core.clock import SystemClock
from numident.demo import stage
from numident.demo.data import CLI_NUMBER, OPERATORS, write_plan, write_ports
from numident.logs import configure_logging
from numident.messenger.bootstrap import routing_service
from numident.messenger.keys import organizer_key
from numident.messenger.sms import last_code_in_file
from numident.operator.consent import last_url_in_file
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

# Wide enough for the summary when the output is a file or a pipe (which rich takes as 80).
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 140)
FINAL = {"identified", "refused", "unanswered", "reidentification_required"}
CIBA_GRANT = "urn:openid:params:grant-type:ciba"


@dataclass
class Outcome:
    step: str
    account: str
    number: str
    route: str
    expected: str
    actual: str
    can_send: bool | None
    """None for steps about a line rather than a messenger account."""

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


class Demo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.outcomes: list[Outcome] = []
        self.running: dict[str, stage.Running] = {}
        self.api_token = secrets.token_urlsafe(24)
        self.organizer_key: PrivateKey | None = None

    @property
    def messenger(self) -> stage.Running:
        return self.running["messenger"]

    async def start(self) -> None:
        ports = {op.key: stage.free_port() for op in OPERATORS}
        messenger_port = stage.free_port()
        keys = stage.gateway_keys(self.root, ports)
        settings = stage.messenger_settings(self.root, messenger_port, keys, self.api_token)
        engine = create_database_engine(settings.database_url_for("messenger"))
        upgrade(engine, "messenger")
        routing = routing_service(settings, engine)
        plan = routing.import_plan(write_plan(self.root / "plan.csv"))
        ports_report = routing.import_ports(write_ports(self.root / "ports.csv"))
        engine.dispose()
        console.print(f"numbering plan: {plan.rows} ranges; portability: "
                      f"{ports_report.rows} ported number(s)")
        messenger_key = self.organizer_key = organizer_key(settings)
        messenger_url = f"http://127.0.0.1:{messenger_port}"
        for op in OPERATORS:
            app = stage.prepare_gateway(stage.gateway_settings(self.root, op, ports[op.key]),
                                        op, messenger_url, messenger_key)
            self.running[op.key] = await stage.serve(op.key, app, ports[op.key])
            mode = "deferred answers" if op.deferred else "immediate answers"
            console.print(f"gateway [bold]{op.key}[/] ({op.name}, ИНН {op.inn}, {mode}): "
                          f"{self.running[op.key].url}")
        self.running["messenger"] = await stage.serve("messenger", stage.messenger_app(settings),
                                                      messenger_port)
        console.print(f"messenger service: {self.messenger.url}\n")

    async def stop(self) -> None:
        for running in reversed(list(self.running.values())):
            if not running.task.done():
                await running.stop()

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(base_url=self.messenger.url, timeout=10,
                                 headers={"Authorization": f"Bearer {self.api_token}"})

    async def identify(self, step: str, account: str, number: str, expected: str,
                       channel: str = "sms") -> Outcome:
        """Change the account's number, prove possession with the code, await the answer."""
        console.print(f"[bold]{step}[/]: {account} gives {number}")
        # The organizer's back-end passes on each user's own address (the per-address budget).
        address = f"198.51.100.{len(self.outcomes) + 1}"
        async with self.client() as client:
            started = await client.put(f"/messenger/v1/accounts/{account}/phone-number",
                                       json={"phoneNumber": number, "channel": channel,
                                             "clientAddress": address})
            started.raise_for_status()
            code = last_code_in_file(self.root / f"{channel}.jsonl", number)
            assert code is not None, f"the {channel} with the code was not written"
            if channel == "flash_call":
                console.print(f"  a flash call to {number}: the calling number ends in {code}; "
                              "the app reads it")
            else:
                console.print(f"  SMS code {code} sent to {number}; the user types it in")
            confirmed = await client.post(
                f"/messenger/v1/accounts/{account}/phone-number/confirm", json={"code": code})
            confirmed.raise_for_status()
            view = await self.await_state(client, account, FINAL)
        route = self.messenger.app.state.service.identifications.lookup.route(number)
        return self.record(step, account, number, f"{route.operator_name or 'none'} "
                           f"({route.source})", expected, view)

    async def await_state(self, client: httpx2.AsyncClient, account: str, states: set[str],
                          within: float = 30.0) -> dict[str, object]:
        deadline = time.monotonic() + within
        while True:
            view: dict[str, object] = (await client.get(f"/messenger/v1/accounts/{account}")).json()
            if view["state"] in states or time.monotonic() > deadline:
                return view
            await asyncio.sleep(0.1)

    def record(self, step: str, account: str, number: str, route: str, expected: str,
               view: dict[str, object]) -> Outcome:
        outcome = Outcome(step, account, number, route, expected, str(view["state"]),
                          bool(view["canSend"]))
        self.outcomes.append(outcome)
        mark = "[green]as expected[/]" if outcome.ok else f"[red]expected {expected}[/]"
        reason = f", reason {view['reason']}" if view.get("reason") else ""
        console.print(f"  -> {outcome.actual} (canSend={outcome.can_send}{reason}) {mark}\n")
        return outcome

    async def event(self, operator: str, kind: str, number: str) -> None:
        running = self.running[operator]
        async with httpx2.AsyncClient(base_url=running.url, timeout=10) as client:
            response = await client.post("/admin/v1/events", json={
                "type": kind, "phoneNumber": number},
                headers={"Authorization": f"Bearer {operator}-admin"})
            response.raise_for_status()
        console.print(f"  operator {operator} records {kind} for {number}: "
                      f"{response.json()['notices']} notice(s) queued")

    async def ciba_sim_swap_check(self, step: str, operator: str, number: str, purpose: str,
                                  expected: str) -> Outcome:
        """The organizer's back-end gets a CIBA token for ``number`` (poll mode) and asks SIM
        Swap with it; under consent the subscriber approves on the page the SMS links to."""
        console.print(f"[bold]{step}[/]: the organizer's back-end asks {operator} for a "
                      f"token for {number} ({purpose})")
        running = self.running[operator]
        key = self.organizer_key
        assert key is not None, "the demo starts before its story"

        def authenticated(**form: str) -> dict[str, str]:
            assertion = make_client_assertion(key, stage.ORGANIZER,
                                              f"{running.url}/oauth2/token", SystemClock())
            return {**form, "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": assertion}

        async with httpx2.AsyncClient(base_url=running.url, timeout=10) as client:
            started = await client.post("/oauth2/bc-authorize", data=authenticated(
                login_hint=f"tel:{number}", scope=f"{purpose} sim-swap:check",
                binding_message="payment 42"))
            started.raise_for_status()
            auth_req_id = started.json()["auth_req_id"]
            url = last_url_in_file(self.root / operator / "operator" / "ciba-consent.jsonl",
                                   number)
            if url is None:
                console.print("  approved at once: legitimate interest")
            else:
                approved = await client.post(url, data={"decision": "approve"})
                approved.raise_for_status()
                console.print(f"  SMS to {number} links to the approve/deny page; the "
                              "subscriber approves")
            token = await client.post("/oauth2/token", data=authenticated(
                grant_type=CIBA_GRANT, auth_req_id=auth_req_id))
            token.raise_for_status()
            check = await client.post("/sim-swap/vwip/check", json={"maxAge": 24}, headers={
                "Authorization": f"Bearer {token.json()['access_token']}"})
            check.raise_for_status()
        actual = f"swapped={str(check.json()['swapped']).lower()}"
        outcome = Outcome(step, "(back-end)", number, f"{operator} (CIBA)", expected, actual,
                          None)
        self.outcomes.append(outcome)
        mark = "[green]as expected[/]" if outcome.ok else f"[red]expected {expected}[/]"
        console.print(f"  -> token bound to the line; SIM Swap check: {actual} {mark}\n")
        return outcome

    async def story(self) -> None:
        await self.identify("1. identification", "alice", "+79165550001", "identified")
        await self.identify("2. ported number", "bob", "+79165550002", "identified")
        await self.identify("3. unknown number", "carol", "+79185550003", "refused")
        await self.identify("4a. before the contract ends", "dave", "+79165550004",
                            "identified")
        await self.event("alfa", "contract_terminated", "+79165550004")
        async with self.client() as client:
            view = await self.await_state(client, "dave", {"reidentification_required"})
        self.record("4b. contract terminated", "dave", "+79165550004", "notice from alfa",
                    "reidentification_required", view)
        await self.identify("4c. new number, deferred operator", "dave", "+79185550007",
                            "identified")
        await self.identify("5a. before the SIM swap", "erin", "+79175550005", "identified")
        await self.event("beta", "sim_swapped", "+79175550005")
        async with self.client() as client:
            view = await self.await_state(client, "erin", set(), within=3.0)
            while not view.get("simSwappedAt"):
                view = await self.await_state(client, "erin", set(), within=0.2)
        console.print(f"  SIM swap recorded at {view['simSwappedAt']}; sending stays allowed")
        self.record("5b. SIM swapped", "erin", "+79175550005", "notice from beta", "identified",
                    view)
        await self.ciba_sim_swap_check("6a. SIM swap check by CIBA", "beta", "+79175550005",
                                       stage.FRAUD_PREVENTION, "swapped=true")
        await self.ciba_sim_swap_check("6b. CIBA with consent", "alfa", "+79165550001",
                                       stage.IDENTITY_VERIFICATION, "swapped=false")
        await self.identify("7. flash call", "gina", "+79165550010", "identified",
                            channel="flash_call")
        await self.pumping("8. pumping attempt")
        console.print("[bold]9. operator down[/]: gateway beta stops")
        await self.running["beta"].stop()
        await self.identify("9. operator down", "frank", "+79175550006", "unanswered")

    async def pumping(self, step: str) -> Outcome:
        """A bot asks for codes to a run of numbers in Beta's range and to a premium-rate
        number, all from one address: the premium number is refused as no mobile number, and
        the per-address budget refuses the rest once it is spent."""
        numbers = [f"+791755501{i:02d}" for i in range(2 * stage.PUMPING_BUDGET)]
        numbers.append("+78095550100")
        console.print(f"[bold]{step}[/]: a bot at 203.0.113.66 asks for {len(numbers)} codes "
                      f"({numbers[0]}.., and {numbers[-1]}, a premium-rate number)")
        statuses: list[int] = []
        async with self.client() as client:
            for i, number in enumerate(numbers):
                reply = await client.put(f"/messenger/v1/accounts/bot-{i}/phone-number",
                                         json={"phoneNumber": number,
                                               "clientAddress": "203.0.113.66"})
                statuses.append(reply.status_code)
                if reply.status_code != 202 and statuses.count(reply.status_code) == 1:
                    body = reply.json()
                    wait = reply.headers.get("Retry-After")
                    console.print(f"  {number}: {reply.status_code} {body['code']}"
                                  + (f", Retry-After {wait} s" if wait else ""))
        sent, refused = statuses.count(202), len(statuses) - statuses.count(202)
        actual = f"{sent} sent, {refused} refused"
        outcome = Outcome(step, "(bot)", f"{numbers[0]}..", "Beta range",
                          f"{stage.PUMPING_BUDGET} sent, {len(numbers) - stage.PUMPING_BUDGET}"
                          " refused", actual, None)
        self.outcomes.append(outcome)
        mark = "[green]as expected[/]" if outcome.ok else f"[red]expected {outcome.expected}[/]"
        console.print(f"  -> {actual} {mark}\n")
        return outcome

    def summary(self) -> Table:
        table = Table("step", "account", "number", "routed to", "expected", "outcome",
                      "canSend", title="numident demo")
        for o in self.outcomes:
            table.add_row(o.step, o.account, o.number, o.route, o.expected,
                          f"[green]{o.actual}[/]" if o.ok else f"[red]{o.actual}[/]",
                          "-" if o.can_send is None else str(o.can_send))
        return table


@contextlib.contextmanager
def demo_folder() -> Iterator[Path]:
    """Where the demo keeps its servers' stores: ``<NUMIDENT_HOME>/demo`` when a home is set
    (emptied at the start of each run and kept afterwards, to be looked at), else a
    temporary folder removed at the end."""
    home = os.environ.get("NUMIDENT_HOME")
    if not home:
        with tempfile.TemporaryDirectory(prefix="numident-demo-") as folder:
            yield Path(folder)
        return
    root = Path(home) / "demo"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    console.print(f"the demo's databases and keys are kept in {root}")
    yield root


async def _main(serve: bool) -> int:
    with demo_folder() as folder:
        demo = Demo(folder)
        try:
            await demo.start()
            await demo.story()
            console.print(demo.summary())
            ok = all(o.ok for o in demo.outcomes)
            console.print("[green]every outcome is as expected[/]" if ok
                          else "[red]some outcomes differ from what was expected[/]")
            if serve:
                console.print("servers keep running (Ctrl-C stops them):")
                for name, running in demo.running.items():
                    if not running.task.done():
                        console.print(f"  {name}: {running.url}")
                console.print(f"  messenger API token: {demo.api_token}")
                console.print("identify with the CLI, by flash call (its code is the last 4 "
                              f"digits of the caller in {folder / 'flash_call.jsonl'}):\n"
                              f"  numident messenger identify zoe {CLI_NUMBER} --channel "
                              f"flash_call --config {folder / 'messenger.toml'}")
                await asyncio.Event().wait()
            return 0 if ok else 1
        finally:
            await demo.stop()


def run(serve: bool = False) -> int:
    # The walk-through is the story; the servers' access lines would drown it: only their
    # warnings (a refused token, a notice not delivered) are shown.
    configure_logging("WARNING", "console")
    try:
        return asyncio.run(_main(serve))
    except KeyboardInterrupt:
        return 0
