"""Both consoles in a real browser: Debian's Chromium against ``serve`` processes on loopback.

A known scenario is played through the public interfaces first (the CLI, the admin API, an
organizer's private_key_jwt token, a notice receiver on loopback); the browser then logs in,
reads the figures, retries a dead letter and sees it delivered. Screenshots are kept in
``test-artifacts/screenshots/`` (see ``browsers``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from browsers import DESKTOP, launch, screenshots
from e2e_servers import (
    ALFA_INN,
    Receiver,
    Server,
    cli,
    notice_receiver,
    start_server,
    two_sides,
    wait_for,
)
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Playwright, expect

from numident.client.assertions import make_client_assertion, token_request_form
from numident.client.keys import generate_key
from numident.core.clock import SystemClock
from numident.messenger.sms import last_code_in_file

OPERATOR_TOKEN = "console-operator-admin"
MESSENGER_TOKEN = "console-messenger-admin"
ADMIN = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
SUBSCRIBERS = ("phone_number,contract_id,status,activated_at\n"
               "+79165550001,A-1,active,2024-01-01\n"
               "+79165550002,A-2,active,2024-01-01\n"
               "+79165550003,A-3,active,2024-01-01\n")


@pytest.fixture(scope="module")
def browser(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[BrowserContext]:
    context = launch(playwright, tmp_path_factory.mktemp("chromium-profile"), DESKTOP)
    try:
        yield context
    finally:
        context.close()


def watch_console(page: Page) -> list[str]:
    """The browser's console errors and warnings (CSP refusals are reported there)."""
    seen: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            seen.append(message.text)

    page.on("console", record)
    return seen


def log_in(page: Page, url: str, token: str) -> None:
    """Open the console without a session, land on the login form, log in with ``token``."""
    page.context.clear_cookies()
    page.goto(f"{url}/console/")
    assert page.url.startswith(f"{url}/console/login?next=")
    page.get_by_label("Admin token").fill(token)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    assert page.url == f"{url}/console/"


