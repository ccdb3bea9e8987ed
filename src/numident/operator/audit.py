"""The append-only audit trail: every request, answer, usage change, event and notice.

Entries are written unsealed; the sealer (:mod:`numident.audit.sealer`) gives them their place
in the trail's hash chain once they are committed, so a writer never waits for the chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from numident.operator.tables import audit
from numident.storage.dialect import in_one_statement


def entry(at: datetime, actor: str, action: str, *, phone_number: str | None = None,
          identification_code: str | None = None, request_id: str | None = None,
          detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"at": at, "actor": actor, "action": action, "phone_number": phone_number,
            "identification_code": identification_code, "request_id": request_id,
            "detail": dict(detail) if detail else None}


def write(conn: Connection, entries: Sequence[Mapping[str, Any]]) -> None:
    """Append ``entries`` inside the caller's transaction (they commit or vanish with it),
    unsealed: one INSERT, whatever the chain is doing."""
    if entries:
        conn.execute(in_one_statement(conn, _INSERT, audit.c.id), list(entries))


_INSERT = audit.insert()
