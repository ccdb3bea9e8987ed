"""The operator's console in process: login, what it refuses, and the figures it shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import unquote

import httpx2
import pytest
from operator_harness import BASE_URL, SUBSCRIBERS, Harness, HarnessFactory

from console_login import log_in, logged_in
from numident.core.clock import FakeClock
from numident.errors import InvalidFile

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)
ADMIN_TOKEN = "admin-secret"


def cells(html: str, row_id: str) -> list[str]:
    """The text of each cell of the table row ``row_id``."""
    row = re.search(rf'<tr id="{re.escape(row_id)}"[^>]*>(.*?)</tr>', html, re.S)
    assert row is not None, row_id
    return [re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1), re.S)]


def figure(html: str, element_id: str) -> str:
    found = re.search(rf'id="{re.escape(element_id)}">([^<]*)<', html)
    assert found is not None, element_id
    return found.group(1)



async def test_pages_redirect_to_the_login_and_everything_else_is_refused_without_a_session(
        make_gateway: HarnessFactory) -> None:
    """Without a session a page sends the browser to the login form (coming back after),
    while a fragment, a retry and the script are 401 with the error body; the stylesheet
    the login form needs is the one thing served."""
    h: Harness = await make_gateway()
    page = await h.client.get("/console/notices?status=dead")
    assert page.status_code == 303
    assert unquote(page.headers["location"]) == "/console/login?next=/console/notices?status=dead"
    for method, path in (("GET", "/console/notices/n-1/row"), ("GET", "/console/notices/counts"),
                         ("POST", "/console/notices/n-1/retry"),
                         ("GET", "/console/static/htmx.min.js"), ("POST", "/console/logout")):
        refused = await h.client.request(method, path)
        assert refused.status_code == 401, (method, path)
        assert refused.json()["code"] == "CONSOLE_LOGIN_REQUIRED"
    h.client.cookies.set("numident_console", "9999999999.x.y")  # no valid MAC
    assert (await h.client.get("/console/")).status_code == 303
    style = await h.client.get("/console/static/console.css")
    assert (style.status_code, style.headers["content-type"]) == (200, "text/css; charset=utf-8")


async def test_login_needs_the_admin_token_and_sets_a_strict_http_only_cookie(
        make_gateway: HarnessFactory) -> None:
    """A wrong token is 401 on the form again; the right one is a 303 to the console with a
    cookie that scripts cannot read and other sites cannot send; a login post without the
    form's own token is refused."""
    h: Harness = await make_gateway()
    wrong = await log_in(h.client, "not-it")
    assert wrong.status_code == 401
    assert "That is not the admin token." in wrong.text
    assert "numident_console=" not in wrong.headers.get("set-cookie", "")
    bare = await h.client.post("/console/login", data={"token": ADMIN_TOKEN})
    assert (bare.status_code, bare.json()["code"]) == (403, "CSRF_TOKEN_INVALID")

    right = await log_in(h.client, ADMIN_TOKEN)
    assert (right.status_code, right.headers["location"]) == (303, "/console/")
    cookie = next(c for c in right.headers.get_list("set-cookie")
                  if c.startswith("numident_console="))
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "secure" not in attributes  # served over http here
    page = await h.client.get("/console/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'; "
                                                              "script-src 'self'")


async def test_the_cookie_is_secure_when_the_console_is_served_over_https(
        make_gateway: HarnessFactory) -> None:
    h: Harness = await make_gateway()
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=h.app),
                                base_url="https://127.0.0.1:8443")
    async with client:
        answer = await log_in(client, ADMIN_TOKEN)
    cookie = next(c for c in answer.headers.get_list("set-cookie")
                  if c.startswith("numident_console="))
    assert "secure" in {a.strip().lower() for a in cookie.split(";")}


async def test_without_an_admin_token_the_console_refuses_every_login(
        make_gateway: HarnessFactory) -> None:
    h: Harness = await make_gateway(admin_token=None)
    form = await h.client.get("/console/login")
    assert "The console is disabled" in form.text
    answer = await log_in(h.client, "")
    assert answer.status_code == 401
    assert (await h.client.get("/console/")).status_code == 303


