"""The notices the gateway sends, declared as its document's ``webhooks`` (OpenAPI 3.1).

Nothing is served here: the operation describes the request the gateway's dispatcher makes to
each organizer's notice URL, so that an organizer not running numident can implement the
receiving side from the gateway's document alone.
"""

from __future__ import annotations

from fastapi import Body, FastAPI

from numident.web.notice_contract import DELIVERY, Notice, NoticeReceipt, signature_headers
from numident.wire.error_body import ErrorBody

CLOUDEVENTS_JSON = "application/cloudevents+json"
_STRUCTURED = Body(media_type=CLOUDEVENTS_JSON)


def declare_notice_webhook(app: FastAPI) -> None:
    """Add the ``notice`` webhook to ``app``'s document."""

    @app.webhooks.post(
        "notice", operation_id="sendNotice", response_model=NoticeReceipt,
        summary="A usage recorded by the organizer is no longer valid (or a SIM was swapped)",
        description=DELIVERY, openapi_extra={"parameters": signature_headers()},
        responses={400: {"model": ErrorBody, "description": "INVALID_NOTICE: not retried"},
                   401: {"model": ErrorBody, "description": "SIGNATURE_MISSING, UNKNOWN_KEY, "
                         "SIGNATURE_INVALID, SIGNATURE_EXPIRED or DIGEST_MISMATCH"}})
    def notice(event: Notice = _STRUCTURED) -> NoticeReceipt:
        raise NotImplementedError  # declared for the document; sent by the dispatcher
