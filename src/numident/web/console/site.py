"""What the operator's and the messenger's consoles share: login, pages, assets, CSRF checks.

Each side builds a :class:`Console` with its admin credential and its navigation, installs it
with :func:`install_console`, and adds its own routes under ``/console/`` that depend on
:data:`Page` (a page: without a session, a redirect to the login form) or :data:`Change` (a
state change or an htmx fragment: without a session 401, without the CSRF token 403). No page
loads anything from another origin: the stylesheet and htmx are files of this package, and
the Content-Security-Policy allows scripts, styles and images from the process only.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from numident.core.clock import Clock
from numident.errors import PermissionDenied, Unauthenticated
from numident.web.console import charts
from numident.web.console.session import COOKIE, CSRF_FIELD, CSRF_HEADER, ConsoleSessions

LOGIN_COOKIE = "numident_console_login"
"""The login form's own double-submit token: a page of another site cannot log the browser
into a session of its choosing."""

HEADERS = {
    "Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"}

_ASSETS = {"console.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml",
           "htmx.min.js": "text/javascript; charset=utf-8",
           "htmx.LICENSE": "text/plain; charset=utf-8"}
_PUBLIC_ASSETS = {"console.css", "favicon.svg"}  # the login form's; the rest for a session


@dataclass(frozen=True)
class Console:
    """One side's console: its title, its pages for the navigation, and its credential
    (None: the console is disabled, as the admin API is, and every login is refused)."""

    title: str
    navigation: Sequence[tuple[str, str]]
    sessions: ConsoleSessions | None
    secure_cookie: bool = False
    """Mark the cookie Secure even when the request arrived over http (behind a proxy)."""

    @classmethod
    def build(cls, title: str, navigation: Sequence[tuple[str, str]],
              admin_token: str | None, clock: Clock, *, public_url: str | None) -> Console:
        sessions = ConsoleSessions(admin_token, clock) if admin_token else None
        return cls(title, navigation, sessions,
                   secure_cookie=bool(public_url and public_url.startswith("https:")))


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("numident.web.console", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    environment.globals["bar_chart"] = charts.bar_chart
    environment.globals["row_chart"] = charts.row_chart
    environment.filters["when"] = charts.when
    environment.filters["duration"] = charts.duration
    return environment


TEMPLATES = _environment()


def console(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


class LoginRequired(Exception):
    """A page asked for without a session: the browser is sent to the login form."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _session(request: Request) -> str | None:
    sessions = console(request).sessions
    cookie = request.cookies.get(COOKIE)
    return cookie if sessions is not None and sessions.valid(cookie) else None


def page_session(request: Request) -> str:
    """The session cookie of a page's request; without one, the login form."""
    cookie = _session(request)
    if cookie is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}"
                                                if request.url.query else ""))
    return cookie


async def form(request: Request) -> dict[str, str]:
    """The request's ``application/x-www-form-urlencoded`` fields (first value of each)."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        parsed = parse_qs((await request.body()).decode("utf-8", "replace"))
        return {name: values[0] for name, values in parsed.items()}
    return {}


async def change_session(request: Request) -> str:
    """The session of a state change or fragment: 401 without one; for anything but GET, 403
    unless the CSRF token comes in the form field or the header."""
    cookie = _session(request)
    if cookie is None:
        raise Unauthenticated("log in to the console first", code="CONSOLE_LOGIN_REQUIRED")
    if request.method != "GET":
        token = request.headers.get(CSRF_HEADER) or (await form(request)).get(CSRF_FIELD)
        sessions = console(request).sessions
        assert sessions is not None
        if not sessions.csrf_ok(cookie, token):
            raise PermissionDenied("the console's CSRF token is missing or wrong",
                                   code="CSRF_TOKEN_INVALID")
    return cookie


Page = Depends(page_session)
Change = Depends(change_session)


def render(request: Request, template: str, session: str | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    """``template`` with the console's title, navigation and (in a session) CSRF token."""
    site = console(request)
    csrf = site.sessions.csrf_token(session) if site.sessions and session else ""
    body = TEMPLATES.get_template(template).render(
        site=site, path=request.url.path, csrf=csrf, csrf_field=CSRF_FIELD, **context)
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _secure(request: Request) -> bool:
    return console(request).secure_cookie or request.url.scheme == "https"


def _safe_next(target: str | None) -> str:
    # Only a path of this console: never another host (an open redirect).
    if target and target.startswith("/console/") and not target.startswith("/console//"):
        return target
    return "/console/"


router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    response = render(request, "login.html", None, login_nonce=nonce, next=_safe_next(next),
                      error=None, disabled=console(request).sessions is None)
    response.set_cookie(LOGIN_COOKIE, nonce, path="/console/login", httponly=True,
                        samesite="strict", secure=_secure(request))
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await form(request)
    site = console(request)
    target = _safe_next(fields.get("next"))
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or not secrets.compare_digest(nonce, fields.get(CSRF_FIELD, "")):
        raise PermissionDenied("the login form's CSRF token is missing or wrong",
                               code="CSRF_TOKEN_INVALID")
    cookie = site.sessions.login(fields.get("token", "")) if site.sessions else None
    if cookie is None:
        fresh = secrets.token_urlsafe(16)
        response: Response = render(
            request, "login.html", None, status=401, login_nonce=fresh, next=target,
            error="That is not the admin token.", disabled=site.sessions is None)
        response.set_cookie(LOGIN_COOKIE, fresh, path="/console/login", httponly=True,
                            samesite="strict", secure=_secure(request))
        return response
    response = RedirectResponse(target, status_code=303, headers=HEADERS)
    response.set_cookie(COOKIE, cookie, path="/console/", httponly=True, samesite="strict",
                        secure=_secure(request), max_age=int(site.sessions.lifetime
                                                             .total_seconds()) if site.sessions
                        else None)
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")
    return response


@router.post("/logout")
def logout(_: str = Change) -> Response:
    response = RedirectResponse("/console/login", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path="/console/", httponly=True, samesite="strict")
    return response


@router.get("/static/{name}")
def asset(name: str, request: Request) -> Response:
    if name not in _ASSETS:
        return Response(status_code=404)
    if name not in _PUBLIC_ASSETS and _session(request) is None:
        raise Unauthenticated("log in to the console first", code="CONSOLE_LOGIN_REQUIRED")
    data = files("numident.web.console").joinpath("static", name).read_bytes()
    return Response(data, media_type=_ASSETS[name],
                    headers={"Cache-Control": "private, max-age=3600",
                             "X-Content-Type-Options": "nosniff"})


def install_console(app: FastAPI, site: Console, *routers: APIRouter) -> None:
    """Serve ``site`` at ``/console/``: the login and assets, then the side's ``routers``."""
    app.state.console = site

    async def to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/console/login?next={quote(exc.path, safe='/')}",
                                status_code=303, headers=HEADERS)

    app.add_exception_handler(LoginRequired, to_login)
    app.include_router(router)
    for side in routers:
        app.include_router(side)

