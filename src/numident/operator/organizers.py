"""Organizers registered by the operator's staff: name (the OAuth2 client_id), notice URL, key."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from numident.errors import Conflict, InvalidInput, NotFound
from numident.operator.tables import organizers
from numident.trust.keys import PublicKey, load_public_key

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class OrganizerRecord:
    id: int
    name: str
    notice_url: str
    public_key: PublicKey
    active: bool


def validate_notice_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"notice URL {url!r} must be an absolute http(s) URL",
                           code="INVALID_NOTICE_URL")
    return url


def add_organizer(engine: Engine, name: str, notice_url: str, public_key: str,
                  now: datetime, *, replace: bool = False) -> OrganizerRecord:
    """Register an organizer (or, with ``replace``, change its URL and key)."""
    if _NAME.fullmatch(name) is None:
        raise InvalidInput("organizer name must be 1-128 characters of A-Z a-z 0-9 . _ -",
                           code="INVALID_ORGANIZER_NAME")
    key = load_public_key(public_key)
    values = {"notice_url": validate_notice_url(notice_url),
              "public_key": json.dumps(key.public_jwk()), "active": True}
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


def find(engine: Engine, name: str) -> OrganizerRecord:
    with engine.connect() as conn:
        row = conn.execute(select(organizers).where(organizers.c.name == name)).first()
    if row is None:
        raise NotFound(f"no organizer named {name}", code="ORGANIZER_NOT_FOUND")
    return OrganizerRecord(row.id, row.name, row.notice_url, load_public_key(row.public_key),
                           row.active)


def all_organizers(engine: Engine) -> list[OrganizerRecord]:
    with engine.connect() as conn:
        rows = conn.execute(select(organizers).order_by(organizers.c.name)).all()
    return [OrganizerRecord(r.id, r.name, r.notice_url, load_public_key(r.public_key), r.active)
            for r in rows]