async def test_the_overview_shows_organizers_their_limits_and_traffic_per_minute(
        make_gateway: HarnessFactory) -> None:
    """Three requests at 12:00 and two at 12:01 from chat, answered at once; bank has its own
    rate limit, chat the gateway's default daily quota."""
    clock = FakeClock(T0)
    h: Harness = await make_gateway(clock=clock, limits={"daily_quota": 1000})
    h.register("bank")
    h.import_csv(SUBSCRIBERS)
    put = await h.client.put("/admin/v1/organizers/bank/limits",
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                             json={"rateLimit": 50, "dailyQuota": None})
    assert put.status_code == 200, put.text
    for index in range(3):
        assert (await h.identify("+79161234567", f"u-{index}")).status_code == 200
    clock.advance(60)
    for index in range(2):
        assert (await h.identify("+79031112233", f"v-{index}")).status_code == 200
    await logged_in(h.client, ADMIN_TOKEN)
    page = (await h.client.get("/console/")).text

    assert figure(page, "total-organizers") == "2"
    assert figure(page, "total-received") == "5"
    assert figure(page, "total-late") == "0"
    assert cells(page, "organizer-chat")[:5] == [
        "chat", "identification", "unlimited (default)", "1000 (default)", "5"]
    assert cells(page, "organizer-bank")[:5] == ["bank", "identification", "50",
                                                 "1000 (default)", "0"]
    rpm = re.search(r'id="rpm-chat".*?</figure>', page, re.S)
    assert rpm is not None
    shown = dict(re.findall(r'<tr><th scope="row">([^<]+)</th><td class="number">(\d+)</td>',
                            rpm.group(0)))
    assert (shown["12:00"], shown["12:01"], len(shown)) == ("3", "2", 60)
    assert sum(int(v) for v in shown.values()) == 5
    assert "<title>12:00: 3 requests</title>" in rpm.group(0)
    answers = re.search(r'id="answers-chat".*?</figure>', page, re.S)
    assert answers is not None
    assert "<title>&lt; 1 s: 5 answers</title>" in answers.group(0)
    assert "<title>late (&gt; 20 min): 0 answers</title>" in answers.group(0)
    assert 'id="rpm-bank"' not in page  # no traffic, no chart


async def test_the_deadline_view_lists_pending_requests_nearest_deadline_first(
        make_gateway: HarnessFactory) -> None:
    clock = FakeClock(T0)
    h: Harness = await make_gateway(clock=clock, deferred=True)
    h.import_csv(SUBSCRIBERS)
    first = await h.identify("+79161234567", "u-1")
    assert first.status_code == 202, first.text
    clock.advance(300)
    assert (await h.identify("+79031112233", "u-2")).status_code == 202
    clock.advance(60)
    await logged_in(h.client, ADMIN_TOKEN, "/console/deadlines")
    page = (await h.client.get("/console/deadlines")).text
    assert figure(page, "pending-total") == "2"
    rows = re.findall(r"<tr>\s*<td><code>([^<]+)</code></td><td>chat</td><td>([^<]+)</td>"
                      r".*?<td class=\"number[^\"]*\">([^<]+)</td>", page, re.S)
    assert [(r[1], r[2]) for r in rows] == [("+7916•••4567", "14 min 00 s"),
                                            ("+7903•••2233", "19 min 00 s")]
    assert rows[0][0] == first.json()["requestId"]


