"""The operator console's compliance pages: the SLA report and the audit chain's status.

The figures are :func:`numident.operator.sla.sla_report`'s (from the audit trail, as the
``report sla`` command prints them); the chain is walked by
:func:`numident.audit.verify.verify_chain` when staff ask for it, with the gateway's own key,
and the last result is kept for the page (this process's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from numident.audit.bundle import period
from numident.audit.checkpoints import key_lookup
from numident.audit.log import audit_log
from numident.audit.verify import Broken, Verified, verify_chain
from numident.errors import InvalidInput
from numident.operator.api import gateway
from numident.operator.sla import OrganizerDay, sla_report
from numident.web.console.site import HEADERS, Change, Page, is_htmx, render

router = APIRouter(prefix="/console", include_in_schema=False)
DEFAULT_DAYS = 7


def _day(value: str | None, name: str, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name}: {value!r} is not a day (YYYY-MM-DD)") from None


@router.get("/sla")
def sla(request: Request, session: str = Page, start: str | None = None,
        end: str | None = None, organizer: str | None = None) -> HTMLResponse:
    g = gateway(request)
    now = g.clock.now()
    today = now.date()
    error = None
    rows: list[OrganizerDay] = []
    try:
        last = _day(end, "to", today)
        first = _day(start, "from", last - timedelta(days=DEFAULT_DAYS - 1))
        period(first, last, today)
        rows = sla_report(g.engine, first, last, organizer or None, now=now,
                          deadline=g.deadline)
    except InvalidInput as exc:  # NotFound (an unknown organizer) included
        first, last, error = today - timedelta(days=DEFAULT_DAYS - 1), today, str(exc)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    by_organizer: dict[str, dict[date, OrganizerDay]] = {}
    for row in rows:
        by_organizer.setdefault(row.organizer, {})[row.day] = row
    series = {name: {
        "in_time": [(d.isoformat(), per_day[d].answered_in_time if d in per_day else 0)
                    for d in days],
        "missed": [(d.isoformat(), per_day[d].late + per_day[d].refused if d in per_day
                    else 0) for d in days]} for name, per_day in by_organizer.items()}
    return render(request, "operator/sla.html", session, status=400 if error else 200,
                  error=error, first=first, last=last, organizer=organizer or "",
                  days=days, by_organizer=by_organizer, series=series)


@dataclass(frozen=True)
class ChainStatus:
    result: Verified | Broken
    at: datetime


@router.get("/audit")
def audit(request: Request, session: str = Page) -> HTMLResponse:
    chain: ChainStatus | None = getattr(request.app.state, "audit_status", None)
    return render(request, "operator/audit.html", session, chain=chain,
                  broken=chain is not None and isinstance(chain.result, Broken))


@router.post("/audit/verify")
async def verify(request: Request, session: str = Change) -> Response:
    """Walk the chain now (in a worker thread: it reads every entry) and keep the result."""
    g = gateway(request)
    keys = key_lookup(request.app.state.signing_key.public())
    result = await anyio.to_thread.run_sync(
        lambda: verify_chain(g.engine, audit_log("operator"), keys, seal_first=False))
    request.app.state.audit_status = ChainStatus(result, g.clock.now())
    if is_htmx(request):
        return audit(request, session)
    return RedirectResponse("/console/audit", status_code=303, headers=HEADERS)
