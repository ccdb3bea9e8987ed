"""Delivers outbox messages by HTTP POST (CloudEvents in structured mode, webhooks).

Classification of the receiver's answer (the choice is deliberate: a lost notice is the worst
failure, so only answers about the *bytes themselves* end retries early):

=====================================  ==========================================================
2xx                                    delivered
400, 413, 415, 422                     rejected: these exact bytes will never be accepted;
                                       retrying cannot help (dead letter, staff may requeue)
408, 425, 429, 5xx, network errors,    retried with backoff; ``Retry-After`` (seconds or an
timeouts                               HTTP date) is honoured
3xx, 401, 403, 404, 410, other 4xx     retried until the 24-hour window is spent: they describe
                                       the receiver's configuration (URL, keys, routing), which
                                       the organizer can fix within the window
=====================================  ==========================================================

Redirects are not followed: a signed notice goes to the registered address only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx2

from numident.client.retry_after import parse_retry_after
from numident.outbox.dispatcher import DeliveryOutcome
from numident.outbox.store import OutboxMessage

Signer = Callable[[str, str, bytes, dict[str, str]], dict[str, str]]
"""``sign(method, url, body, headers)`` returns the headers to add (e.g. ``Signature``)."""

REJECTED_STATUSES = frozenset({400, 413, 415, 422})
_BODY_EXCERPT = 200


class HttpSender:
    """POSTs each message's payload to its destination with ``client``; signs with ``sign``."""

    def __init__(
        self,
        client: httpx2.AsyncClient,
        sign: Signer | None = None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.sign = sign
        self._now = now  # only to read an HTTP-date Retry-After against wall time

    async def send(self, message: OutboxMessage) -> DeliveryOutcome:
        """POST ``message``; never raises for the receiver's or the network's failures."""
        headers = {"Content-Type": message.content_type, "Idempotency-Key": message.id}
        if self.sign is not None:
            headers.update(self.sign("POST", message.destination, message.payload, dict(headers)))
        try:
            response = await self.client.post(
                message.destination, content=message.payload, headers=headers,
                follow_redirects=False,
            )
        except httpx2.HTTPError as exc:
            return DeliveryOutcome.retry(f"{type(exc).__name__}: {exc}".rstrip(": "))
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryOutcome.delivered()
        error = f"HTTP {status}: {response.text[:_BODY_EXCERPT]}".rstrip(": ")
        if status in REJECTED_STATUSES:
            return DeliveryOutcome.reject(error)
        return DeliveryOutcome.retry(error, parse_retry_after(response.headers, self._now()))
