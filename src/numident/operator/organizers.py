"""Organizers registered by the operator's staff: name (the OAuth2 client_id), notice URL, key.

Each organizer may be granted only the OAuth2 scopes registered for it (``identification`` by
default; the CAMARA APIs have a scope per operation), and the authorization-code flow redirects
only to the redirect URIs registered for it (exact match, RFC 9700 section 2.1). Its own limits
on identification (:mod:`numident.operator.organizer_limits`) are stored with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, Row, select, update
from sqlalchemy.exc import IntegrityError

from numident.client.keys import PublicKey, load_public_key
from numident.errors import Conflict, InvalidInput, NotFound
from numident.operator.identification import Organizer
from numident.operator.tables import organizers
from numident.storage.database import read_only

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")  # RFC 6749 scope-token
DEFAULT_SCOPES = ("identification",)


@dataclass(frozen=True)
class Limits:
    """An organizer's limits; ``None`` is no limit (or, as stored, the gateway's default)."""

    rate_limit: int | None = None
    daily_quota: int | None = None


@dataclass(frozen=True)
class OrganizerRecord:
    id: int
    name: str
    notice_url: str
    public_key: PublicKey
    active: bool
    scopes: frozenset[str] = frozenset(DEFAULT_SCOPES)
    redirect_uris: tuple[str, ...] = ()
    limits: Limits = Limits()

    @property
    def organizer(self) -> Organizer:
        """Who the use cases act for (the record's identity, without its credentials)."""
        return Organizer(self.id, self.name)


def validate_notice_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"notice URL {url!r} must be an absolute http(s) URL",
                           code="INVALID_NOTICE_URL")
    return url


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    bad = [s for s in chosen if _SCOPE.fullmatch(s) is None]
    if bad or not chosen:
        raise InvalidInput(f"scopes must be OAuth2 scope tokens, not {bad or 'nothing'}",
                           code="INVALID_SCOPE")
    return chosen


def validate_redirect_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment \
            or " " in uri:
        raise InvalidInput(f"redirect URI {uri!r} must be an absolute http(s) URL without a "
                           "fragment", code="INVALID_REDIRECT_URI")
    return uri


def add_organizer(engine: Engine, name: str, notice_url: str, public_key: str,
                  now: datetime, *, replace: bool = False,
                  scopes: Iterable[str] = DEFAULT_SCOPES,
                  redirect_uris: Iterable[str] = (), limits: Limits = Limits()
                  ) -> OrganizerRecord:
    """Register an organizer (or, with ``replace``, change its URL, key, scopes, URIs and
    limits; a limit left unset is the gateway's default)."""
    if _NAME.fullmatch(name) is None:
        raise InvalidInput("organizer name must be 1-128 characters of A-Z a-z 0-9 . _ -",
                           code="INVALID_ORGANIZER_NAME")
    key = load_public_key(public_key)
    values = {"notice_url": validate_notice_url(notice_url),
              "public_key": json.dumps(key.public_jwk()), "active": True,
              "scopes": " ".join(validate_scopes(scopes)),
              "redirect_uris": " ".join(validate_redirect_uri(u) for u in redirect_uris),
              "rate_limit": validate_limit(limits.rate_limit, "rate limit"),
              "daily_quota": validate_limit(limits.daily_quota, "daily quota")}
    with engine.begin() as conn:
        exists = conn.execute(select(organizers.c.id).where(organizers.c.name == name)).first()
        if exists and not replace:
            raise Conflict(f"organizer {name} is already registered",
                           code="ORGANIZER_EXISTS")
        try:
            if exists:
                conn.execute(update(organizers).where(organizers.c.id == exists.id)
                             .values(**values))
            else:
                conn.execute(organizers.insert().values(name=name, created_at=now, **values))
        except IntegrityError as exc:
            raise Conflict(f"organizer {name} is already registered",
                           code="ORGANIZER_EXISTS") from exc
    return find(engine, name)


def validate_limit(value: int | None, field: str) -> int | None:
    if value is not None and (isinstance(value, bool) or value < 1):
        raise InvalidInput(f"{field} must be a whole number of at least 1, or unset",
                           code="INVALID_ARGUMENT")
    return value


def set_limits(engine: Engine, name: str, limits: Limits) -> Limits:
    """Store ``limits`` as the organizer's own (``None`` returns a limit to the default)."""
    values = {"rate_limit": validate_limit(limits.rate_limit, "rate limit"),
              "daily_quota": validate_limit(limits.daily_quota, "daily quota")}
    with engine.begin() as conn:
        changed = conn.execute(update(organizers).where(organizers.c.name == name)
                               .values(**values)).rowcount
    if not changed:
        raise NotFound(f"no organizer named {name}", code="ORGANIZER_NOT_FOUND")
    return Limits(**values)


def find(engine: Engine, name: str) -> OrganizerRecord:
    with read_only(engine) as conn:
        row = conn.execute(select(organizers).where(organizers.c.name == name)).first()
    if row is None:
        raise NotFound(f"no organizer named {name}", code="ORGANIZER_NOT_FOUND")
    return _record(row)


def all_organizers(engine: Engine) -> list[OrganizerRecord]:
    with read_only(engine) as conn:
        rows = conn.execute(select(organizers).order_by(organizers.c.name)).all()
    return [_record(r) for r in rows]


def _record(row: Row[Any]) -> OrganizerRecord:
    return OrganizerRecord(row.id, row.name, row.notice_url, load_public_key(row.public_key),
                           row.active, frozenset(row.scopes.split()),
                           tuple(row.redirect_uris.split()),
                           Limits(row.rate_limit, row.daily_quota))
