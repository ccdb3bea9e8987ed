"""CAMARA SIM Swap subscriptions: organizations ask to be told, at their sink, of SIM swaps.

Creation is synchronous (201, status ``ACTIVE``). Only HTTP delivery and an ``ACCESSTOKEN``
sink credential of type ``bearer`` are served (400 ``INVALID_PROTOCOL``,
``INVALID_CREDENTIAL``, ``INVALID_TOKEN`` otherwise); the sink must be an ``https`` URL
(``http`` too when ``operator.camara.sim_swap_http_sinks`` is set), any other URL is 400
``INVALID_SINK`` and a value that is not a URL 400 ``INVALID_ARGUMENT``. A sink whose host is,
or resolves to, an address of the operator's own network, or does not resolve, is 400
``INVALID_SINK`` too, unless ``operator.camara.sim_swap_private_sinks`` is set
(:mod:`numident.sinks.addresses`; checked last, so that only an otherwise valid request
costs a name resolution). The credential's token is stored sealed
(:mod:`numident.sinks.tokens`). The spec defines no initial event for SIM swaps (a swap
is an instant, not a state) and none is sent.

The line comes from a three-legged token or from ``config.subscriptionDetail.phoneNumber``.
As the conformance features require, with a two-legged token an absent ``phoneNumber`` is 400
``INVALID_ARGUMENT`` (a required property missing) while a null or empty one is 422
``MISSING_IDENTIFIER``; a line outside the served ranges is 422 ``UNSUPPORTED_IDENTIFIER``.
A subscription is seen and deleted only by the organizer that made it, and, with a
three-legged token, only for the token's line; the phone number is shown back only to
two-legged callers, and the sink credential never.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, Field, StrictInt, StrictStr

from numident.camara import sim_swap_events
from numident.camara.common import (
    Caller,
    CamaraModel,
    PhoneNumber,
    caller_with,
    error_responses,
    registry_line,
    subject,
)
from numident.camara.sim_swap_events import SWAPPED, NewSubscription, Subscription
from numident.errors import InvalidInput, NotFound, Unprocessable
from numident.sinks.addresses import SinkGuard
from numident.sinks.tokens import SinkTokenCipher

CREATE = f"sim-swap-subscriptions:{SWAPPED}:create"
READ = "sim-swap-subscriptions:read"
DELETE = "sim-swap-subscriptions:delete"
router = APIRouter(tags=["Sim Swap Subscription"],
                   responses=error_responses(400, 401, 403, 404))

SubscriptionId = Annotated[str, Path(max_length=256, description="The subscription's id")]


class SinkCredential(CamaraModel):
    """Any of the spec's credential kinds; only ACCESSTOKEN (bearer) is served."""

    credentialType: StrictStr
    accessToken: StrictStr | None = Field(None, min_length=1, max_length=4096)
    accessTokenExpiresUtc: AwareDatetime | None = None
    accessTokenType: StrictStr | None = None
    identifier: StrictStr | None = None
    secret: StrictStr | None = None
    refreshToken: StrictStr | None = None
    refreshTokenEndpoint: StrictStr | None = None


class SubscriptionDetail(CamaraModel):
    phoneNumber: PhoneNumber | Literal[""] | None = None


class Config(CamaraModel):
    subscriptionDetail: SubscriptionDetail
    subscriptionExpireTime: AwareDatetime | None = None
    subscriptionMaxEvents: StrictInt | None = Field(None, ge=1, le=1_000_000)


class SubscriptionRequest(CamaraModel):
    protocol: StrictStr = Field(description="Only HTTP is served", examples=["HTTP"])
    sink: StrictStr = Field(max_length=2048, json_schema_extra={"format": "uri"},
                            examples=["https://endpoint.example.com/sink"])
    sinkCredential: SinkCredential | None = None
    types: list[Literal["org.camaraproject.sim-swap-subscriptions.v0.swapped"]] = Field(
        min_length=1, max_length=1)
    config: Config


class ShownDetail(CamaraModel):
    phoneNumber: str | None = None


class ShownConfig(CamaraModel):
    subscriptionDetail: ShownDetail
    subscriptionExpireTime: datetime | None = None
    subscriptionMaxEvents: int | None = None


class SubscriptionInfo(CamaraModel):
    protocol: Literal["HTTP"]
    sink: str
    types: list[str]
    config: ShownConfig
    id: str
    startsAt: datetime
    expiresAt: datetime | None = None
    status: Literal["ACTIVE"]


def shown(subscription: Subscription, caller: Caller) -> SubscriptionInfo:
    """The subscription as ``caller`` may see it (the line only to two-legged callers)."""
    detail = ShownDetail()
    if caller.phone_number is None and not subscription.by_token:
        detail = ShownDetail(phoneNumber=subscription.phone_number)
    config = ShownConfig(subscriptionDetail=detail)
    if subscription.expires_at is not None:
        config.subscriptionExpireTime = subscription.expires_at
    if subscription.max_events is not None:
        config.subscriptionMaxEvents = subscription.max_events
    info = SubscriptionInfo(protocol="HTTP", sink=subscription.sink, types=[SWAPPED],
                            config=config, id=subscription.id, startsAt=subscription.starts_at,
                            status="ACTIVE")
    if subscription.expires_at is not None:
        info.expiresAt = subscription.expires_at
    return info


