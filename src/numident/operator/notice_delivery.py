"""How the gateway delivers its notices: the outbox dispatcher over signed HTTP POSTs.

The delivery of a notice and its becoming a dead letter enter the audit trail
(``notice_delivered``, ``notice_dead``, with the notice id of its ``usage_invalidated`` or
``usage_at_risk`` entry) in the transaction that settles them, so that the 24-hour rule can be
shown from the audit alone (:mod:`numident.operator.sla`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx2
from prometheus_client import CollectorRegistry
from sqlalchemy import Connection, Engine

from numident.client.keys import PrivateKey
from numident.client.signatures import NoticeSigner
from numident.config import DispatchSettings
from numident.core.clock import Clock
from numident.operator import audit
from numident.operator.events import NOTICE_KIND
from numident.operator.tables import outbox
from numident.outbox.dispatcher import Dispatcher, Sender
from numident.outbox.http_sender import HttpSender
from numident.outbox.loop import WakeableLoop
from numident.outbox.metrics import DeliveryMetrics, observe_outbox
from numident.outbox.policy import RetryPolicy
from numident.outbox.store import Settled, Settlement, SqlOutbox
from numident.outbox.tables import DELIVERED

DISPATCHER = "dispatcher"
"""The actor of delivery entries."""


def retry_policy(settings: DispatchSettings) -> RetryPolicy:
    return RetryPolicy.from_settings(settings)


def notice_sender(client: httpx2.AsyncClient, key: PrivateKey, clock: Clock) -> HttpSender:
    """POSTs each notice signed with the operator's key (RFC 9421)."""
    return HttpSender(client, NoticeSigner(key, now=clock.now).sign, now=clock.now)


def notice_dispatcher(engine: Engine, client: httpx2.AsyncClient, key: PrivateKey, clock: Clock,
                      settings: DispatchSettings, *, sender: Sender | None = None,
                      wakeup: WakeableLoop | None = None,
                      on_settled: Callable[[Sequence[Settlement]], None] | None = None,
                      store: SqlOutbox | None = None) -> Dispatcher:
    """A dispatcher of the gateway's outbox (``store``, by default :func:`audited_outbox`)
    through ``sender`` (by default signed notices: :func:`notice_sender`), run on ``wakeup``
    when writers were handed its ``wake`` first."""
    return Dispatcher(store or audited_outbox(engine),
                      sender or notice_sender(client, key, clock),
                      clock, retry_policy(settings), concurrency=settings.concurrency,
                      lease_seconds=settings.lease_seconds, wakeup=wakeup,
                      on_settled=on_settled)


def audited_outbox(engine: Engine) -> SqlOutbox:
    """The gateway's outbox, whose notices' final outcomes are written to the audit trail."""
    return SqlOutbox(engine, outbox, on_settled=_audit_outcomes)


def _audit_outcomes(conn: Connection, settled: Sequence[Settled]) -> None:
    audit.write(conn, [
        audit.entry(s.at, DISPATCHER,
                    "notice_delivered" if s.status == DELIVERED else "notice_dead",
                    detail={"noticeId": s.id, "organizer": s.owner, "attempts": s.attempts})
        for s in settled if s.kind == NOTICE_KIND])


def observe_notices(registry: CollectorRegistry, store: SqlOutbox,
                    clock: Clock) -> DeliveryMetrics:
    """``numident_notices{status}``, the oldest undelivered notice's age and the delivery
    counters on ``registry``."""
    return observe_outbox(registry, store, clock.now, "numident_notices",
                          "Notices")
