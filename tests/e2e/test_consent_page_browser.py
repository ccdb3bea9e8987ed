"""The CIBA approve/deny page in a real browser: Debian's Chromium driven by Playwright.

A gateway process on loopback asks the subscriber (a purpose under ``consent``, the file
sender), the organizer's back-end authenticates with a real ``private_key_jwt`` assertion, and
the subscriber answers on the page the message links to, as a phone's browser would show it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from browsers import PHONE, launch, screenshots
from e2e_servers import cli, start_server
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Playwright

from numident.client.assertions import ASSERTION_TYPE, make_client_assertion
from numident.client.keys import PrivateKey, generate_key, save_public_key
from numident.core.clock import SystemClock
from numident.operator.consent import last_url_in_file

ADMIN = {"Authorization": "Bearer e2e-admin"}
LINE = "+79165550001"
PURPOSE = "dpv:IdentityVerification"
SCOPE = f"{PURPOSE} sim-swap:check"
CIBA_GRANT = "urn:openid:params:grant-type:ciba"
KEY: PrivateKey = generate_key()
"""The organizer's signing key; its public half is registered in each test's gateway."""
CONFIG = f"""\
[operator.ciba]
interval_seconds = 1

[operator.ciba.purposes]
"dpv:FraudPreventionAndDetection" = "legitimate_interest"
"{PURPOSE}" = "consent"
"""


@pytest.fixture(scope="module")
def browser(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[BrowserContext]:
    """One headless Chromium for the module, from an empty profile, sized like a phone; each
    test opens its own pages (the page sets no cookie or storage a later test could see)."""
    context = launch(playwright, tmp_path_factory.mktemp("chromium-profile"), PHONE)
    try:
        yield context
    finally:
        context.close()


@dataclass(frozen=True)
class Gateway:
    url: str
    sent: Path
    """Where the file sender writes the messages to subscribers."""


@pytest.fixture
def gateway(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    """``numident operator serve`` with a consent purpose, the organizer "chat" and one line."""
    env = {"NUMIDENT_HOME": str(tmp_path / "home"), "NUMIDENT_DATABASE_URL": database_url,
           "NUMIDENT_OPERATOR__ADMIN_TOKEN": "e2e-admin"}
    config = tmp_path / "operator.toml"
    config.write_text(CONFIG, encoding="utf-8")
    export = tmp_path / "subscribers.csv"
    export.write_text("phone_number,contract_id,status,activated_at\n"
                      f"{LINE},C-1,active,2024-01-01\n", encoding="utf-8")
    cli(["operator", "import-subscribers", str(export), "--config", str(config)], env)
    server = start_server("operator", env, tmp_path / "gateway.log", config=config)
    try:
        save_public_key(KEY.public(), tmp_path / "chat.pub.json")
        added = httpx2.post(f"{server.url}/admin/v1/organizers", headers=ADMIN, json={
            "name": "chat", "noticeUrl": "http://127.0.0.1:9/notices",
            "publicKey": (tmp_path / "chat.pub.json").read_text(encoding="utf-8"),
            "scopes": ["sim-swap:check"]})
        assert added.status_code == 201, added.text
        yield Gateway(server.url, tmp_path / "home" / "operator" / "ciba-consent.jsonl")
    finally:
        server.stop()


def authenticated(server: Gateway, **form: str) -> dict[str, str]:
    """``form`` with a fresh private_key_jwt assertion whose audience is the issuer."""
    assertion = make_client_assertion(KEY, "chat", server.url, SystemClock())
    return {**form, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}


def ask_subscriber(server: Gateway, binding_message: str = "PAY-4217") -> tuple[str, str]:
    """Start a CIBA request for LINE; the ``auth_req_id`` and the link the subscriber got."""
    started = httpx2.post(f"{server.url}/oauth2/bc-authorize", data=authenticated(
        server, login_hint=f"tel:{LINE}", scope=SCOPE, binding_message=binding_message))
    assert started.status_code == 200, started.text
    assert started.json()["interval"] == 1
    url = last_url_in_file(server.sent, LINE)
    assert url is not None
    assert url.startswith(f"{server.url}/oauth2/bc-consent/")
    message = json.loads(server.sent.read_text(encoding="utf-8").splitlines()[-1])
    assert (message["to"], binding_message in message["text"]) == (LINE, True)
    return str(started.json()["auth_req_id"]), url


def poll(server: Gateway, auth_req_id: str) -> httpx2.Response:
    return httpx2.post(f"{server.url}/oauth2/token", data=authenticated(
        server, grant_type=CIBA_GRANT, auth_req_id=auth_req_id))


class Poller:
    """A CIBA client polling one ``auth_req_id`` as CIBA Core 7.3 asks: never sooner than
    ``interval`` after its last poll, and 5 s more after each ``slow_down``."""

    def __init__(self, server: Gateway, auth_req_id: str, interval: float = 1) -> None:
        self.server, self.auth_req_id, self.interval = server, auth_req_id, interval
        self.last = -float("inf")

    def poll(self) -> httpx2.Response:
        time.sleep(max(0.0, self.last + self.interval + 0.05 - time.monotonic()))
        answer = poll(self.server, self.auth_req_id)
        self.last = time.monotonic()
        if answer.status_code == 400 and answer.json()["error"] == "slow_down":
            self.interval += 5
        return answer

    def redeem(self) -> httpx2.Response:
        """Poll until the answer is neither pending nor slow_down (or 30 s have passed)."""
        deadline = time.monotonic() + 30
        answer = self.poll()
        while (answer.status_code == 400 and time.monotonic() < deadline
               and answer.json()["error"] in ("authorization_pending", "slow_down")):
            answer = self.poll()
        return answer


def answer(page: Page, button: str) -> int:
    """Click ``button`` and wait for the page the form's POST returns; its HTTP status.

    The answer comes back at the page's own URL, so waiting for the URL would not wait."""
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button).click()
    assert navigation.value is not None
    assert navigation.value.request.method == "POST"
    return navigation.value.status


