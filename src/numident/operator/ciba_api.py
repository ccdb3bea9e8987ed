"""The HTTP side of CIBA: ``POST /oauth2/bc-authorize``, the CIBA grant of the token endpoint,
the subscriber's approve/deny page, and the staff's registration of a client's delivery mode.

Errors of the two OAuth endpoints are the bodies of RFC 6749 section 5.2 as CIBA Core 13 and 11
use them (``{"error", "error_description"}``, ``Cache-Control: no-store``; a failed client
authentication is 401 ``invalid_client``), never the CAMARA error body of the resource APIs:
the pure rules' :class:`~numident.core.ciba.CibaRefusal` becomes the gateway's one
:class:`~numident.operator.oauth_errors.OAuthError`. The CIBA grant is one entry of the token
endpoint's table of grants (:func:`ciba_grant`).
The page (:mod:`numident.operator.consent_page`) is plain HTML with one form; its URL's
secret is the subscriber's credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from numident.client.assertions import ASSERTION_TYPE
from numident.core.ciba import CibaRefusal
from numident.errors import NotFound
from numident.operator import consent_page as consent_page_html
from numident.operator.auth import Authenticator
from numident.operator.ciba import Ciba, ConsentOutcome, DeliveryMode, register_client
from numident.operator.oauth_errors import NO_STORE, OAuthError, OAuthErrorCode
from numident.operator.security import admin_bearer
from numident.operator.token_endpoint import OAUTH_ERROR, Grant

router = APIRouter(tags=["auth"])


def ciba(request: Request) -> Ciba:
    return request.app.state.ciba  # type: ignore[no-any-return]


def authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator  # type: ignore[no-any-return]


def refused(refusal: CibaRefusal) -> OAuthError:
    """The RFC 6749 section 5.2 refusal of a CIBA rule's refusal."""
    return OAuthError(OAuthErrorCode(refusal.error), refusal.message)


async def read_form(request: Request) -> dict[str, str]:
    """The form of an OAuth request; a repeated parameter is ``invalid_request``."""
    pairs = parse_qsl((await request.body()).decode("latin-1"), keep_blank_values=True)
    form = dict(pairs)
    if len(form) != len(pairs):  # RFC 6749 section 3.2: no parameter more than once
        raise OAuthError(OAuthErrorCode.INVALID_REQUEST, "a parameter is given more than once")
    return form


def ciba_grant(service: Ciba) -> Grant:
    """The token endpoint's grant ``urn:openid:params:grant-type:ciba`` (CIBA Core 10.1)."""

    def grant(client_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        if not form.get("auth_req_id"):
            raise OAuthError(OAuthErrorCode.INVALID_REQUEST, "auth_req_id is missing")
        try:
            issued = service.redeem(client_id, form["auth_req_id"])
        except CibaRefusal as refusal:
            raise refused(refusal) from refusal
        return {"access_token": issued.access_token, "token_type": issued.token_type,
                "expires_in": issued.expires_in, "scope": issued.scope}

    return grant


BC_FORM = {"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object",
        "required": ["scope", "login_hint", "client_assertion_type", "client_assertion"],
        "properties": {
            "scope": {"type": "string", "description": "one dpv: purpose and API scopes"},
            "login_hint": {"type": "string", "examples": ["tel:+79161234567"],
                           "description": "tel:+E164, phone_number:+E164 or operatortoken:..."},
            "binding_message": {"type": "string"},
            "client_notification_token": {"type": "string",
                                          "description": "required in ping mode"},
            "requested_expiry": {"type": "integer", "minimum": 1},
            "client_assertion_type": {"type": "string", "enum": [ASSERTION_TYPE]},
            "client_assertion": {"type": "string"},
            "client_id": {"type": "string"},
        }}}}}}


class BcAuthorizeAnswer(BaseModel):
    auth_req_id: str
    expires_in: int
    interval: int


OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "RFC 6749 section 5.2 error", **OAUTH_ERROR},
    401: {"description": "invalid_client", **OAUTH_ERROR},
    503: {"description": "temporarily_unavailable", **OAUTH_ERROR}}


@router.post("/oauth2/bc-authorize", response_model=BcAuthorizeAnswer, openapi_extra=BC_FORM,
             operation_id="requestBackchannelAuthentication",
             responses=OAUTH_ERRORS,
             summary="Backchannel authentication request (OpenID CIBA Core 1.0 section 7)")
async def bc_authorize(request: Request) -> Response:
    form = await read_form(request)
    auth = authenticator(request)
    client_id = await anyio.to_thread.run_sync(auth.authenticate_client, form)
    record = auth.organizer_by_name(client_id)
    scopes = record.scopes if record is not None else frozenset()
    try:
        started = await anyio.to_thread.run_sync(ciba(request).start, client_id, scopes, form)
    except CibaRefusal as refusal:
        raise refused(refusal) from refusal
    return JSONResponse({"auth_req_id": started.auth_req_id, "expires_in": started.expires_in,
                         "interval": started.interval}, headers=NO_STORE)


# -- the subscriber's page ------------------------------------------------------------------

@router.get("/oauth2/bc-consent/{secret}", response_class=HTMLResponse, include_in_schema=False)
def consent_page(secret: str, request: Request) -> HTMLResponse:
    view = ciba(request).consent_view(secret)
    if view is None:
        return consent_page_html.message("Request closed", consent_page_html.GONE, status=404)
    return consent_page_html.question(view)


@router.post("/oauth2/bc-consent/{secret}", response_class=HTMLResponse,
             include_in_schema=False)
async def consent_answer(secret: str, request: Request) -> HTMLResponse:
    try:
        decision = (await read_form(request)).get("decision")
    except OAuthError:
        decision = None
    if decision not in ("approve", "deny"):
        return consent_page_html.message("Unknown answer", "Choose Approve or Deny.",
                                         status=400)
    outcome = await anyio.to_thread.run_sync(ciba(request).decide, secret,
                                             decision == "approve")
    if outcome is ConsentOutcome.RECORDED:
        done = "approved" if decision == "approve" else "denied"
        return consent_page_html.message(f"Request {done}", f"You {done} the request. You "
                                         "may close this page.")
    status = 409 if outcome is ConsentOutcome.ALREADY_DECIDED else 404
    return consent_page_html.message("Request closed", consent_page_html.GONE, status=status)


# -- staff: a client's delivery mode ----------------------------------------------------------

class CibaClient(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deliveryMode: Literal["poll", "ping"]
    notificationEndpoint: str | None = None


@router.put("/admin/v1/organizers/{name}/ciba", status_code=204,
            operation_id="setOrganizerCibaDelivery",
            tags=["admin"], summary="How an organizer learns CIBA decisions: poll or ping")
def put_ciba_client(name: str, body: CibaClient, request: Request,
                    authorization: Annotated[str | None, Depends(admin_bearer)]
                    ) -> Response:
    auth = authenticator(request)
    auth.admin(authorization)
    if auth.organizer_by_name(name) is None:
        raise NotFound(f"no organizer named {name}", code="ORGANIZER_NOT_FOUND")
    service = ciba(request)
    register_client(service.engine, name, DeliveryMode(body.deliveryMode),
                    body.notificationEndpoint, http_allowed=service.http_endpoints)
    return Response(status_code=204)
