"""The console's session cookies and CSRF tokens (numident.web.console.session)."""

from __future__ import annotations

from numident.core.clock import FakeClock
from numident.web.console.session import LIFETIME, ConsoleSessions


def test_only_the_admin_token_opens_a_session() -> None:
    sessions = ConsoleSessions("staff-secret", FakeClock())
    assert sessions.login("staff-secreT") is None
    assert sessions.login("") is None
    cookie = sessions.login("staff-secret")
    assert cookie is not None
    assert sessions.valid(cookie)


def test_a_session_ends_after_its_lifetime() -> None:
    clock = FakeClock()
    sessions = ConsoleSessions("staff-secret", clock)
    cookie = sessions.login("staff-secret")
    assert cookie is not None
    clock.advance(LIFETIME.total_seconds() - 1)
    assert sessions.valid(cookie)
    clock.advance(1)
    assert not sessions.valid(cookie)


def test_a_changed_expiry_or_another_token_makes_the_cookie_worthless() -> None:
    """The expiry is under the MAC; a new admin token ends every session at once, while a
    replica with the same token accepts it."""
    clock = FakeClock()
    cookie = ConsoleSessions("staff-secret", clock).login("staff-secret")
    assert cookie is not None
    expires, nonce, mac = cookie.split(".")
    forged = f"{int(expires) + 86400}.{nonce}.{mac}"
    assert not ConsoleSessions("staff-secret", clock).valid(forged)
    assert ConsoleSessions("staff-secret", clock).valid(cookie)
    assert not ConsoleSessions("new-secret", clock).valid(cookie)
    for garbage in (None, "", "a.b", "x.y.z", f"{expires}.{nonce}", cookie + "."):
        assert not ConsoleSessions("staff-secret", clock).valid(garbage)


def test_the_csrf_token_belongs_to_its_session() -> None:
    sessions = ConsoleSessions("staff-secret", FakeClock())
    first, second = sessions.login("staff-secret"), sessions.login("staff-secret")
    assert first is not None
    assert second is not None
    token = sessions.csrf_token(first)
    assert sessions.csrf_ok(first, token)
    assert not sessions.csrf_ok(second, token)
    assert not sessions.csrf_ok(first, None)
    assert not sessions.csrf_ok(first, "")
    assert not sessions.csrf_ok(None, token)