@dataclass
class Gateway:
    server: Server
    receiver: Receiver

    @property
    def url(self) -> str:
        return self.server.url

    def dead_letters(self) -> set[str]:
        listed = httpx2.get(f"{self.url}/admin/v1/notices", headers=ADMIN,
                            params={"status": "dead"})
        return {n["id"] for n in listed.json()["notices"]}

    def dead_count(self) -> int:
        return int(httpx2.get(f"{self.url}/admin/v1/notices", headers=ADMIN)
                   .json()["counts"]["dead"])

    def dead_letter(self, number: str) -> str:
        """Terminate ``number``'s contract while the receiver refuses notices (400): the id
        of its notice, once that is a dead letter."""
        before = self.dead_letters()
        self.receiver.status = 400
        event = httpx2.post(f"{self.url}/admin/v1/events", headers=ADMIN, json={
            "type": "contract_terminated", "phoneNumber": number})
        assert event.json()["notices"] == 1
        assert wait_for(lambda: len(self.dead_letters() - before) == 1)
        [new] = self.dead_letters() - before
        return new


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway process for the module (a process start is seconds on a busy machine),
    after a known day: the export imported, organizer "chat" with its notices going to a
    receiver on loopback, three identifications (two confirmed, one number unknown)."""
    tmp_path = tmp_path_factory.mktemp("gateway")
    env = {"NUMIDENT_HOME": str(tmp_path / "home"),
           "NUMIDENT_OPERATOR__ADMIN_TOKEN": OPERATOR_TOKEN}
    export = tmp_path / "subscribers.csv"
    export.write_text(SUBSCRIBERS, encoding="utf-8")
    cli(["operator", "import-subscribers", str(export)], env)
    key = generate_key()
    with notice_receiver() as receiver:
        server = start_server("operator", env, tmp_path / "gateway.log")
        try:
            added = httpx2.post(f"{server.url}/admin/v1/organizers", headers=ADMIN, json={
                "name": "chat", "noticeUrl": receiver.url, "dailyQuota": 5000,
                "publicKey": json.dumps(key.public_jwk())})
            assert added.status_code == 201, added.text
            assertion = make_client_assertion(key, "chat", server.url, SystemClock())
            token = httpx2.post(f"{server.url}/oauth2/token", data=token_request_form(assertion))
            assert token.status_code == 200, token.text
            bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
            for number, code in (("+79165550001", "u-1"), ("+79165550002", "u-2"),
                                 ("+79165559999", "u-3")):
                answer = httpx2.post(f"{server.url}/identification/v1/requests", headers=bearer,
                                     json={"phoneNumber": number, "identificationCode": code})
                assert answer.status_code == 200, answer.text
            yield Gateway(server, receiver)
        finally:
            server.stop()


def test_operator_console_shows_the_day_and_a_dead_letter_is_retried_and_delivered(
        gateway: Gateway, browser: BrowserContext) -> None:
    """Log in; the overview counts the three requests and chat's limits; the notice page
    has the dead letter, whose Retry (htmx, with the CSRF header) sends it again, and the
    row turns delivered by itself once the receiver has it; the import is in the history."""
    notice_id = gateway.dead_letter("+79165550001")
    page = browser.new_page()
    errors = watch_console(page)
    page.context.clear_cookies()
    page.goto(f"{gateway.url}/console/notices")
    page.screenshot(path=screenshots() / "operator-login.png", full_page=True)
    log_in(page, gateway.url, OPERATOR_TOKEN)
    assert page.title() == "Organizers and traffic · numident operator console"
    assert page.locator("#total-received").inner_text() == "3"
    assert page.locator("#total-pending").inner_text() == "0"
    chat = page.locator("#organizer-chat td")
    assert chat.all_inner_texts()[:4] == ["identification", "unlimited (default)", "5000",
                                          "3"]
    chart = page.get_by_role("img", name="Answer times, last hour (chat)")
    expect(chart).to_be_visible()
    assert chart.locator("rect.bar").count() == 7
    assert chart.locator("rect.bar title").first.text_content() == "< 1 s: 3 answers"
    per_minute = page.get_by_role("img", name="Requests per minute, last hour (chat)")
    assert per_minute.locator("rect.bar").count() == 60
    total = sum(int(re.findall(r": (\d+) requests", t)[0])
                for t in per_minute.locator("rect.bar title").all_text_contents())
    assert total == 3
    page.screenshot(path=screenshots() / "operator-overview.png", full_page=True)

    page.get_by_role("link", name="Notices").click()
    expect(page.locator("#count-dead")).to_have_text(str(gateway.dead_count()))
    row = page.locator(f"#notice-{notice_id}")
    expect(row.locator("td.status")).to_have_text("dead")
    assert row.locator("td").nth(8).inner_text() == "rejected: HTTP 400"
    page.screenshot(path=screenshots() / "operator-dead-letter.png", full_page=True)
    gateway.receiver.status = 200
    with page.expect_response(lambda r: r.url.endswith("/retry")) as retried:
        page.get_by_role("button", name=f"Retry notice {notice_id}").click()
    assert retried.value.status == 200
    assert retried.value.request.headers["x-csrf-token"]
    expect(page.locator(f"#notice-{notice_id} td.status")).to_have_text("delivered",
                                                                         timeout=10_000)
    assert notice_id in gateway.receiver.ids()
    expect(page.locator(f"#notice-{notice_id} td").nth(4)).to_have_text("1 (1 requeued)")
    expect(page.locator("#count-dead")).to_have_text(str(gateway.dead_count()))
    expect(page.locator("#count-delivered")).to_have_text("1")
    page.screenshot(path=screenshots() / "operator-retried.png", full_page=True)

    page.get_by_role("link", name="Imports").click()
    cells = page.locator("tr.import").first.locator("td").all_inner_texts()
    assert cells[1:9] == ["subscribers.csv", "loaded", "3", "3", "0", "0", "0", "0"]
    page.get_by_role("link", name="Deadlines").click()
    assert page.locator("#pending-total").inner_text() == "0"
    page.screenshot(path=screenshots() / "operator-deadlines.png", full_page=True)

    page.get_by_role("link", name="SLA report").click()
    today = page.locator("#section-sla-chat tbody tr").last.locator("td").all_inner_texts()
    assert today[:5] == ["3", "3", "0", "0", "0"]  # requests, in time, late, open, refused
    expect(page.get_by_role("img", name="Requests answered in time per day (chat)")
           ).to_be_visible()
    page.screenshot(path=screenshots() / "operator-sla.png", full_page=True)
    page.get_by_role("link", name="Audit chain").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Verify the chain now").click()
    expect(page.locator("#chain-result")).to_have_text(
        re.compile(r"^Verified up to entry \d+ at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.$"))
    page.screenshot(path=screenshots() / "operator-audit.png", full_page=True)
    assert errors == []


def test_without_a_session_or_its_csrf_token_the_console_refuses(
        gateway: Gateway, browser: BrowserContext, playwright: Playwright) -> None:
    """A browser without the cookie gets 401 for a fragment or a retry and the login page
    for a page; a form on another page that posts a retry with the logged-in browser's
    cookie but without the token is refused (403) and the letter stays dead."""
    anonymous = playwright.request.new_context(base_url=gateway.url)
    try:
        row = anonymous.get("/console/notices/anything/row")
        assert (row.status, row.json()["code"]) == (401, "CONSOLE_LOGIN_REQUIRED")
        assert anonymous.post("/console/notices/anything/retry").status == 401
        page = anonymous.get("/console/", max_redirects=0)
        assert (page.status, page.headers["location"]) == (303, "/console/login?next=/console/")
    finally:
        anonymous.dispose()

    notice_id = gateway.dead_letter("+79165550002")
    page = browser.new_page()
    log_in(page, gateway.url, OPERATOR_TOKEN)
    # Another page on loopback (served by the browser itself; nothing listens on port 9).
    forged = browser.new_page()
    forged.route("http://127.0.0.1:9/forged", lambda route: route.fulfill(
        content_type="text/html", body=f'<form method="post" action="{gateway.url}/console/'
        f'notices/{notice_id}/retry"><button>Win a prize</button></form>'))
    forged.goto("http://127.0.0.1:9/forged")
    with forged.expect_navigation() as navigation:
        forged.get_by_role("button", name="Win a prize").click()
    assert navigation.value is not None
    assert navigation.value.status == 403
    assert "CSRF_TOKEN_INVALID" in forged.content()
    forged.screenshot(path=screenshots() / "operator-csrf-refused.png")
    page.goto(f"{gateway.url}/console/notices?status=dead")
    expect(page.locator(f"#notice-{notice_id} td.status")).to_have_text("dead")
    assert notice_id in gateway.dead_letters()
    assert notice_id not in gateway.receiver.ids()


# Six processes start in this test (four commands, two servers): seconds each when the
# machine is idle, but many more on a shared CI machine.
@pytest.mark.timeout(600)
def test_messenger_console_shows_accounts_operators_notices_and_the_bulk_run(
        tmp_path: Path, browser: BrowserContext) -> None:
    """A gateway and a messenger service as processes: alice identified and then blocked by
    her contract's end, bob refused (no contract), and ``identify-all`` run for carol (an
    active contract) and dave (none). The console shows each state's count, the gateway's
    exchanges without an error, the notice, and the bulk run done."""
    with two_sides(tmp_path, SUBSCRIBERS, gateway_env={
            "NUMIDENT_OPERATOR__ADMIN_TOKEN": OPERATOR_TOKEN}, messenger_env={
            "NUMIDENT_MESSENGER__ADMIN_TOKEN": MESSENGER_TOKEN}, keys_by_cli=False) as sides:
        backend = sides.backend

        def state(account: str) -> str:
            return str(backend.get(f"/messenger/v1/accounts/{account}").json()["state"])

        for account, number in (("alice", "+79165550001"), ("bob", "+79165559999")):
            started = backend.put(f"/messenger/v1/accounts/{account}/phone-number",
                                  json={"phoneNumber": number})
            assert started.status_code == 202, started.text
            code = last_code_in_file(sides.sms, number)
            assert backend.post(f"/messenger/v1/accounts/{account}/phone-number/confirm",
                                json={"code": code}).status_code == 202
        assert wait_for(lambda: (state("alice"), state("bob")) == ("identified", "refused"))
        event = httpx2.post(f"{sides.gateway.url}/admin/v1/events", headers=ADMIN, json={
            "type": "contract_terminated", "phoneNumber": "+79165550001"})
        assert event.json()["notices"] == 1
        assert wait_for(lambda: state("alice") == "reidentification_required")
        users = tmp_path / "users.csv"
        users.write_text("account_id,phone_number,possession_proven_at\n"
                         "carol,+79165550003,2026-11-30T12:00:00Z\n"
                         "dave,+79165558888,2026-11-30T12:00:00Z\n", encoding="utf-8")
        cli(["messenger", "identify-all", str(users), "--config", str(sides.config),
             "--unidentified", str(tmp_path / "unidentified.csv")], sides.messenger_env)

        page = browser.new_page()
        errors = watch_console(page)
        log_in(page, sides.messenger.url, MESSENGER_TOKEN)
        counts = {s: page.locator(f"#state-{s}").inner_text() for s in (
            "identified", "refused", "reidentification_required", "pending")}
        assert counts == {"identified": "1", "refused": "2", "reidentification_required": "1",
                          "pending": "0"}
        chart = page.get_by_role("img", name="Accounts by state")
        assert chart.locator("rect.bar").count() == 7
        health = page.locator(f"#health-{ALFA_INN} td").all_inner_texts()
        assert int(health[0]) >= 3  # a token, then one request per account
        assert (health[3], health[4]) == ("0", "0")
        assert health[1].endswith(("ms", "s"))
        page.screenshot(path=screenshots() / "messenger-overview.png", full_page=True)

        page.get_by_role("link", name="Notices").click()
        assert page.locator("#type-contract_terminated").inner_text() == "1"
        notice = page.locator("tr.notice td").all_inner_texts()
        assert (notice[1], notice[2], notice[4]) == ("Alfa", "contract_terminated", "1")
        page.screenshot(path=screenshots() / "messenger-notices.png", full_page=True)

        page.get_by_role("link", name="Bulk identification").click()
        section = page.locator(f"#bulk-{ALFA_INN}")
        assert section.locator(".done").inner_text() == "2"
        assert section.locator(".total").inner_text() == "2"
        assert section.locator("progress").get_attribute("value") == "2"
        assert section.locator("td.status-identified").inner_text() == "1"
        assert section.locator("td.status-refused").inner_text() == "1"
        page.screenshot(path=screenshots() / "messenger-bulk.png", full_page=True)
        assert errors == []