def until(page: Page, condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` while the browser's events keep arriving (a plain sleep would
    stop Playwright from hearing of new frames and navigations)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(50)
    return True


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two computed colours (``rgb(r, g, b)``)."""

    def luminance(colour: str) -> float:
        channels = [int(c) / 255 for c in colour.removeprefix("rgb(").rstrip(")").split(",")]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
                   for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def watch_console(page: Page) -> list[str]:
    """The browser's console errors and warnings, where CSP refusals are reported."""
    seen: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            seen.append(message.text)

    page.on("console", record)
    return seen


def test_subscriber_approves_in_the_browser_and_the_token_checks_sim_swap(
        gateway: Gateway, browser: BrowserContext) -> None:
    """The page names the client, purpose and binding message; Approve confirms, and the
    redeemed token is bound to the line: its SIM Swap check sees the line's swap."""
    auth_req_id, url = ask_subscriber(gateway)
    client = Poller(gateway, auth_req_id)
    pending = client.poll()
    assert (pending.status_code, pending.json()["error"]) == (400, "authorization_pending")

    page = browser.new_page()
    console = watch_console(page)
    response = page.goto(url)
    assert response is not None
    assert response.status == 200
    page.screenshot(path=screenshots() / "consent-page.png", full_page=True)
    assert page.title() == "Approve this request?"
    assert page.locator("html").get_attribute("lang") == "en"
    heading = page.get_by_role("heading", level=1)
    assert heading.inner_text() == "Approve this request?"
    shown = page.get_by_role("definition").all_inner_texts()
    assert shown[:4] == ["chat", "Identity verification (dpv:IdentityVerification)",
                         "sim-swap:check", "PAY-4217"]
    assert len(shown) == 5
    assert shown[4].endswith(" UTC")

    assert answer(page, "Approve") == 200
    assert page.get_by_role("heading", level=1).inner_text() == "Request approved"
    assert "You approved the request" in page.locator("main").inner_text()
    page.screenshot(path=screenshots() / "consent-approved.png", full_page=True)
    assert console == []

    swap = httpx2.post(f"{gateway.url}/admin/v1/events", headers=ADMIN,
                      json={"type": "sim_swapped", "phoneNumber": LINE})
    assert swap.status_code == 201, swap.text
    token = client.redeem()
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "sim-swap:check"  # the purpose is not an API scope
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    check = httpx2.post(f"{gateway.url}/sim-swap/vwip/check", headers=bearer,
                       json={"maxAge": 24})
    assert check.status_code == 200, check.text
    assert check.json() == {"swapped": True}
    again = poll(gateway, auth_req_id)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_subscriber_denies_in_the_browser_and_the_client_gets_access_denied(
        gateway: Gateway, browser: BrowserContext) -> None:
    """Deny shows its confirmation and the next poll is access_denied."""
    auth_req_id, url = ask_subscriber(gateway)
    page = browser.new_page()
    page.goto(url)
    assert answer(page, "Deny") == 200
    assert page.get_by_role("heading", level=1).inner_text() == "Request denied"
    assert "You denied the request" in page.locator("main").inner_text()
    denied = poll(gateway, auth_req_id)
    assert (denied.status_code, denied.json()["error"]) == (400, "access_denied")


def test_a_decided_request_is_no_longer_waiting_however_the_page_is_reached(
        gateway: Gateway, browser: BrowserContext) -> None:
    """After Approve in one tab, Deny on a tab opened before changes nothing (409), and the
    link opened twice more shows that the request no longer waits for an answer."""
    auth_req_id, url = ask_subscriber(gateway)
    first, stale = browser.new_page(), browser.new_page()
    first.goto(url)
    stale.goto(url)
    assert answer(first, "Approve") == 200
    assert first.get_by_role("heading", level=1).inner_text() == "Request approved"

    assert answer(stale, "Deny") == 409
    assert "no longer waiting" in stale.locator("main").inner_text()
    for _ in range(2):
        reopened = first.goto(url)
        assert reopened is not None
        assert reopened.status == 404
        assert first.get_by_role("heading", level=1).inner_text() == "Request closed"
        assert "no longer waiting" in first.locator("main").inner_text()
        assert first.get_by_role("button").count() == 0
    assert Poller(gateway, auth_req_id).redeem().status_code == 200


def test_the_page_keeps_its_security_headers_and_works_under_them(
        gateway: Gateway, browser: BrowserContext) -> None:
    """The browser receives a CSP without scripts or outside resources and DENY framing; the
    page needs no script, its styles are allowed (no CSP report), its buttons are big enough
    to tap (44 CSS px, WCAG 2.5.5), nothing overflows a phone's width, its text is legible in
    light and dark mode, and a frame refuses it.
    A binding message carrying markup is shown as text."""
    hostile = '<img src=x onerror="document.title=1">'
    _, url = ask_subscriber(gateway, binding_message=hostile)
    page = browser.new_page()
    console = watch_console(page)
    response = page.goto(url)
    assert response is not None
    headers = response.all_headers()
    policy = {d.split()[0]: d.split()[1:] for d in headers["content-security-policy"].split("; ")}
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert "script-src" not in policy  # scripts fall back to default-src 'none'
    assert all(source.startswith("'sha256-") for source in policy["style-src"])
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    assert page.get_by_text(hostile).count() == 1
    assert page.title() == "Approve this request?"
    for name in ("Approve", "Deny"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None, name
        assert min(box["height"], box["width"]) >= 44, (name, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for scheme in ("light", "dark"):  # WCAG 1.4.3: text at least 4.5:1 on its background
        page.emulate_media(color_scheme=scheme)
        body = page.evaluate("getComputedStyle(document.body).backgroundColor")
        for element in ("p", "dt", ".approve", ".deny"):
            style = page.locator(element).first.evaluate(
                "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
            background = body if style[1] == "rgba(0, 0, 0, 0)" else style[1]
            assert contrast(style[0], background) >= 4.5, (scheme, element, style, body)
        edge = page.locator(".deny").evaluate("e => getComputedStyle(e).borderTopColor")
        assert contrast(edge, body) >= 3, (scheme, edge, body)  # WCAG 1.4.11: its outline
        page.screenshot(path=screenshots() / f"consent-page-{scheme}.png", full_page=True)
    assert console == []

    # A page framing it, served by the browser itself (nothing listens on port 9).
    framing = browser.new_page()
    framing.route("http://127.0.0.1:9/frame", lambda route: route.fulfill(
        content_type="text/html", body=f'<iframe src="{url}"></iframe>'))
    framing.goto("http://127.0.0.1:9/frame")
    assert until(framing, lambda: len(framing.frames) == 2)
    frame = framing.frames[1]
    # Chromium replaces a frame its headers refuse with its own error document.
    assert until(framing, lambda: frame.url.startswith("chrome-error://")), frame.url
    assert frame.locator("button").count() == 0
