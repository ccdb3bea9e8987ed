"""The operator's console pages under ``/console/`` (behind ``operator.admin_token``).

Organizers with their scopes and limits, the traffic per organizer, the deferred requests
against their deadline, the notice outbox with its dead letters, and the import history. A
retry of a dead letter is the admin API's (``Gateway.retry_notice``).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from numident.config import OperatorSettings
from numident.core.clock import Clock
from numident.operator import console_figures, import_history
from numident.operator.api import gateway
from numident.outbox.store import OutboxRecord
from numident.web.console.site import HEADERS, Change, Console, Page, is_htmx, render

NAVIGATION = (("/console/", "Organizers and traffic"), ("/console/deadlines", "Deadlines"),
              ("/console/notices", "Notices"), ("/console/imports", "Imports"),
              ("/console/sla", "SLA report"), ("/console/audit", "Audit chain"))

router = APIRouter(prefix="/console", include_in_schema=False)


def operator_console(settings: OperatorSettings, clock: Clock) -> Console:
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    return Console.build("numident operator console", NAVIGATION, token, clock,
                         public_url=settings.public_url)


@router.get("/")
def overview(request: Request, session: str = Page) -> HTMLResponse:
    g = gateway(request)
    now = g.clock.now()
    rows = []
    for record in g.all_organizers():
        effective = g.limits.effective(record.id)
        rows.append({"record": record, "effective": effective,
                     "today": g.limits.counted(record.id, now.date())})
    traffic = console_figures.traffic(g.engine, now,
                                      deadline=g.deadline.total_seconds())
    return render(request, "operator/overview.html", session, organizers=rows,
                  traffic=traffic, totals=console_figures.totals(traffic), now=now)


@router.get("/deadlines")
def deadlines(request: Request, session: str = Page) -> HTMLResponse:
    g = gateway(request)
    now = g.clock.now()
    total, pending = console_figures.pending_requests(g.engine, now)
    return render(request, "operator/deadlines.html", session, total=total, pending=pending,
                  now=now, deferred=g.settings.deferred, hidden=console_figures.hidden,
                  soon=g.deadline.total_seconds() / 4)


Status = Literal["pending", "relayed", "delivered", "dead"]


@router.get("/notices")
def notices(request: Request, session: str = Page, status: Status | None = None,
            organizer: str | None = None) -> HTMLResponse:
    counts, shown = gateway(request).notices(status=status, organizer=organizer or None,
                                             limit=200)
    return render(request, "operator/notices.html", session, counts=counts, notices=shown,
                  shown_status=status, organizer=organizer or "", message=None)


@router.get("/notices/counts")
def notice_counts(request: Request, session: str = Change) -> HTMLResponse:
    """The notices per status, for htmx to keep the page's tiles current."""
    return render(request, "operator/notice_counts.html", session,
                  counts=gateway(request).outbox.counts())


def _notice(request: Request, notice_id: str) -> OutboxRecord:
    return gateway(request).notice(notice_id)


@router.get("/notices/{notice_id}/row")
def notice_row(notice_id: str, request: Request, session: str = Change) -> HTMLResponse:
    """One row of the outbox table, for htmx to refresh while the notice is on its way."""
    return render(request, "operator/notice_row.html", session,
                  notice=_notice(request, notice_id), message=None)


@router.post("/notices/{notice_id}/retry")
def retry(notice_id: str, request: Request, session: str = Change) -> Response:
    requeued = gateway(request).retry_notice(notice_id)
    message = None if requeued else "Only a dead letter can be sent again."
    if is_htmx(request):
        # 200 either way: htmx swaps no 4xx answer in, and the row says why nothing happened.
        return render(request, "operator/notice_row.html", session,
                      notice=_notice(request, notice_id), message=message)
    return RedirectResponse("/console/notices", status_code=303, headers=HEADERS)


@router.get("/imports")
def imports(request: Request, session: str = Page) -> HTMLResponse:
    return render(request, "operator/imports.html", session,
                  runs=import_history.recent(gateway(request).engine))
