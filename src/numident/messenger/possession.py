"""Proof of possession (SPEC rule 0): a one-time code sent by SMS before any operator request.

Contract of a challenge (one per account; a new one replaces the old):

- the code is ``code_length`` random digits (``secrets``), valid for ``code_ttl_seconds``;
- only ``HMAC-SHA256(secret, account | number | code)`` is stored, so a database copy does not
  reveal codes and a six-digit code cannot be brute-forced offline without the secret;
- a guess is compared in constant time; after ``max_attempts`` wrong guesses the challenge is
  burnt and only a new code helps;
- a new code for the same account is refused (429 with ``Retry-After``) until
  ``resend_interval_seconds`` after the last one was sent.

An answer to a guess is a value (``Verdict``), not an exception: a wrong code is expected.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, select, update

from numident.client.keys import ensure_secret
from numident.config import PossessionSettings, Settings
from numident.errors import TooManyRequests
from numident.messenger.tables import possession_challenges as challenges
from numident.storage.dialect import upsert

OPEN, USED, BURNT = "open", "used", "burnt"


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

    def open(self, conn: Connection, account_id: str, phone_number: str, now: datetime) -> str:
        """Replace the account's challenge with a new one and return its code (to send).

        Raises :class:`TooManyRequests` while the last code is younger than the resend interval.
        """
        last = conn.execute(select(challenges.c.last_sent_at)
                            .where(challenges.c.account_id == account_id)).scalar()
        interval = timedelta(seconds=self.settings.resend_interval_seconds)
        if last is not None and now < last + interval:
            wait = (last + interval - now).total_seconds()
            raise TooManyRequests("a code was sent a moment ago; ask again later",
                                  retry_after=int(wait) + (0 if wait.is_integer() else 1))
        code = self.new_code()
        conn.execute(upsert(conn, challenges, ["account_id"], [
            "phone_number", "code_hash", "status", "attempts", "created_at", "expires_at",
            "last_sent_at"]).values(
            account_id=account_id, phone_number=phone_number,
            code_hash=self.digest(account_id, phone_number, code), status=OPEN, attempts=0,
            created_at=now, expires_at=now + timedelta(seconds=self.settings.code_ttl_seconds),
            last_sent_at=now))
        return code

    def unsent(self, conn: Connection, account_id: str) -> None:
        """The code could not be sent: burn it and lift the resend throttle."""
        conn.execute(update(challenges).where(challenges.c.account_id == account_id)
                     .values(status=BURNT, last_sent_at=None))

    def check(self, conn: Connection, account_id: str, code: str, now: datetime) -> Check:
        """Judge one guess and record it; a right guess uses the challenge up."""
        row = conn.execute(select(challenges).where(challenges.c.account_id == account_id)
                           .with_for_update()).first()
        if row is None or row.status == USED:
            return Check(Verdict.NO_CHALLENGE)
        if row.status == BURNT or row.attempts >= self.settings.max_attempts:
            return Check(Verdict.EXHAUSTED, phone_number=row.phone_number)
        if now >= row.expires_at:
            return Check(Verdict.EXPIRED, phone_number=row.phone_number)
        expected = row.code_hash.encode()
        given = self.digest(account_id, row.phone_number, code).encode()
        if hmac.compare_digest(expected, given):
            conn.execute(update(challenges).where(challenges.c.account_id == account_id)
                         .values(status=USED))
            return Check(Verdict.CONFIRMED, phone_number=row.phone_number)
        attempts = row.attempts + 1
        left = self.settings.max_attempts - attempts
        conn.execute(update(challenges).where(challenges.c.account_id == account_id)
                     .values(attempts=attempts, status=OPEN if left > 0 else BURNT))
        return Check(Verdict.WRONG_CODE if left > 0 else Verdict.EXHAUSTED, left,
                     row.phone_number)


def possession_secret(settings: Settings) -> bytes:
    """The HMAC key: ``messenger.possession.secret``, else a random key kept in the home."""
    configured = settings.messenger.possession.secret
    if configured is not None:
        return configured.get_secret_value().encode()
    path = settings.home / "messenger" / "possession.key"
    return ensure_secret(path).encode()
