"""The messenger's figures per operator and UTC day, computed from ``account_audit``.

Each audit entry names the account's operator at the time (``operator_inn``; NULL for a
number routed to no operator, and for entries written before entries named one). Figures:

- ``identified``, ``refused``, ``unanswered``: accounts that entered that state on the day;
- ``identify_p50/p95``: seconds from entering ``pending`` (the question sent to the operator,
  re-asks after a notice included) to ``identified``; accounts identified in bulk
  (``identify-all``) entered the service already answered and have no such time;
- ``notices``: operator notices received that day (``received_notices``, the intake's
  insert-only record, which also holds notices that matched no account);
- ``blocked``: accounts moved to ``reidentification_required`` by a notice;
  ``reidentified``: those of them identified again since (at any later time), and
  ``reidentify_p50/p95`` the seconds it took; ``blocked - reidentified`` are still blocked.

As on the operator side (:mod:`numident.operator.sla`) the work is done in the database, with
window functions for the times between an account's entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, or_, select

from numident.core.accounts import AccountState
from numident.errors import NotFound
from numident.messenger.tables import account_audit, accounts, received_notices
from numident.storage.database import read_only
from numident.storage.reporting import (
    as_date,
    percentiles,
    period_bounds,
    seconds_between,
    utc_day,
)

QUANTILES = (0.5, 0.95)
_PENDING_LEAD = timedelta(days=1)
"""An identification answered on the day may have been asked the day before."""
NO_OPERATOR = "no operator"


@dataclass(frozen=True)
class OperatorDay:
    """One operator's figures for one UTC day; times in seconds, None without values."""

    operator: str
    inn: str | None
    day: date
    identified: int = 0
    refused: int = 0
    unanswered: int = 0
    identify_p50: float | None = None
    identify_p95: float | None = None
    notices: int = 0
    blocked: int = 0
    reidentified: int = 0
    reidentify_p50: float | None = None
    reidentify_p95: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def resolve_operator(engine: Engine, name: str, names: Mapping[str, str]) -> str:
    """The ИНН of the operator called ``name``: a configured name or ИНН (``names``: ИНН to
    name), or a name or ИНН the accounts hold; :class:`NotFound` (``OPERATOR_NOT_FOUND``)."""
    for inn, known in names.items():
        if name in (inn, known):
            return inn
    with read_only(engine) as conn:
        stored = conn.execute(select(accounts.c.operator_inn).where(
            or_(accounts.c.operator_inn == name, accounts.c.operator_name == name)).limit(1)
        ).scalar()
    if stored is None:
        raise NotFound(f"no operator {name}", code="OPERATOR_NOT_FOUND")
    return str(stored)


def messenger_report(engine: Engine, start: date, end: date, operator_inn: str | None = None,
                     *, names: Mapping[str, str] | None = None) -> list[OperatorDay]:
    """Figures per operator and day from ``start`` to ``end`` (both included), ordered by
    operator name and day; ``names`` maps an ИНН to the name shown (else the accounts' own
    name of the operator, else the ИНН)."""
    low, high = period_bounds(start, end)
    figures: dict[tuple[str | None, date], dict[str, Any]] = {}

    def add(rows: Iterable[dict[str, Any]]) -> None:
        for values in rows:
            key = (values.pop("inn"), as_date(values.pop("day")))
            figures.setdefault(key, {}).update(values)

    with read_only(engine) as conn:
        add(_outcomes(conn, low, high, operator_inn))
        add(_identify_times(conn, low, high, operator_inn))
        add(_notices(conn, low, high, operator_inn))
        add(_blocks(conn, low, high, operator_inn))
        shown = _names(conn, {inn for inn, _ in figures}, names or {})
    days = [OperatorDay(operator=shown.get(inn, NO_OPERATOR) if inn else NO_OPERATOR, inn=inn,
                        day=day, **values) for (inn, day), values in figures.items()]
    return sorted(days, key=lambda d: (d.operator, d.inn or "", d.day))


def _names(conn: Connection, inns: set[str | None], names: Mapping[str, str]) -> dict[str, str]:
    known = {i for i in inns if i}
    stored = dict(conn.execute(
        select(accounts.c.operator_inn, func.max(accounts.c.operator_name))
        .where(accounts.c.operator_inn.in_(known)).group_by(accounts.c.operator_inn)).all())
    return {inn: names.get(inn) or stored.get(inn) or inn for inn in known}


def _changed() -> Any:
    """An entry that changes the state (not one that records a change keeping it)."""
    t = account_audit.c
    return or_(t.from_state.is_(None), t.from_state != t.to_state)


def _in_period(low: datetime, high: datetime | None, operator_inn: str | None) -> Any:
    t = account_audit.c
    condition = and_(t.at >= low, t.at < high) if high is not None else t.at >= low
    return condition if operator_inn is None else and_(condition, t.operator_inn == operator_inn)


