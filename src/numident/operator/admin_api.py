"""The operator staff's HTTP API, behind the separate admin credential."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from numident.core.clock import rfc3339
from numident.core.numbers import normalize
from numident.operator.api import ERRORS, authenticator, gateway
from numident.operator.authorization import Authentication
from numident.operator.lifecycle_intake import LifecycleEvent
from numident.operator.organizers import Limits, OrganizerRecord
from numident.operator.security import admin_bearer


def admin(request: Request,
          authorization: Annotated[str | None, Depends(admin_bearer)]) -> None:
    authenticator(request).admin(authorization)


router = APIRouter(prefix="/admin/v1", dependencies=[Depends(admin)], tags=["admin"],
                   responses=ERRORS)


class OrganizerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr
    noticeUrl: StrictStr
    publicKey: StrictStr = Field(description="PEM or JWK (JSON text) of the organizer's key")
    scopes: list[StrictStr] = Field(["identification"], min_length=1,
                                    description="OAuth2 scopes the organizer may be granted")
    redirectUris: list[StrictStr] = Field(
        [], description="Redirect URIs of its authorization-code flow (exact match)")
    rateLimit: StrictInt | None = Field(
        None, ge=1, description="Identification items per second (per replica); unset: the "
        "gateway's default")
    dailyQuota: StrictInt | None = Field(
        None, ge=1, description="Identification items per UTC day (all replicas); unset: the "
        "gateway's default")
    replace: bool = False


class LimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rateLimit: StrictInt | None = Field(
        description="Identification items per second (per replica); null: the gateway's default",
        ge=1)
    dailyQuota: StrictInt | None = Field(
        description="Identification items per UTC day (all replicas); null: the gateway's "
        "default", ge=1)


class NetworkSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phoneNumber: StrictStr
    authentication: Authentication = Authentication.NETWORK


@router.post("/events", status_code=201, operation_id="recordLifecycleEvent",
             summary="Record a lifecycle event now")
def post_event(body: LifecycleEvent, request: Request) -> JSONResponse:
    g = gateway(request)
    outcome = g.record_event(body.type, normalize(body.phoneNumber), source="admin-api",
                             occurred_at=body.occurredAt, event_id=body.eventId,
                             new_contract_id=body.newContractId)
    return JSONResponse({"eventId": outcome.event_id, "type": outcome.type.value,
                         "phoneNumber": outcome.phone_number, "notices": outcome.notices,
                         "duplicate": outcome.duplicate},
                        status_code=200 if outcome.duplicate else 201)


@router.post("/organizers", status_code=201, operation_id="registerOrganizer",
             summary="Register an organizer")
def post_organizer(body: OrganizerIn, request: Request) -> JSONResponse:
    record = gateway(request).register_organizer(
        body.name, body.noticeUrl, body.publicKey, replace=body.replace, scopes=body.scopes,
        redirect_uris=body.redirectUris, limits=Limits(body.rateLimit, body.dailyQuota))
    authenticator(request).forget(record.name)
    return JSONResponse({"name": record.name, "noticeUrl": record.notice_url,
                         "scopes": sorted(record.scopes),
                         "redirectUris": list(record.redirect_uris),
                         **_limits(request, record)}, status_code=201)


@router.get("/organizers/{name}/limits", operation_id="getOrganizerLimits",
            summary="An organizer's limits: its own, those in force, and today's count")
def get_limits(name: str, request: Request) -> JSONResponse:
    return JSONResponse(_limits(request, gateway(request).organizer(name)))


@router.put("/organizers/{name}/limits", operation_id="setOrganizerLimits",
            summary="Change an organizer's limits (null: the gateway's default); applies at "
            "once here and within a second on every other replica")
def put_limits(name: str, body: LimitsIn, request: Request) -> JSONResponse:
    record = gateway(request).set_limits(name, Limits(body.rateLimit, body.dailyQuota))
    authenticator(request).forget(name)
    return JSONResponse(_limits(request, record))


def _limits(request: Request, record: OrganizerRecord) -> dict[str, Any]:
    g = gateway(request)
    effective = g.limits.effective(record.id)
    return {"rateLimit": record.limits.rate_limit, "dailyQuota": record.limits.daily_quota,
            "effective": {"rateLimit": effective.rate_limit,
                          "dailyQuota": effective.daily_quota},
            "itemsToday": g.limits.counted(record.id, g.clock.now().date())}


@router.put("/network-sessions/{sessionId}", status_code=204, operation_id="putNetworkSession",
            summary="Tell the gateway which line a network session (connection) belongs to")
def put_network_session(sessionId: str, body: NetworkSessionIn, request: Request) -> Response:
    gateway(request).set_session(sessionId, normalize(body.phoneNumber), body.authentication)
    return Response(status_code=204)


@router.delete("/network-sessions/{sessionId}", status_code=204,
               operation_id="deleteNetworkSession",
               summary="Forget a network session")
def delete_network_session(sessionId: str, request: Request) -> Response:
    gateway(request).end_session(sessionId)
    return Response(status_code=204)


@router.get("/notices", operation_id="listNotices", summary="Notices in the outbox, newest first")
def get_notices(request: Request,
                status: Literal["pending", "delivered", "dead"] | None = None,
                organizer: str | None = None, limit: int = 100) -> JSONResponse:
    counts, rows = gateway(request).notices(status=status, organizer=organizer,
                                            limit=min(max(limit, 1), 1000))
    return JSONResponse({"counts": counts, "notices": [_notice(m) for m in rows]})


@router.post("/notices/{noticeId}/retry", operation_id="retryNotice",
             summary="Send a dead-lettered notice again")
def retry_notice(noticeId: str, request: Request) -> JSONResponse:
    return JSONResponse({"requeued": gateway(request).retry_notice(noticeId)})


def _notice(message: Any) -> dict[str, Any]:
    return {"id": message.id, "organizer": message.owner, "status": message.status,
            "attempts": message.attempts, "createdAt": rfc3339(message.created_at),
            "lastError": message.last_error, "deliveredAt": rfc3339(message.delivered_at)}
