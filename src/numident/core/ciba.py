"""The rules of a backchannel authentication request (OpenID CIBA Core 1.0), without storage.

What a request may carry (CIBA Core 7.1): exactly one hint, and of the hints only
``login_hint``, written ``tel:+E164``, ``phone_number:+E164`` or ``operatortoken:<session>``;
a ``scope`` of exactly one offered CAMARA purpose (``dpv:...``) and at least one API scope,
all registered for the client (``openid`` is ignored); an optional ``binding_message``,
``requested_expiry`` (which may only shorten the configured lifetime) and, from ping-mode
clients, a ``client_notification_token``. And how fast a client may poll (CIBA Core 11): no
sooner than ``interval`` after its last poll, else ``slow_down``, which adds 5 s.

Refusals are :class:`CibaRefusal`, carrying the specification's error code.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from numident.core.numbers import normalize
from numident.errors import InvalidPhoneNumber, NumidentError

MAX_PARAMETER = 2048
"""Characters of any request parameter but the client's assertion."""
SLOW_DOWN_STEP = 5
"""Seconds that a ``slow_down`` adds to a request's interval."""
_HINT = re.compile(r"(tel|phone_number|operatortoken):(.{1,128})", re.DOTALL)
_NOTIFICATION_TOKEN = re.compile(r"[\x21-\x7e]{1,1024}")  # visible ASCII, as RFC 6750 tokens
_HINTS = ("login_hint", "login_hint_token", "id_token_hint")


class CibaRefusal(NumidentError):
    """A refusal of the specification: ``error`` is its code (``authorization_pending``...);
    the OAuth endpoints decide the HTTP status that code is answered with."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description, code=error.upper())
        self.error = error


@dataclass(frozen=True)
class LoginHint:
    """A parsed ``login_hint``: an E.164 ``phone_number``, or a network ``session`` key."""

    phone_number: str | None = None
    session: str | None = None


def check_form(form: Mapping[str, str], *, binding_message_length: int) -> None:
    """Refuse a request whose parameters are too long, whose hints are not exactly one
    ``login_hint``, or whose binding message is empty or too long."""
    long = sorted(k for k, v in form.items() if len(v) > MAX_PARAMETER
                  and k != "client_assertion")
    if long:
        raise CibaRefusal("invalid_request",
                          f"{long[0][:40]} is longer than {MAX_PARAMETER} characters")
    if [h for h in _HINTS if h in form] != ["login_hint"]:
        raise CibaRefusal("invalid_request", "exactly one hint is required, and only "
                          "login_hint is supported")
    binding = form.get("binding_message")
    if binding is not None and not 0 < len(binding) <= binding_message_length:
        raise CibaRefusal("invalid_binding_message",
                          f"binding_message must be 1-{binding_message_length} characters")


def parse_login_hint(hint: str) -> LoginHint:
    """The line or session a ``login_hint`` names; a malformed one is ``invalid_request``."""
    matched = _HINT.fullmatch(hint)
    if matched is None:
        raise CibaRefusal("invalid_request", "login_hint must be tel:+E164, "
                          "phone_number:+E164 or operatortoken:<token>")
    kind, value = matched.groups()
    if kind == "operatortoken":
        return LoginHint(session=value)
    try:
        return LoginHint(phone_number=normalize(value))
    except InvalidPhoneNumber as exc:
        raise CibaRefusal("invalid_request", f"login_hint: {exc.message}") from exc


def requested_scope(requested: str, offered_purposes: Collection[str],
                    registered: Collection[str]) -> tuple[str, str]:
    """The purpose and the space-separated API scopes of ``requested``, or ``invalid_scope``."""
    wanted = set(requested.split()) - {"openid"}
    purposes = sorted(s for s in wanted if s.startswith("dpv:"))
    if len(purposes) != 1:
        raise CibaRefusal("invalid_scope", "scope must name exactly one dpv: purpose")
    [purpose] = purposes
    if purpose not in offered_purposes:
        raise CibaRefusal("invalid_scope", f"the purpose {purpose} is not offered")
    apis = wanted - {purpose}
    refused = sorted(apis.difference(registered))
    if refused or not apis:
        raise CibaRefusal("invalid_scope", "scope must name API scopes registered for this "
                          f"client; not registered: {' '.join(refused) or 'none given'}")
    return purpose, " ".join(sorted(apis))


def lifetime(requested_expiry: str | None, limit: int) -> int:
    """The ``expires_in`` of a request: ``requested_expiry`` seconds, at most ``limit``."""
    if requested_expiry is None:
        return limit
    if not (requested_expiry.isascii() and requested_expiry.isdigit()
            and len(requested_expiry) <= 9 and int(requested_expiry) > 0):
        raise CibaRefusal("invalid_request", "requested_expiry must be a positive integer")
    return min(int(requested_expiry), limit)


def notification_token(form: Mapping[str, str]) -> str:
    """The ``client_notification_token`` that a ping-mode request must carry."""
    token = form.get("client_notification_token")
    if token is None or _NOTIFICATION_TOKEN.fullmatch(token) is None:
        raise CibaRefusal("invalid_request", "a ping-mode client must send a "
                          "client_notification_token (1-1024 visible ASCII characters)")
    return token


@dataclass(frozen=True)
class Poll:
    """The verdict on a poll of a pending request: ``too_soon`` means ``slow_down``, and
    ``interval`` is the request's interval from now on."""

    too_soon: bool
    interval: int

    def refusal(self) -> CibaRefusal:
        if self.too_soon:
            return CibaRefusal("slow_down", f"poll at most every {self.interval} seconds")
        return CibaRefusal("authorization_pending", "the request has not been decided yet")


def judge_poll(last_polled_at: datetime | None, interval: int, now: datetime) -> Poll:
    """A poll sooner than ``interval`` after the last one is too soon and slows the client."""
    too_soon = last_polled_at is not None and now - last_polled_at < timedelta(seconds=interval)
    return Poll(too_soon, interval + SLOW_DOWN_STEP if too_soon else interval)