def _outcomes(conn: Connection, low: datetime, high: datetime,
              operator_inn: str | None) -> list[dict[str, Any]]:
    t = account_audit.c
    day = utc_day(conn, t.at)

    def count(state: AccountState) -> Any:
        return func.coalesce(func.sum(case((t.to_state == state.value, 1), else_=0)), 0)

    query = (select(t.operator_inn.label("inn"), day.label("day"),
                    count(AccountState.IDENTIFIED).label("identified"),
                    count(AccountState.REFUSED).label("refused"),
                    count(AccountState.UNANSWERED).label("unanswered"))
             .where(_in_period(low, high, operator_inn), _changed(),
                    t.to_state.in_([AccountState.IDENTIFIED.value, AccountState.REFUSED.value,
                                    AccountState.UNANSWERED.value]))
             .group_by(t.operator_inn, day))
    return [dict(r._mapping) for r in conn.execute(query)]


def _identify_times(conn: Connection, low: datetime, high: datetime,
                    operator_inn: str | None) -> list[dict[str, Any]]:
    t = account_audit.c
    pending = AccountState.PENDING.value
    entered = case((and_(t.to_state == pending,
                         or_(t.from_state.is_(None), t.from_state != pending)), t.at))
    history = (select(t.operator_inn, t.at, t.from_state, t.to_state,
                      func.max(entered).over(partition_by=t.account_id, order_by=t.id)
                      .label("asked_at"))
               .where(_in_period(low - _PENDING_LEAD, high, operator_inn))).subquery()
    h = history.c
    times = (select(h.operator_inn.label("inn"), utc_day(conn, h.at).label("day"),
                    seconds_between(conn, h.asked_at, h.at).label("seconds"))
             .where(h.at >= low, h.to_state == AccountState.IDENTIFIED.value,
                    h.from_state == pending, h.asked_at.is_not(None)))
    return _quantile_rows(conn, times, ("identify_p50", "identify_p95"))


def _notices(conn: Connection, low: datetime, high: datetime,
             operator_inn: str | None) -> list[dict[str, Any]]:
    n = received_notices.c
    day = utc_day(conn, n.received_at)
    query = (select(n.operator_inn.label("inn"), day.label("day"),
                    func.count().label("notices"))
             .where(n.received_at >= low, n.received_at < high).group_by(n.operator_inn, day))
    if operator_inn is not None:
        query = query.where(n.operator_inn == operator_inn)
    return [dict(r._mapping) for r in conn.execute(query)]


def _blocks(conn: Connection, low: datetime, high: datetime,
            operator_inn: str | None) -> list[dict[str, Any]]:
    t = account_audit.c
    blocked_state = AccountState.REIDENTIFICATION_REQUIRED.value
    is_block = and_(t.to_state == blocked_state, _changed())
    blocked_accounts = select(t.account_id).where(_in_period(low, high, operator_inn), is_block)
    # The next identification after each entry: an account's entries only come later in time.
    next_identified = func.min(case((t.to_state == AccountState.IDENTIFIED.value, t.at))).over(
        partition_by=t.account_id, order_by=t.id, rows=(0, None))
    history = (select(t.operator_inn, t.at, is_block.label("is_block"),
                      next_identified.label("identified_at"))
               .where(t.at >= low, t.account_id.in_(blocked_accounts))).subquery()
    h = history.c
    in_period = and_(h.is_block, h.at < high)
    if operator_inn is not None:
        in_period = and_(in_period, h.operator_inn == operator_inn)
    day = utc_day(conn, h.at)
    counts = (select(h.operator_inn.label("inn"), day.label("day"),
                     func.count().label("blocked"),
                     func.count(h.identified_at).label("reidentified"))
              .where(in_period).group_by(h.operator_inn, day))
    rows = [dict(r._mapping) for r in conn.execute(counts)]
    times = (select(h.operator_inn.label("inn"), day.label("day"),
                    seconds_between(conn, h.at, h.identified_at).label("seconds"))
             .where(in_period, h.identified_at.is_not(None)))
    quantiles = {(r["inn"], r["day"]): r for r in
                 _quantile_rows(conn, times, ("reidentify_p50", "reidentify_p95"))}
    for row in rows:
        row.update({k: v for k, v in quantiles.get((row["inn"], row["day"]), {}).items()
                    if k not in ("inn", "day")})
    return rows


def _quantile_rows(conn: Connection, times: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    figures = percentiles(conn, times, ["inn", "day"], "seconds", QUANTILES)
    return [{"inn": inn, "day": day, **dict(zip(names, values, strict=True))}
            for (inn, day), values in figures.items()]
