"""The messenger's console pages under ``/console/`` (behind ``messenger.admin_token``).

Accounts by state, identifications in flight and the health of each operator's gateway, the
notices received, and the progress of the bulk identification (``identify-all``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from numident.config import MessengerSettings
from numident.core.clock import Clock
from numident.messenger import console_figures
from numident.messenger.api import service
from numident.web.console.site import Console, Page, render

NAVIGATION = (("/console/", "Accounts and operators"), ("/console/notices", "Notices"),
              ("/console/bulk", "Bulk identification"))

router = APIRouter(prefix="/console", include_in_schema=False)


def messenger_console(settings: MessengerSettings, clock: Clock) -> Console:
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    return Console.build("numident messenger console", NAVIGATION, token, clock,
                         public_url=settings.public_url)


@router.get("/")
def overview(request: Request, session: str = Page) -> HTMLResponse:
    svc = service(request)
    names = svc.operator_names()
    health = svc.operators.health.summary()
    operators = sorted(set(names) | set(health))
    return render(request, "messenger/overview.html", session,
                  states=svc.accounts_by_state(), in_flight=svc.in_flight(),
                  health=[(inn, names.get(inn, inn), health.get(inn)) for inn in operators],
                  now=svc.clock.now())


@router.get("/notices")
def notices(request: Request, session: str = Page) -> HTMLResponse:
    svc = service(request)
    by_type, recent = svc.notices_received()
    return render(request, "messenger/notices.html", session, by_type=by_type, recent=recent,
                  names=svc.operator_names())


@router.get("/bulk")
def bulk(request: Request, session: str = Page) -> HTMLResponse:
    return render(request, "messenger/bulk.html", session,
                  progress=service(request).bulk_progress(),
                  statuses=console_figures.BULK_STATUSES)