def subscribed_line(caller: Caller, detail: SubscriptionDetail) -> str:
    """The line a creation request is about (see the module docstring for the refusals)."""
    given = detail.phoneNumber or None
    if "phoneNumber" not in detail.model_fields_set and caller.phone_number is None:
        raise InvalidInput("config.subscriptionDetail.phoneNumber is required with a "
                           "two-legged access token")
    try:
        number = subject(caller, given)
    except Unprocessable as exc:
        if exc.code != "SERVICE_NOT_APPLICABLE":
            raise
        raise Unprocessable("SIM swap subscriptions are not available for this phone number",
                            code="UNSUPPORTED_IDENTIFIER") from exc
    registry_line(caller.engine, number)
    return number


def sink_token(credential: SinkCredential | None, now: datetime
               ) -> tuple[str | None, datetime | None]:
    """The bearer token (and its expiry) events are sent with; None without a credential."""
    if credential is None:
        return None, None
    if credential.credentialType != "ACCESSTOKEN":
        raise InvalidInput("Only Access token is supported", code="INVALID_CREDENTIAL")
    if (credential.accessTokenType or "").lower() != "bearer":
        raise InvalidInput("Only bearer token is supported", code="INVALID_TOKEN")
    if credential.accessToken is None or credential.accessTokenExpiresUtc is None:
        raise InvalidInput("sinkCredential needs accessToken, accessTokenExpiresUtc and "
                           "accessTokenType")
    if credential.accessTokenExpiresUtc <= now:
        raise InvalidInput("the sink credential's access token has already expired",
                           code="INVALID_CREDENTIAL")
    return credential.accessToken, credential.accessTokenExpiresUtc.astimezone(UTC)


def checked_sink(sink: str, http_allowed: bool) -> str:
    """``sink`` if it is an URL events may be POSTed to."""
    try:
        parts = urlsplit(sink)
        valid = bool(parts.scheme and parts.hostname) and (parts.port or 0) >= 0
    except ValueError:
        valid = False
    if not valid or any(c.isspace() for c in sink):
        raise InvalidInput("sink must be an absolute URL")
    if parts.scheme != "https" and not (http_allowed and parts.scheme == "http"):
        raise InvalidInput("sink not valid for the specified protocol: an https URL is "
                           "required", code="INVALID_SINK")
    return sink


def sink_cipher(request: Request) -> SinkTokenCipher:
    """The gateway's sink token cipher (``app.state.sink_cipher``)."""
    cipher: SinkTokenCipher = request.app.state.sink_cipher
    return cipher


@router.post("/subscriptions", status_code=201, response_model=SubscriptionInfo,
             response_model_exclude_unset=True, operation_id="createSimSwapSubscription",
             responses=error_responses(409, 422, 429),
             summary="Create a sim swap event subscription for a phone number")
def create(body: SubscriptionRequest,
           caller: Annotated[Caller, Depends(caller_with(CREATE))],
           cipher: Annotated[SinkTokenCipher, Depends(sink_cipher)]) -> SubscriptionInfo:
    now = caller.now()
    if body.protocol != "HTTP":
        raise InvalidInput("Only HTTP is supported", code="INVALID_PROTOCOL")
    token, token_expires = sink_token(body.sinkCredential, now)
    sink = checked_sink(body.sink, caller.settings.sim_swap_http_sinks)
    expires = body.config.subscriptionExpireTime
    if expires is not None and expires <= now:
        raise InvalidInput("config.subscriptionExpireTime is in the past")
    expires = expires and expires.astimezone(UTC)
    number = subscribed_line(caller, body.config.subscriptionDetail)
    refusal = SinkGuard(caller.settings.sim_swap_private_sinks).refusal(sink)  # resolves
    if refusal is not None:
        raise InvalidInput(f"sink not allowed: {refusal}", code="INVALID_SINK")
    subscription = sim_swap_events.create(caller.engine, NewSubscription(
        organizer_id=caller.organizer.id, phone_number=number,
        by_token=caller.phone_number is not None, sink=sink, sink_token=token,
        sink_token_expires_at=token_expires, expires_at=expires,
        max_events=body.config.subscriptionMaxEvents), now, cipher)
    return shown(subscription, caller)


@router.get("/subscriptions", response_model=list[SubscriptionInfo],
            response_model_exclude_unset=True, operation_id="retrieveSubscriptionList",
            summary="Retrieve a list of sim swap event subscription")
def retrieve_list(caller: Annotated[Caller, Depends(caller_with(READ))]
                  ) -> list[SubscriptionInfo]:
    return [shown(s, caller) for s in
            sim_swap_events.listing(caller.engine, caller.organizer.id, caller.phone_number)]


@router.get("/subscriptions/{subscriptionId}", response_model=SubscriptionInfo,
            response_model_exclude_unset=True, operation_id="retrieveSubscription",
            summary="Retrieve a sim swap event subscription for a phone number")
def retrieve(subscriptionId: SubscriptionId,
             caller: Annotated[Caller, Depends(caller_with(READ))]) -> SubscriptionInfo:
    found = sim_swap_events.find(caller.engine, caller.organizer.id, subscriptionId,
                                 caller.phone_number)
    if found is None:
        raise NotFound("The specified resource is not found.")
    return shown(found, caller)


@router.delete("/subscriptions/{subscriptionId}", status_code=204,
               operation_id="deleteSubscription", summary="Delete a sim swap event subscription")
def delete(subscriptionId: SubscriptionId,
           caller: Annotated[Caller, Depends(caller_with(DELETE))]) -> Response:
    if not sim_swap_events.delete(caller.engine, caller.organizer.id, subscriptionId,
                                  caller.phone_number, caller.now(),
                                  caller.gateway.notice_source):
        raise NotFound("The specified resource is not found.")
    caller.gateway.on_notice()
    # The conformance feature expects the JSON media type even on this empty answer.
    return Response(status_code=204, media_type="application/json")
