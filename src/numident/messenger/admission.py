"""Whether a code may be sent: the send budgets and the range circuit, kept in the database.

Every admitted code request is a ``code_sends`` row; the budgets (per number, plan range,
region, client address and in total) and the circuit (per plan range) are counted from those
rows, so that they hold across every messenger process on one database. Admission runs in the
transaction that inserts the row, under one lock (PostgreSQL: a transaction-level advisory
lock; SQLite: its single writer), so that two processes never both take the last send of a
budget. Sends are rare next to the other traffic, so that lock costs nothing that matters.

Each refusal is a value (:class:`~numident.core.sending.Refusal`), written to the append-only
``possession_audit`` by the caller and counted in the metrics.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    true,
    update,
)

from numident.config import Budget, PossessionSettings
from numident.core.sending import Refusal, budget_wait, circuit_wait
from numident.messenger.tables import code_sends, possession_audit

_LOCK_KEY = 0x6E756D69  # "numi": the advisory lock that serialises admissions


def _recent(where: ColumnElement[bool]) -> Select[datetime]:
    """The times of the newest sends that ``where`` selects since ``b_since``, at most
    ``b_limit`` of them."""
    return (select(code_sends.c.at).where(where, code_sends.c.at > bindparam("b_since"))
            .order_by(code_sends.c.at.desc()).limit(bindparam("b_limit", type_=Integer)))


# Built once (building a statement costs more than running it); values come as parameters.
_BUDGETS: dict[str, Select[datetime]] = {
    "per_number": _recent(code_sends.c.phone_number == bindparam("b_key")),
    "per_address": _recent(code_sends.c.client_address == bindparam("b_key")),
    "per_range": _recent(code_sends.c.plan_range == bindparam("b_key")),
    "per_region": _recent(code_sends.c.region == bindparam("b_key")),
    "total": _recent(true()),
}
_CIRCUIT = select(code_sends.c.at, code_sends.c.confirmed_at).where(
    code_sends.c.plan_range == bindparam("b_key"), code_sends.c.at > bindparam("b_since"),
    code_sends.c.status != "failed")
_EXPIRE = delete(code_sends).where(code_sends.c.at < bindparam("b_before"))
_RECORD = insert(code_sends).returning(code_sends.c.id)
_FINISH = update(code_sends).where(code_sends.c.id == bindparam("b_id"))
_CONFIRMED = update(code_sends).where(code_sends.c.id == bindparam("b_id"),
                                      code_sends.c.confirmed_at.is_(None))
_AUDIT = insert(possession_audit)


@dataclass(frozen=True)
class SendRequest:
    account_id: str
    phone_number: str
    plan_range: str | None
    region: str | None
    client_address: str | None


def client_key(address: str | None) -> str | None:
    """The budget key of a client address: an IPv4 address, or the /64 of an IPv6 one (a
    single host is given a whole /64); None when there is no usable address."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


class SendAdmission:
    def __init__(self, settings: PossessionSettings) -> None:
        self.settings = settings

    def serialise(self, conn: Connection) -> None:
        """Hold the admission lock until ``conn``'s transaction ends."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})

    def judge(self, conn: Connection, request: SendRequest, now: datetime) -> Refusal | None:
        """The first budget or circuit that refuses one more send, or None."""
        budgets = self.settings.budgets
        # Each budget's parameters: which sends it counts (None: it counts none here).
        checks: list[tuple[str, Budget | None, dict[str, str] | None]] = [
            ("per_number", budgets.per_number, {"b_key": request.phone_number}),
            ("per_address", budgets.per_address,
             {"b_key": request.client_address} if request.client_address else None),
            ("per_range", budgets.per_range,
             {"b_key": request.plan_range} if request.plan_range else None),
            ("per_region", budgets.per_region,
             {"b_key": request.region} if request.region else None),
            ("total", budgets.total, {}),
        ]
        for reason, budget, counted in checks:
            if budget is None or counted is None:
                continue
            window = timedelta(seconds=budget.window_seconds)
            times = conn.execute(_BUDGETS[reason], {
                **counted, "b_since": now - window, "b_limit": budget.sends + 1,
            }).scalars().all()
            wait = budget_wait(times, budget.sends, window, now)
            if wait is not None:
                return Refusal(reason, wait)
        return self._circuit(conn, request, now)

    def _circuit(self, conn: Connection, request: SendRequest, now: datetime) -> Refusal | None:
        circuit = self.settings.circuit
        if circuit is None or request.plan_range is None:
            return None
        window = timedelta(seconds=circuit.window_seconds)
        rows = conn.execute(_CIRCUIT, {"b_key": request.plan_range,
                                       "b_since": now - window}).all()
        wait = circuit_wait([(at, confirmed is not None) for at, confirmed in rows],
                            circuit.min_sends, circuit.min_success_ratio, window, now)
        return None if wait is None else Refusal("circuit_open", wait)

    @property
    def retention(self) -> timedelta:
        """How long a send counts for anything: the longest window, or a code's life."""
        budgets = self.settings.budgets
        windows = [b.window_seconds for b in (budgets.per_number, budgets.per_address,
                                              budgets.per_range, budgets.per_region,
                                              budgets.total) if b is not None]
        if self.settings.circuit is not None:
            windows.append(self.settings.circuit.window_seconds)
        return timedelta(seconds=max([self.settings.code_ttl_seconds, *windows]))

    def record(self, conn: Connection, request: SendRequest, now: datetime) -> int:
        """Insert the admitted send (status ``sending``); its id. Sends older than the
        ``retention`` are deleted on the way (the audit trail keeps their story)."""
        conn.execute(_EXPIRE, {"b_before": now - self.retention})
        return int(conn.execute(_RECORD, {
            "at": now, "account_id": request.account_id, "phone_number": request.phone_number,
            "plan_range": request.plan_range, "region": request.region,
            "client_address": request.client_address, "status": "sending"}).scalar_one())

    def finish(self, conn: Connection, send_id: int, status: str, channel: str | None) -> None:
        conn.execute(_FINISH, {"b_id": send_id, "status": status, "channel": channel})

    def confirmed(self, conn: Connection, send_id: int, now: datetime) -> None:
        conn.execute(_CONFIRMED, {"b_id": send_id, "confirmed_at": now})


def audit(conn: Connection, now: datetime, account_id: str, phone_number: str, event: str, *,
          client_address: str | None = None, channel: str | None = None,
          reason: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """One entry of the append-only possession audit trail, inserted unsealed in the caller's
    transaction; the sealer chains it (:func:`numident.audit.log.possession_log`)."""
    conn.execute(_AUDIT, {
        "at": now, "account_id": account_id, "phone_number": phone_number, "event": event,
        "client_address": client_address, "channel": channel, "reason": reason,
        "detail": detail})


def refusal_counts(conn: Connection) -> dict[str, int]:
    """How many refusals the audit trail holds, by reason."""
    rows = conn.execute(select(possession_audit.c.reason, func.count())
                        .where(possession_audit.c.event == "refused")
                        .group_by(possession_audit.c.reason)).all()
    return {str(reason): int(count) for reason, count in rows}
