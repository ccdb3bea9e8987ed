"""Messenger accounts as stored: every change of state is checked, audited and announced.

``AccountStore.move`` is the only way an account changes state. In the caller's transaction it
checks the transition against ``core.accounts``, updates the row, appends to ``account_audit``
and, when the organizer subscribed (``webhook_url``), writes a webhook message
``{"accountId","from","to","at"}`` to the messenger's outbox, so that the backend hears of every
committed transition and of nothing that rolled back. Delivery is at least once and in no
guaranteed order (the message id is the idempotency key); the backend reads the account for the
current state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update

from numident.core.accounts import (
    ACCOUNT_ID_PATTERN,
    AccountState,
    new_identification_code,
    transition,
    validate_account_id,
)
from numident.core.clock import rfc3339
from numident.messenger.tables import account_audit, accounts
from numident.outbox.store import OutboxMessage, SqlOutbox

__all__ = [
    "ACCOUNT_ID_PATTERN",
    "WEBHOOK_KIND",
    "Account",
    "AccountStore",
    "Adopted",
    "new_identification_code",
    "validate_account_id",
]
from numident.storage.dialect import driver_sql, timestamp_binder
from numident.storage.ids import new_id

WEBHOOK_KIND = "webhook"


@dataclass(frozen=True)
class Account:
    account_id: str
    phone_number: str | None
    state: AccountState
    operator_inn: str | None
    operator_name: str | None
    identification_code: str
    reason: str | None
    attempt_id: str | None
    updated_at: datetime
    sim_swapped_at: datetime | None

    @property
    def can_send(self) -> bool:
        return self.state.can_send

    @classmethod
    def from_row(cls, row: Row[Any]) -> Account:
        return cls(row.account_id, row.phone_number, AccountState(row.state), row.operator_inn,
                   row.operator_name, row.identification_code, row.reason, row.attempt_id,
                   row.updated_at, row.sim_swapped_at)


@dataclass(frozen=True)
class Adopted:
    """An account that enters the service already answered (bulk first identification)."""

    account_id: str
    phone_number: str
    identification_code: str
    state: AccountState
    reason: str | None
    operator_inn: str | None
    operator_name: str | None
    detail: dict[str, Any]


# Built once: building a statement costs several times what running it does, and a module's
# constant computes its cache key once. The changed columns of an update come as parameters.
_GET = select(accounts).where(accounts.c.account_id == bindparam("b_account_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_INSERT = accounts.insert()
_UPDATE = update(accounts).where(accounts.c.account_id == bindparam("b_account_id"))
_AUDIT = account_audit.insert()

_ADOPT = ("INSERT INTO accounts (account_id, phone_number, state, operator_inn, operator_name, "
          "identification_code, reason, created_at, updated_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id) DO NOTHING")
_ADOPT_AUDIT = ("INSERT INTO account_audit (account_id, at, from_state, to_state, reason, "
                "phone_number, detail, operator_inn) VALUES (?, ?, NULL, ?, ?, ?, ?, ?)")


class AccountStore:
    """Reads and changes accounts inside the caller's transaction (``Connection``)."""

    def __init__(self, outbox: SqlOutbox | None, webhook_url: str | None) -> None:
        self._outbox = outbox
        self._webhook_url = webhook_url

    def get(self, conn: Connection, account_id: str, *, for_update: bool = False
            ) -> Account | None:
        row = conn.execute(_GET_FOR_UPDATE if for_update else _GET,
                           {"b_account_id": account_id}).first()
        return Account.from_row(row) if row is not None else None

    def with_code(self, conn: Connection, operator_inn: str, identification_code: str, *,
                  for_update: bool = False) -> list[Account]:
        query = (select(accounts).where(accounts.c.operator_inn == operator_inn,
                                        accounts.c.identification_code == identification_code)
                 .order_by(accounts.c.account_id))
        if for_update:
            query = query.with_for_update()
        rows = conn.execute(query).all()
        return [Account.from_row(r) for r in rows]

    def create(self, conn: Connection, account_id: str, now: datetime) -> Account:
        """A new account in state ``unidentified`` with its own identification code."""
        account = Account(account_id, None, AccountState.UNIDENTIFIED, None, None,
                          new_identification_code(), None, None, now, None)
        conn.execute(_INSERT, {
            "account_id": account_id, "state": account.state.value,
            "identification_code": account.identification_code, "created_at": now,
            "updated_at": now})
        self._audit(conn, account, None, account.state, now, {"event": "created"})
        return account

    def adopt(self, conn: Connection, entries: Sequence[Adopted], now: datetime) -> set[str]:
        """Create the ``entries`` in their given state, each audited and announced once.

        An account the service already holds is left as it is (it is not in the returned set
        of account ids created).
        """
        if not entries:
            return set()
        stamp = timestamp_binder(conn, accounts.c.created_at)
        stamped = stamp(now)
        inserted = conn.exec_driver_sql(driver_sql(conn, _ADOPT), [
            (e.account_id, e.phone_number, e.state.value, e.operator_inn, e.operator_name,
             e.identification_code, e.reason, stamped, stamped) for e in entries]).rowcount
        if inserted == len(entries):  # the usual case: none was held already
            return self._announce(conn, entries, now, stamped)
        # Codes are random and unique: the accounts holding ours are the ones created here.
        created = set(conn.scalars(select(accounts.c.account_id).where(
            accounts.c.identification_code.in_([e.identification_code for e in entries]))))
        self._announce(conn, [e for e in entries if e.account_id in created], now, stamped)
        return created

    def _announce(self, conn: Connection, fresh: Sequence[Adopted], now: datetime,
                  stamped: Any) -> set[str]:
        """Audit and announce the ``fresh`` accounts just created; their ids."""
        if fresh:
            conn.exec_driver_sql(driver_sql(conn, _ADOPT_AUDIT), [
                (e.account_id, stamped, e.state.value, e.reason, e.phone_number,
                 json.dumps(e.detail, separators=(",", ":")), e.operator_inn) for e in fresh])
        if self._outbox is not None and self._webhook_url:
            self._outbox.add_many(conn, [self._webhook(e.account_id, None, e.state, now)
                                         for e in fresh])
        return {e.account_id for e in fresh}

    def move(self, conn: Connection, account: Account, target: AccountState, now: datetime,
             *, reason: str | None = None, detail: dict[str, Any] | None = None,
             **changes: Any) -> Account:
        """Change ``account`` to ``target`` (and the ``changes`` columns), audited and announced.

        Raises :class:`~numident.errors.Conflict` when the rules forbid the transition.
        """
        transition(account.state, target)
        moved = replace(account, state=target, reason=reason, updated_at=now, **changes)
        conn.execute(_UPDATE, {"b_account_id": account.account_id, "state": target.value,
                               "reason": reason, "updated_at": now, **changes})
        self._audit(conn, moved, account.state, target, now, detail)
        if self._outbox is not None and self._webhook_url and account.state is not target:
            self._outbox.add(conn, self._webhook(account.account_id, account.state, target, now))
        return moved

    def _webhook(self, account_id: str, before: AccountState | None, after: AccountState,
                 now: datetime) -> OutboxMessage:
        assert self._webhook_url is not None
        payload = {"accountId": account_id, "from": before.value if before else None,
                   "to": after.value, "at": rfc3339(now)}
        return OutboxMessage(
            id=new_id(), destination=self._webhook_url, kind=WEBHOOK_KIND,
            payload=json.dumps(payload, separators=(",", ":")).encode(),
            created_at=now, owner=account_id)

    def touch(self, conn: Connection, account: Account, now: datetime, *,
              detail: dict[str, Any], **changes: Any) -> Account:
        """Record a change that keeps the state (e.g. a SIM swap noted), audited."""
        changed = replace(account, updated_at=now, **changes)
        conn.execute(_UPDATE, {"b_account_id": account.account_id, "updated_at": now,
                               **changes})
        self._audit(conn, changed, account.state, account.state, now, detail)
        return changed

    def history(self, conn: Connection, account_id: str) -> list[tuple[str | None, str]]:
        """The account's audited transitions, oldest first, as ``(from, to)`` pairs."""
        rows = conn.execute(select(account_audit.c.from_state, account_audit.c.to_state)
                            .where(account_audit.c.account_id == account_id)
                            .order_by(account_audit.c.id)).all()
        return [(r.from_state, r.to_state) for r in rows]

    @staticmethod
    def _audit(conn: Connection, account: Account, before: AccountState | None,
               after: AccountState, now: datetime, detail: dict[str, Any] | None) -> None:
        conn.execute(_AUDIT, {
            "account_id": account.account_id, "at": now,
            "from_state": before.value if before else None, "to_state": after.value,
            "reason": account.reason, "phone_number": account.phone_number, "detail": detail,
            "operator_inn": account.operator_inn})


