"""Proof of possession (SPEC rule 0): a one-time code, by SMS or call, before any operator request.

Contract of a challenge (one per account; a new one replaces the old):

- the code is ``code_length`` random digits (``secrets``), or a flash call's last digits of
  the calling number, valid for ``code_ttl_seconds`` from when it was handed to the provider;
- a challenge is ``sending`` from admission until a code is armed; each channel tried arms a
  new code in place of the last one, so that one attempt never has two codes valid at once
  (a provider that timed out may still deliver its code: that code no longer counts);
- only ``HMAC-SHA256(secret, account | number | code)`` is stored, so a database copy does not
  reveal codes and a six-digit code cannot be brute-forced offline without the secret;
- a guess is compared in constant time; after ``max_attempts`` wrong guesses the challenge is
  burnt and only a new code helps;
- a new code for the same account is refused (429 with ``Retry-After``) until
  ``resend_interval_seconds`` after the last one was sent (``throttle_wait``).

An answer to a guess is a value (``Verdict``), not an exception: a wrong code is expected.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, Insert, bindparam, select, update

from numident.client.keys import ensure_secret
from numident.config import PossessionSettings, Settings
from numident.core.sending import seconds_until
from numident.messenger.tables import possession_challenges as challenges
from numident.storage.dialect import per_dialect, upsert

SENDING, OPEN, USED, BURNT = "sending", "open", "used", "burnt"

# Built once (building a statement costs more than running it); the changed columns of an
# update come as parameters.
_ACCOUNT = challenges.c.account_id == bindparam("b_account_id")
_LAST_SENT = select(challenges.c.last_sent_at).where(_ACCOUNT)
_LAST_CHANNEL = select(challenges.c.channel, challenges.c.phone_number,
                       challenges.c.status).where(_ACCOUNT)
_CHALLENGE = select(challenges).where(_ACCOUNT).with_for_update()
_UPDATE = update(challenges).where(_ACCOUNT)
_UPDATE_SEND = update(challenges).where(_ACCOUNT, challenges.c.send_id == bindparam("b_send_id"))


@per_dialect
def _replace(conn: Connection) -> Insert:
    """The upsert that replaces an account's challenge."""
    return upsert(conn, challenges, ["account_id"], [
        "phone_number", "code_hash", "status", "attempts", "created_at", "expires_at",
        "last_sent_at", "channel", "send_id"])


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    WRONG_CODE = "wrong_code"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    NO_CHALLENGE = "no_challenge"


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    attempts_left: int = 0
    phone_number: str | None = None
    send_id: int | None = None


class PossessionChecks:
    def __init__(self, settings: PossessionSettings, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the possession secret must be at least 16 bytes")
        self.settings = settings
        self._secret = secret

    def digest(self, account_id: str, phone_number: str, code: str) -> str:
        message = f"{account_id}\x00{phone_number}\x00{code}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def new_code(self) -> str:
        return "".join(secrets.choice("0123456789") for _ in range(self.settings.code_length))

    def throttle_wait(self, conn: Connection, account_id: str, now: datetime) -> int | None:
        """Seconds until the account may be sent a new code, or None when it may now."""
        last = conn.execute(_LAST_SENT, {"b_account_id": account_id}).scalar()
        interval = timedelta(seconds=self.settings.resend_interval_seconds)
        if last is None or now >= last + interval:
            return None
        return seconds_until(last + interval, now)

    def last_channel(self, conn: Connection, account_id: str, phone_number: str) -> str | None:
        """The channel of the account's code for ``phone_number`` that is still unconfirmed."""
        row = conn.execute(_LAST_CHANNEL, {"b_account_id": account_id}).first()
        if row is None or row.phone_number != phone_number or row.status == USED:
            return None
        return row.channel  # type: ignore[no-any-return]

    def prepare(self, conn: Connection, account_id: str, phone_number: str, send_id: int,
                now: datetime) -> None:
        """Replace the account's challenge with one waiting for its code (``sending``)."""
        conn.execute(_replace(conn), {
            "account_id": account_id, "phone_number": phone_number, "code_hash": None,
            "status": SENDING, "attempts": 0, "created_at": now,
            "expires_at": now + timedelta(seconds=self.settings.code_ttl_seconds),
            "last_sent_at": now, "channel": None, "send_id": send_id})

    def arm(self, conn: Connection, account_id: str, phone_number: str, send_id: int,
            channel: str, code: str, now: datetime) -> bool:
        """Make ``code`` the one valid code of the send's challenge (any earlier one of the
        send stops counting); False when a newer send replaced the challenge."""
        done = conn.execute(_UPDATE_SEND, {
            "b_account_id": account_id, "b_send_id": send_id,
            "code_hash": self.digest(account_id, phone_number, code), "status": OPEN,
            "attempts": 0, "channel": channel,
            "expires_at": now + timedelta(seconds=self.settings.code_ttl_seconds)})
        return done.rowcount == 1

    def disarm(self, conn: Connection, account_id: str, send_id: int) -> None:
        """The send's code could not be handed over: no code of it counts any more."""
        conn.execute(_UPDATE_SEND, {"b_account_id": account_id, "b_send_id": send_id,
                                    "code_hash": None, "status": SENDING})

    def unsent(self, conn: Connection, account_id: str, send_id: int) -> None:
        """No channel could send a code: burn the challenge and lift the resend throttle."""
        conn.execute(_UPDATE_SEND, {"b_account_id": account_id, "b_send_id": send_id,
                                    "status": BURNT, "code_hash": None, "last_sent_at": None})

    def check(self, conn: Connection, account_id: str, code: str, now: datetime) -> Check:
        """Judge one guess and record it; a right guess uses the challenge up."""
        row = conn.execute(_CHALLENGE, {"b_account_id": account_id}).first()
        if row is None or row.status in (USED, SENDING) or row.code_hash is None:
            return Check(Verdict.NO_CHALLENGE)
        if row.status == BURNT or row.attempts >= self.settings.max_attempts:
            return Check(Verdict.EXHAUSTED, phone_number=row.phone_number)
        if now >= row.expires_at:
            return Check(Verdict.EXPIRED, phone_number=row.phone_number)
        expected = row.code_hash.encode()
        given = self.digest(account_id, row.phone_number, code).encode()
        if hmac.compare_digest(expected, given):
            conn.execute(_UPDATE, {"b_account_id": account_id, "status": USED})
            return Check(Verdict.CONFIRMED, phone_number=row.phone_number,
                         send_id=row.send_id)
        attempts = row.attempts + 1
        left = self.settings.max_attempts - attempts
        conn.execute(_UPDATE, {"b_account_id": account_id, "attempts": attempts,
                               "status": OPEN if left > 0 else BURNT})
        return Check(Verdict.WRONG_CODE if left > 0 else Verdict.EXHAUSTED, left,
                     row.phone_number)


def possession_secret(settings: Settings) -> bytes:
    """The HMAC key: ``messenger.possession.secret``, else a random key kept in the home."""
    configured = settings.messenger.possession.secret
    if configured is not None:
        return configured.get_secret_value().encode()
    path = settings.home / "messenger" / "possession.key"
    return ensure_secret(path).encode()
