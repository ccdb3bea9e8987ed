"""Intake of operator notices (SPEC rule 7): verified, deduplicated, applied once.

Contract of ``NoticeIntake.receive``:

1. The request must carry a valid RFC 9421 signature by the notice key of a configured
   operator (``messenger.operators[].notice_public_key``); the key id names the sender.
   Otherwise :class:`~numident.errors.Unauthenticated` (401) with the verifier's stable code.
2. The request must be a CloudEvent 1.0 of type ``org.numident.notice.<kind>`` with
   ``data.identificationCode``, in either HTTP content mode, read with the CloudEvents SDK:
   structured (``Content-Type: application/cloudevents+json``, the whole event in the body)
   or binary (the attributes in ``ce-*`` headers, the data as the JSON body). In binary mode
   every ``ce-*`` header must be covered by the signature too, or an attacker could relabel a
   signed body. Otherwise ``InvalidInput`` (400, ``INVALID_NOTICE``).
3. A notice whose CloudEvent ``id`` this sender already delivered changes nothing and is
   answered as a duplicate (the operator's dispatcher delivers at least once).
4. Accounts whose identification code matches *and* whose operator is the sender move per
   ``core.accounts.notice_effect``, whatever state they are in; a SIM swap is recorded
   in ``sim_swapped_at``. A blocking notice also voids the account's open identification
   attempt (``identification.invalidate``): its answer, when it comes, is asked again rather
   than trusted. A notice for a code we do not hold is recorded and otherwise ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from numident.client.keys import PublicKey, load_public_key
from numident.client.notices import read_notice
from numident.client.signatures import NoticeVerifier
from numident.config import MessengerSettings
from numident.core.accounts import notice_effect
from numident.core.clock import Clock
from numident.core.notices import NoticeType
from numident.errors import Unauthenticated
from numident.messenger.accounts import AccountStore
from numident.messenger.identification import invalidate
from numident.messenger.tables import received_notices
from numident.storage.database import write_transaction
from numident.storage.dialect import insert_ignore
from numident.web.refusals import log_refusal


@dataclass(frozen=True)
class NoticeReceipt:
    event_id: str
    type: NoticeType
    operator_inn: str
    duplicate: bool
    accounts: int
    """How many accounts the notice concerned (0 for a duplicate or an unknown code)."""


class NoticeIntake:
    def __init__(self, engine: Engine, store: AccountStore, clock: Clock,
                 settings: MessengerSettings, max_age: int = 300) -> None:
        self._engine = engine
        self._store = store
        self._clock = clock
        self._block_on_sim_swap = settings.block_on_sim_swap
        self._keys: dict[str, tuple[str, PublicKey]] = {}
        for endpoint in settings.operators:
            key = load_public_key(endpoint.notice_public_key)
            self._keys[key.kid] = (endpoint.inn, key)
        self._verifier = NoticeVerifier(self._lookup, clock, max_age=max_age)

    def _lookup(self, keyid: str) -> PublicKey | None:
        found = self._keys.get(keyid)
        return found[1] if found else None

    def receive(self, method: str, url: str, headers: Mapping[str, str],
                body: bytes) -> NoticeReceipt:
        """Verify, deduplicate and apply one notice (see the module's contract); a refused
        signature is logged."""
        try:
            keyid, notice = read_notice(self._verifier, method, url, headers, body)
        except Unauthenticated as exc:
            log_refusal("notice_signature", exc.code, exc.message)
            raise
        operator_inn = self._keys[keyid][0]
        now = self._clock.now()
        with write_transaction(self._engine) as conn:
            inserted = conn.execute(insert_ignore(conn, received_notices,
                                                  ["operator_inn", "event_id"]).values(
                operator_inn=operator_inn, event_id=notice.event_id, type=notice.type.value,
                identification_code=notice.identification_code,
                phone_number=notice.phone_number, occurred_at=notice.occurred_at,
                received_at=now, accounts_affected=0)
                # RETURNING, not rowcount: psycopg reports -1 for an ignored conflict.
                .returning(received_notices.c.event_id)).first()
            if inserted is None:
                return NoticeReceipt(notice.event_id, notice.type, operator_inn, True, 0)
            # Locked, in the order the identification client takes (account, then attempt), so
            # that an answer being recorded meanwhile either sees this notice or is seen by it.
            matched = self._store.with_code(conn, operator_inn, notice.identification_code,
                                            for_update=True)
            for account in matched:
                detail: dict[str, Any] = {"notice": notice.event_id, "type": notice.type.value}
                effect = notice_effect(account.state, notice.type,
                                       block_on_sim_swap=self._block_on_sim_swap)
                if effect.records_sim_swap:
                    account = self._store.touch(conn, account, now, detail=detail,
                                                sim_swapped_at=notice.occurred_at or now)
                if effect.voids_attempt and account.attempt_id is not None:
                    invalidate(conn, account.attempt_id, notice.event_id, now)
                if effect.target is not account.state:
                    self._store.move(conn, account, effect.target, now, reason=effect.reason,
                                     detail=detail)
            if matched:
                conn.execute(received_notices.update().where(
                    received_notices.c.operator_inn == operator_inn,
                    received_notices.c.event_id == notice.event_id).values(
                    accounts_affected=len(matched)))
        return NoticeReceipt(notice.event_id, notice.type, operator_inn, False, len(matched))
