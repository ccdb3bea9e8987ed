"""The staff's admin API over SIM swap subscriptions (``/admin/v1``, the admin credential).

Mounted beside the operator's admin API by the composition root, so that the operator's own
modules need not know the CAMARA subscriptions.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from numident.camara import sim_swap_events
from numident.core.clock import rfc3339
from numident.core.numbers import normalize
from numident.errors import NotFound
from numident.operator.admin_api import admin
from numident.operator.api import ERRORS, gateway

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(admin)], tags=["admin"],
                   responses=ERRORS)


@router.get("/sim-swap-subscriptions", operation_id="listSimSwapSubscriptions",
            summary="Active SIM swap subscriptions")
def get_sim_swap_subscriptions(request: Request, phoneNumber: str | None = None,
                               organizer: str | None = None, limit: int = 100) -> JSONResponse:
    g = gateway(request)
    found = sim_swap_events.all_active(
        g.engine, phone_number=normalize(phoneNumber) if phoneNumber else None,
        organizer=organizer, limit=min(max(limit, 1), 1000))
    return JSONResponse({"subscriptions": [
        {"id": s.id, "organizer": name, "phoneNumber": s.phone_number, "sink": s.sink,
         "startsAt": rfc3339(s.starts_at), "expiresAt": rfc3339(s.expires_at),
         "maxEvents": s.max_events} for name, s in found]})


@router.delete("/sim-swap-subscriptions/{subscriptionId}", status_code=204,
               operation_id="endSimSwapSubscription",
               summary="End a SIM swap subscription (NETWORK_TERMINATED)")
def end_sim_swap_subscription(subscriptionId: str, request: Request) -> Response:
    g = gateway(request)
    if not sim_swap_events.terminate(g.engine, subscriptionId, g.clock.now(), g.notice_source):
        raise NotFound(f"no active SIM swap subscription {subscriptionId}",
                       code="SUBSCRIPTION_NOT_FOUND")
    g.on_notice()
    return Response(status_code=204)
