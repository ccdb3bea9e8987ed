"""The console's login session and its CSRF token, both derived from the admin credential.

A session is a cookie ``EXPIRES.NONCE.MAC``: the MAC is HMAC-SHA256 under a key derived from
the admin token, so every replica holding the same token accepts it and a new token ends every
session at once. Nothing is stored server-side. The CSRF token is a second MAC over the session
cookie (a synchronizer token bound to the session), sent with each change in a form field or
the ``X-CSRF-Token`` header: a page of another site can make the browser send the cookie (were
SameSite lax or absent) but cannot read the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from numident.core.clock import Clock

COOKIE = "numident_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LIFETIME = timedelta(hours=8)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class ConsoleSessions:
    """Issues and checks session cookies and CSRF tokens for one admin credential."""

    admin_token: str
    clock: Clock
    lifetime: timedelta = LIFETIME

    @property
    def _key(self) -> bytes:
        return hmac.new(self.admin_token.encode(), b"numident console session v1",
                        hashlib.sha256).digest()

    def _mac(self, purpose: bytes, value: str) -> str:
        return _b64(hmac.new(self._key, purpose + value.encode(), hashlib.sha256).digest())

    def login(self, given: str) -> str | None:
        """A new session cookie value when ``given`` is the admin token (constant time), else
        None."""
        if not hmac.compare_digest(given.encode(), self.admin_token.encode()):
            return None
        expires = int((self.clock.now() + self.lifetime).timestamp())
        body = f"{expires}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._mac(b'session:', body)}"

    def valid(self, cookie: str | None) -> bool:
        """Whether ``cookie`` is a session this credential issued that has not expired."""
        if not cookie or cookie.count(".") != 2:
            return False
        body, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(b"session:", body).encode()):
            return False
        expires = body.partition(".")[0]
        return expires.isdigit() and self.clock.now().timestamp() < int(expires)

    def expires_at(self, cookie: str) -> datetime:
        return datetime.fromtimestamp(int(cookie.partition(".")[0]), self.clock.now().tzinfo)

    def csrf_token(self, cookie: str) -> str:
        """The token a state change in the session ``cookie`` must carry."""
        return self._mac(b"csrf:", cookie)

    def csrf_ok(self, cookie: str | None, token: str | None) -> bool:
        """Whether ``token`` is the CSRF token of the valid session ``cookie``."""
        if not token or not self.valid(cookie):
            return False
        assert cookie is not None
        return hmac.compare_digest(token.encode(), self.csrf_token(cookie).encode())