async def test_a_dead_letter_is_retried_from_the_console_only_with_the_csrf_token(
        make_gateway: HarnessFactory) -> None:
    """The receiver refuses the notice (400: dead at once); a retry without the token, or
    with another session's, is 403 and changes nothing; with it the notice is pending
    again and delivered once the receiver takes it."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    assert (await h.identify("+79161234567", "u-1")).status_code == 200
    h.receiver_status = 400
    event = await h.client.post("/admin/v1/events",
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                json={"type": "contract_terminated",
                                      "phoneNumber": "+79161234567"})
    assert event.status_code == 201, event.text
    await h.deliver_notices()
    csrf = await logged_in(h.client, ADMIN_TOKEN, "/console/notices")
    page = (await h.client.get("/console/notices?status=dead")).text
    assert figure(page, "count-dead") == "1"
    [notice_id] = re.findall(r'<tr id="notice-([^"]+)"', page)
    assert cells(page, f"notice-{notice_id}")[2:5] == ["notice", "dead", "1"]

    retry = f"/console/notices/{notice_id}/retry"
    assert (await h.client.post(retry)).status_code == 403
    other = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=h.app), base_url=BASE_URL)
    async with other:
        await logged_in(other, ADMIN_TOKEN)
        # Its first character changed: "x" + csrf[1:] was the token itself when it began with x.
        forged = ("y" if csrf.startswith("x") else "x") + csrf[1:]
        stolen = await h.client.post(retry, data={"csrf_token": forged})
    assert (stolen.status_code, stolen.json()["code"]) == (403, "CSRF_TOKEN_INVALID")
    assert figure((await h.client.get("/console/notices")).text, "count-dead") == "1"

    h.receiver_status = 200
    row = await h.client.post(retry, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert row.status_code == 200
    assert cells(row.text, f"notice-{notice_id}")[3] == "pending"
    assert f'hx-get="/console/notices/{notice_id}/row"' in row.text
    assert await h.deliver_notices() == 1
    again = await h.client.get(f"/console/notices/{notice_id}/row")
    assert cells(again.text, f"notice-{notice_id}")[3] == "delivered"
    assert "hx-get" not in again.text
    twice = await h.client.post(retry, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert "Only a dead letter can be sent again." in twice.text
    assert cells(twice.text, f"notice-{notice_id}")[3] == "delivered"
    repeat = await h.client.post(retry, data={"csrf_token": csrf})
    assert repeat.status_code == 303  # a plain form: back to the list
    assert figure((await h.client.get("/console/notices")).text, "count-delivered") == "1"
    tiles = (await h.client.get("/console/notices/counts")).text
    assert (figure(tiles, "count-delivered"), figure(tiles, "count-dead")) == ("1", "0")


async def test_imports_loaded_and_refused_are_kept_in_the_history(
        make_gateway: HarnessFactory) -> None:
    h: Harness = await make_gateway(clock=FakeClock(T0))
    h.import_csv(SUBSCRIBERS)
    with pytest.raises(InvalidFile):
        h.import_csv("phone_number,contract_id,status,activated_at\n+7916,C-9,active,2024-01-01\n")
    await logged_in(h.client, ADMIN_TOKEN, "/console/imports")
    page = (await h.client.get("/console/imports")).text
    runs = re.findall(r'<tr class="import">(.*?)</tr>', page, re.S)
    assert len(runs) == 2
    refused, loaded = ([re.sub(r"<[^>]+>", "", c).strip()
                        for c in re.findall(r"<td[^>]*>(.*?)</td>", run, re.S)] for run in runs)
    assert loaded[1:9] == ["export.csv", "loaded", "4", "4", "0", "0", "0", "0"]
    assert refused[2].startswith("refused")
    assert "line 2" in refused[2]
    assert refused[7] == "1"


async def test_logout_needs_the_csrf_token_and_then_drops_the_cookie(
        make_gateway: HarnessFactory) -> None:
    h: Harness = await make_gateway()
    csrf = await logged_in(h.client, ADMIN_TOKEN)
    assert (await h.client.post("/console/logout")).status_code == 403
    assert (await h.client.get("/console/")).status_code == 200
    out = await h.client.post("/console/logout", data={"csrf_token": csrf})
    assert (out.status_code, out.headers["location"]) == (303, "/console/login")
    assert 'numident_console=""' in out.headers["set-cookie"]
    assert "max-age=0" in out.headers["set-cookie"].lower()
    assert (await h.client.get("/console/")).status_code == 303
