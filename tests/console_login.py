"""Logging in to a console in process, as a browser would: the form, its token, the cookie."""

from __future__ import annotations

import re

import httpx2

TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a console page carries in its forms."""
    found = TOKEN_FIELD.search(html)
    assert found is not None, html[:500]
    return found.group(1)


async def log_in(client: httpx2.AsyncClient, token: str) -> httpx2.Response:
    """Fill in the login form with ``token`` and send it; the form's answer (not followed)."""
    form = await client.get("/console/login")
    assert form.status_code == 200, form.text
    return await client.post("/console/login", data={
        "csrf_token": csrf_of(form.text), "token": token, "next": "/console/"})


async def logged_in(client: httpx2.AsyncClient, token: str, page: str = "/console/") -> str:
    """Log in with the right ``token``; the CSRF token of the session, read from ``page``."""
    answer = await log_in(client, token)
    assert answer.status_code == 303, answer.text
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    return csrf_of(shown.text)
