"""The messenger service's use cases, behind one object that every entry point calls (the HTTP
API, the console, the CLI).

``set_phone_number`` (SPEC rule 0 and 6) -> the user proves possession with the code sent by
SMS, flash call or voice call (``codes``), once the number passed the defence against pumping
(``admission``: a Russian mobile number, the send budgets, the range circuit) ->
``confirm_possession`` opens the identification, which a worker (or ``follow``) drives to an
answer. ``identify_now`` skips the SMS step and exists only for callers that proved
possession by their own means and say so explicitly (``possession_proven=True``).

Number changes: the account gets a NEW identification code for every new number, and the
old operator is told to withdraw the old code through the durable outbox. A fresh code per
number is what makes the withdrawal safe: a withdrawal delivered late (the old gateway was
down) can never end a usage of the new number, even at the same operator.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
from sqlalchemy import Connection, Engine

from numident.config import MessengerSettings
from numident.core.accounts import AccountState
from numident.core.clock import Clock
from numident.core.numbers import normalize
from numident.core.sending import Refusal
from numident.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    Unprocessable,
)
from numident.messenger import bulk, console_figures
from numident.messenger import report as figures
from numident.messenger.accounts import (
    Account,
    AccountStore,
    new_identification_code,
    validate_account_id,
)
from numident.messenger.admission import SendAdmission, SendRequest, audit, client_key
from numident.messenger.bulk import BulkIdentification, Loading
from numident.messenger.channels import Channel
from numident.messenger.codes import CodeSender, channel_sequence
from numident.messenger.console_figures import BulkProgress, InFlight, ReceivedNotice
from numident.messenger.delivery import queue_withdrawal
from numident.messenger.identification import Identifications
from numident.messenger.metrics import MessengerMetrics
from numident.messenger.notices import NoticeIntake, NoticeReceipt
from numident.messenger.operators import OperatorDirectory, OperatorLookup, Route
from numident.messenger.possession import PossessionChecks, Verdict
from numident.messenger.report import OperatorDay
from numident.outbox.dispatcher import Dispatcher
from numident.outbox.store import SqlOutbox
from numident.storage.database import read_only, write_transaction

_CODE_INPUT = re.compile(r"[0-9]{1,16}")


@dataclass(eq=False, kw_only=True)
class MessengerService:
    """The messenger's use cases. It builds none of its collaborators:
    :func:`numident.messenger.bootstrap.bootstrap` does, once."""

    engine: Engine
    clock: Clock
    settings: MessengerSettings
    store: AccountStore
    outbox: SqlOutbox
    possession: PossessionChecks
    admission: SendAdmission
    codes: CodeSender
    identifications: Identifications
    notices: NoticeIntake
    lookup: OperatorLookup
    operators: OperatorDirectory
    dispatcher: Dispatcher
    metrics: MessengerMetrics
    closing: list[httpx2.AsyncClient] = field(default_factory=list)
    """HTTP clients the service closes with itself (the webhooks', the providers')."""
    on_attempt: Callable[[str], None] | None = None
    """Called with each newly opened attempt (the app's worker); None: the caller follows it."""

    # -- use cases ---------------------------------------------------------------------------

    async def set_phone_number(self, account_id: str, phone_number: str, *,
                               channel: str | None = None,
                               client_address: str | None = None) -> Account:
        """Start (re-)identification: state ``verifying_possession`` and a code sent by
        ``channel`` (default and fallback order: ``messenger.channels``).

        ``client_address`` is the user's address (the per-address budget). Raises
        ``InvalidInput`` (bad id, number or channel, ``UNSUPPORTED_COUNTRY``),
        ``Unprocessable`` (``NUMBER_NOT_MOBILE``: the plan lists no Russian mobile range for
        it), ``TooManyRequests`` (the resend throttle, a send budget, the range circuit) or
        ``UpstreamUnavailable`` (no channel could send it; a new code may be asked for at once).
        """
        account_id = validate_account_id(account_id)
        number = self._normalize(phone_number)
        requested = self._channel(channel)
        channel_sequence(self.settings, requested, None)  # an unoffered channel: 400 first
        address = client_key(client_address)

        def admit() -> tuple[Account | None, Refusal | None, int, list[Channel], str | None]:
            # Routed in this worker thread too: the routing index may be reloaded from the
            # database on the way.
            route = self._route(number)
            request = SendRequest(account_id, number, route.plan_range, route.region, address)
            now = self.clock.now()
            with write_transaction(self.engine) as conn:
                refusal = None
                if not route.is_mobile:
                    refusal = Refusal("not_mobile", 0)
                else:
                    self.admission.serialise(conn)
                    wait = self.possession.throttle_wait(conn, account_id, now)
                    refusal = (Refusal("resend_too_soon", wait) if wait is not None
                               else self.admission.judge(conn, request, now))
                if refusal is not None:
                    audit(conn, now, account_id, number, "refused", reason=refusal.reason,
                          client_address=request.client_address,
                          channel=requested.value if requested else None,
                          detail={"planRange": route.plan_range, "region": route.region,
                                  "retryAfter": refusal.retry_after})
                    return None, refusal, 0, [], None
                sequence = channel_sequence(
                    self.settings, requested,
                    self.possession.last_channel(conn, account_id, number))
                send_id = self.admission.record(conn, request, now)
                self.possession.prepare(conn, account_id, number, send_id, now)
                armed = self.codes.arm_first(conn, account_id, number, send_id, sequence[0], now)
                account = self._renumber(conn, account_id, number, sequence[0].value)
            return account, None, send_id, sequence, armed

        account, refusal, send_id, sequence, armed = await anyio.to_thread.run_sync(admit)
        if refusal is not None:
            self.metrics.code_refusals.labels(reason=refusal.reason).inc()
            raise _send_refusal(refusal, number)
        assert account is not None
        await self.codes.send(account_id, number, send_id, sequence, address, armed=armed)
        return account

    async def confirm_possession(self, account_id: str, code: str) -> Account:
        """Check the code (SMS, call); when right, the account is ``pending`` and identification
        starts.

        Errors: ``WRONG_CODE`` (400), ``CODE_EXPIRED``, ``CODE_ATTEMPTS_EXHAUSTED`` and
        ``NO_CODE_PENDING`` (409), unknown account (404).
        """
        account_id = validate_account_id(account_id)
        if not isinstance(code, str) or _CODE_INPUT.fullmatch(code) is None:
            raise InvalidInput("code must be the digits received by SMS", code="INVALID_CODE")

        def write() -> tuple[Account | None, Verdict, int]:
            now = self.clock.now()
            with write_transaction(self.engine) as conn:
                account = self._existing(conn, account_id)
                if account.state is not AccountState.VERIFYING_POSSESSION:
                    return None, Verdict.NO_CHALLENGE, 0
                check = self.possession.check(conn, account_id, code, now)
                if check.verdict is not Verdict.CONFIRMED:
                    return None, check.verdict, check.attempts_left
                if check.send_id is not None:
                    self.admission.confirmed(conn, check.send_id, now)
                return self.identifications.begin(conn, account, now), check.verdict, 0

        account, verdict, left = await anyio.to_thread.run_sync(write)
        if account is None:
            raise _refusal(verdict, left)
        if account.attempt_id and self.on_attempt is not None:
            self.on_attempt(account.attempt_id)
        return account

    async def identify_now(self, account_id: str, phone_number: str, *,
                           possession_proven: bool) -> Account:
        """Identify without our SMS step, then follow the identification to its outcome.

        Only for callers that proved possession themselves (a support desk, a migration);
        without ``possession_proven=True`` it refuses (``POSSESSION_NOT_PROVEN``, 403).
        """
        if possession_proven is not True:
            raise PermissionDenied("possession of the number must be proven first",
                                   code="POSSESSION_NOT_PROVEN")
        account_id = validate_account_id(account_id)
        number = self._normalize(phone_number)

        def write() -> Account:
            now = self.clock.now()
            with write_transaction(self.engine) as conn:
                account = self._renumber(conn, account_id, number, "asserted")
                return self.identifications.begin(conn, account, now)

        await anyio.to_thread.run_sync(write)
        return await self.follow(account_id)

    async def follow(self, account_id: str) -> Account:
        """Drive the account's identification in force to its outcome; return the account.

        An attempt a notice voided is followed too (the account is then
        ``reidentification_required``): its answer is asked again.
        """
        account = await anyio.to_thread.run_sync(self.status, account_id)
        if account.attempt_id:
            await self.identifications.drive(account.attempt_id)
        return await anyio.to_thread.run_sync(self.status, account_id)

    def status(self, account_id: str) -> Account:
        """The account as stored; ``NotFound`` (404) when there is none."""
        account_id = validate_account_id(account_id)
        with read_only(self.engine) as conn:
            return self._existing(conn, account_id)

    def can_send(self, account_id: str) -> bool:
        """True only when the account exists and is ``identified`` (SPEC rule 1)."""
        try:
            return self.status(account_id).can_send
        except (NotFound, InvalidInput):
            return False

    def receive_notice(self, method: str, url: str, headers: Mapping[str, str],
                       body: bytes) -> NoticeReceipt:
        receipt = self.notices.receive(method, url, headers, body)
        self.metrics.notices.labels(type=receipt.type.value,
                                    duplicate=str(receipt.duplicate).lower()).inc()
        return receipt

    def code_channel(self, account_id: str, phone_number: str) -> str | None:
        """The channel the account's unconfirmed code for ``phone_number`` went by."""
        with read_only(self.engine) as conn:
            return self.possession.last_channel(conn, validate_account_id(account_id),
                                                phone_number)

    # -- bulk identification of an existing user base (``identify-all``) ---------------------

    def bulk_loading(self, path: Path) -> contextlib.AbstractContextManager[Loading]:
        """Check the whole CSV (refused whole if bad), then its accounts, stored and routed a
        chunk at a time as ``BulkIdentification.run`` sends them."""
        return bulk.loading(self.engine, path, self.lookup.route_many, self.operators,
                            self.store, self.clock, default_region=self.settings.national_region,
                            allowed_regions=self.settings.allowed_regions)

    def bulk_identification(self, *, batch_size: int, concurrency: int, give_up_seconds: float,
                            on_trouble: Callable[[str, str], None] | None = None,
                            ) -> BulkIdentification:
        """The job that sends the loaded accounts to their operators' batch endpoints."""
        return BulkIdentification(self.engine, self.operators, self.store, self.outbox,
                                  self.clock, block_on_sim_swap=self.settings.block_on_sim_swap,
                                  batch_size=batch_size, concurrency=concurrency,
                                  poll_seconds=self.settings.poll_max_seconds,
                                  give_up_seconds=give_up_seconds, on_trouble=on_trouble)

    def bulk_summary(self) -> list[tuple[str, str, str, int]]:
        """``(operator name, ИНН, status, accounts)`` of the bulk identification."""
        return bulk.summary(self.engine)

    def write_unidentified(self, target: TextIO) -> int:
        """The accounts the bulk identification left unidentified, as CSV; returns how many."""
        return bulk.write_unidentified(self.engine, target)

    # -- figures (console, CLI) ---------------------------------------------------------------

    def operator_names(self) -> dict[str, str]:
        """The configured operators' names by ИНН (the ИНН where none is configured)."""
        return {inn: endpoint.name or inn for inn, endpoint in self.operators.endpoints.items()}

    def accounts_by_state(self) -> list[tuple[str, int]]:
        return console_figures.accounts_by_state(self.engine)

    def in_flight(self) -> list[InFlight]:
        return console_figures.in_flight(self.engine, self.operator_names())

    def notices_received(self) -> tuple[list[tuple[str, int]], list[ReceivedNotice]]:
        return console_figures.received(self.engine)

    def bulk_progress(self) -> list[BulkProgress]:
        return console_figures.bulk_progress(self.engine)

    def report(self, first: date, last: date, operator: str | None) -> list[OperatorDay]:
        """Per operator and UTC day, from the audit trail; ``operator``: a configured name or
        ИНН (``NotFound`` when it is neither)."""
        names = {e.inn: e.name for e in self.settings.operators if e.name}
        inn = figures.resolve_operator(self.engine, operator, names) if operator else None
        return figures.messenger_report(self.engine, first, last, inn, names=names)

    # -- background work, also callable directly (tests, CLI) ---------------------------------

    async def run_identifications(self) -> None:
        """Follow every open identification to its outcome (what the worker does at start)."""
        await self.identifications.drive_open()

    async def deliver_outbox(self) -> int:
        """Deliver one batch of due webhooks and withdrawals; returns how many succeeded."""
        return await self.dispatcher.run_once()

    async def aclose(self) -> None:
        await self.operators.aclose()
        for client in self.closing:
            await client.aclose()

    # -- helpers -----------------------------------------------------------------------------

    def _normalize(self, raw: str) -> str:
        """``raw`` in E.164: international forms always, national ones (``89161234567``) in
        the configured region when it is unambiguous (``MessengerSettings.national_region``)."""
        if not isinstance(raw, str):
            raise InvalidInput("phoneNumber must be a string", code="INVALID_PHONE_NUMBER")
        return normalize(raw, default_region=self.settings.national_region,
                         allowed_regions=self.settings.allowed_regions or None)

    def _existing(self, conn: Connection, account_id: str) -> Account:
        account = self.store.get(conn, account_id)
        if account is None:
            raise NotFound(f"no account {account_id}", code="ACCOUNT_NOT_FOUND")
        return account

    def _renumber(self, conn: Connection, account_id: str, number: str,
                  proof: str) -> Account:
        """Move the account (created if new) to ``verifying_possession`` on ``number``."""
        now = self.clock.now()
        account = (self.store.get(conn, account_id, for_update=True)
                   or self.store.create(conn, account_id, now))
        self.identifications.supersede(conn, account_id, now)
        changes: dict[str, Any] = {"phone_number": number, "attempt_id": None}
        if account.phone_number is not None and account.phone_number != number:
            if account.operator_inn:
                queue_withdrawal(self.outbox, conn, account.operator_inn,
                                 account.identification_code, account_id, now)
            changes.update(identification_code=new_identification_code(), operator_inn=None,
                           operator_name=None, sim_swapped_at=None)
        return self.store.move(conn, account, AccountState.VERIFYING_POSSESSION, now,
                               detail={"possession": proof}, **changes)

    def _route(self, number: str) -> Route:
        """The number's route; a number the plan cannot hold (another country's, where
        ``allowed_regions`` lets one in) is in no range of it."""
        try:
            return self.lookup.route(number)
        except InvalidInput:
            return Route(number, None, None, "none")

    @staticmethod
    def _channel(raw: str | None) -> Channel | None:
        if raw is None:
            return None
        try:
            return Channel(raw)
        except ValueError:
            raise InvalidInput(f"channel must be one of {', '.join(c.value for c in Channel)}",
                               code="INVALID_CHANNEL") from None


def can_send(service: MessengerService, account_id: str) -> bool:
    """The messaging gate: the same answer as ``GET /messenger/v1/accounts/{id}``'s ``canSend``."""
    return service.can_send(account_id)


_BUDGETS = {"per_number": "to this number", "per_address": "from this address",
            "per_range": "to this range of numbers", "per_region": "to this region",
            "total": "by the service"}


def _send_refusal(refusal: Refusal, number: str) -> Exception:
    if refusal.reason == "not_mobile":
        return Unprocessable(f"the numbering plan lists {number} in no Russian mobile range; "
                             "codes are sent only to mobile numbers", code="NUMBER_NOT_MOBILE")
    if refusal.reason == "resend_too_soon":
        return TooManyRequests("a code was sent a moment ago; ask again later",
                               retry_after=refusal.retry_after)
    if refusal.reason == "circuit_open":
        return TooManyRequests("codes sent to this range of numbers are not being confirmed; "
                               "sending to it is suspended", retry_after=refusal.retry_after,
                               code="RANGE_SUSPENDED")
    return TooManyRequests(f"too many codes were sent {_BUDGETS[refusal.reason]}; ask again "
                           "later", retry_after=refusal.retry_after,
                           code="SEND_BUDGET_EXHAUSTED")


def _refusal(verdict: Verdict, left: int) -> Exception:
    if verdict is Verdict.WRONG_CODE:
        return InvalidInput(f"the code is wrong; {left} attempt(s) left", code="WRONG_CODE")
    if verdict is Verdict.EXPIRED:
        return Conflict("the code has expired; ask for a new one", code="CODE_EXPIRED")
    if verdict is Verdict.EXHAUSTED:
        return Conflict("too many wrong codes; ask for a new one",
                        code="CODE_ATTEMPTS_EXHAUSTED")
    return Conflict("no code is pending for this account; set the phone number first",
                    code="NO_CODE_PENDING")
