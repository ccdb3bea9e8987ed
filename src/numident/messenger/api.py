"""The messenger service's HTTP API for the organizer's backend (paths fixed by SPEC).

The backend authenticates with ``Authorization: Bearer <messenger.api_token>`` when a token
is configured (compared in constant time). The notices endpoint is authenticated by the
operator's signature instead. Errors are ``{"status","code","message"}``.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Path, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from numident.core.accounts import AccountState
from numident.core.clock import rfc3339
from numident.core.numbers import NUMBER_PATTERN
from numident.errors import Unauthenticated
from numident.messenger.accounts import ACCOUNT_ID_PATTERN, Account
from numident.messenger.channels import Channel
from numident.messenger.service import MessengerService
from numident.web.access_log import note_subscriber
from numident.web.notice_contract import DELIVERY, NoticeReceipt, signature_headers
from numident.web.refusals import log_refusal
from numident.wire.bearer import bearer_token
from numident.wire.error_body import ErrorBody, error_responses

router = APIRouter()


# The patterns document the core's checks (which answer with their own error codes), so
# they are schema annotations, not validation of the framework's.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
AccountId = Annotated[str, Path(json_schema_extra={"pattern": ACCOUNT_ID_PATTERN})]


class PhoneNumberBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phoneNumber: StrictStr = Field(
        examples=["+79161234567", "89161234567"], json_schema_extra={"pattern": NUMBER_PATTERN},
        description="E.164, or the national form of the messenger's default region")
    channel: Channel | None = Field(
        None, description="How the code is sent; default and fallback order: the service's "
        "messenger.channels. A flash call's code is the last digits of the calling number")
    clientAddress: StrictStr | None = Field(
        None, max_length=64, examples=["203.0.113.7"],
        description="The user's IP address, for the per-address send budget; default: the "
        "address of the caller")


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: StrictStr = Field(examples=["123456"], description="the digits sent by SMS or "
                            "spoken by the voice call, or the flash call's last digits")


class AccountView(BaseModel):
    accountId: str
    phoneNumber: str | None
    state: AccountState
    operator: str | None = Field(description="ИНН of the operator serving the number")
    operatorName: str | None
    canSend: bool
    identificationCode: str
    reason: str | None
    updatedAt: Timestamp
    simSwappedAt: Timestamp | None


ERRORS = error_responses(ErrorBody, 400, 401, 404, 409, 422, 429, 503)


def service(request: Request) -> MessengerService:
    return request.app.state.service  # type: ignore[no-any-return]


BACKEND_TOKEN = HTTPBearer(
    scheme_name="backendToken", auto_error=False,
    description="The organizer backend's token (messenger.api_token); when none is "
    "configured, the service accepts any caller.")
_BACKEND_TOKEN = Security(BACKEND_TOKEN)


async def backend(request: Request, _: Any = _BACKEND_TOKEN) -> None:
    """Accept the organizer's backend: the configured bearer token, or anyone when none is.

    A coroutine, as it does no I/O: FastAPI would run a plain function in a worker thread."""
    authorization = request.headers.get("authorization")
    token = service(request).settings.api_token
    if token is None:
        return
    try:
        given = bearer_token(authorization)
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise Unauthenticated("the API token is not valid", code="INVALID_TOKEN")
    except Unauthenticated as exc:
        log_refusal("backend_token", exc.code, exc.message)
        raise


Backend = Depends(backend)


def present(account: Account) -> dict[str, Any]:
    if account.phone_number is not None:
        note_subscriber(account.phone_number)
    return AccountView(
        accountId=account.account_id, phoneNumber=account.phone_number,
        state=account.state.value, operator=account.operator_inn,
        operatorName=account.operator_name, canSend=account.can_send,
        identificationCode=account.identification_code, reason=account.reason,
        updatedAt=rfc3339(account.updated_at) or "", simSwappedAt=rfc3339(account.sim_swapped_at),
    ).model_dump()


@router.put("/messenger/v1/accounts/{accountId}/phone-number", status_code=202,
            operation_id="setPhoneNumber",
            response_model=AccountView, responses=ERRORS, dependencies=[Backend],
            tags=["accounts"],
            summary="Start (re-)identification: a code is sent by SMS, flash call or voice call",
            description="Refused before anything is sent: a number the numbering plan lists in "
            "no Russian mobile range (422 NUMBER_NOT_MOBILE); a send budget spent (per number, "
            "plan range, region, client address, in total: 429 SEND_BUDGET_EXHAUSTED), a range "
            "whose codes go unconfirmed (429 RANGE_SUSPENDED) or a code sent a moment ago "
            "(429 TOO_MANY_REQUESTS), each with Retry-After. 503 CODE_NOT_DELIVERED when no "
            "channel's provider took the code.")
async def put_phone_number(accountId: AccountId, body: PhoneNumberBody,
                           request: Request) -> JSONResponse:
    address = body.clientAddress or (request.client.host if request.client else None)
    account = await service(request).set_phone_number(
        accountId, body.phoneNumber, channel=body.channel.value if body.channel else None,
        client_address=address)
    return JSONResponse(present(account), status_code=202)


@router.post("/messenger/v1/accounts/{accountId}/phone-number/confirm", status_code=202,
             operation_id="confirmPhoneNumber",
             response_model=AccountView, responses=ERRORS, dependencies=[Backend],
             tags=["accounts"],
             summary="Prove possession with the code; the operator is asked next")
async def confirm_phone_number(accountId: AccountId, body: ConfirmBody,
                               request: Request) -> JSONResponse:
    account = await service(request).confirm_possession(accountId, body.code)
    return JSONResponse(present(account), status_code=202)


@router.get("/messenger/v1/accounts/{accountId}", response_model=AccountView,
            operation_id="getAccount",
            responses=ERRORS, dependencies=[Backend], tags=["accounts"],
            summary="The account's state; canSend is the messaging gate")
def get_account(accountId: AccountId, request: Request) -> JSONResponse:
    return JSONResponse(present(service(request).status(accountId)))


NOTICE_BODY = {"required": True, "description": "The CloudEvent: structured mode, or binary "
               "mode (application/json: the data, the attributes as ce-* headers)",
               "content": {
                   "application/cloudevents+json": {
                       "schema": {"$ref": "#/components/schemas/Notice"}},
                   "application/json": {"schema": {"$ref": "#/components/schemas/NoticeData"}}}}


@router.post("/messenger/v1/notices", response_model=NoticeReceipt, responses=ERRORS,
             operation_id="receiveNotice", description=DELIVERY,
             openapi_extra={"parameters": signature_headers(), "requestBody": NOTICE_BODY},
             tags=["notices"], summary="Intake of signed operator notices (CloudEvents 1.0)")
async def post_notice(request: Request) -> JSONResponse:
    body = await request.body()
    svc = service(request)
    url = str(request.url)
    if svc.settings.public_url:
        url = svc.settings.public_url.rstrip("/") + request.url.path
    receipt = await anyio.to_thread.run_sync(svc.receive_notice, request.method, url,
                                             dict(request.headers), body)
    return JSONResponse({"id": receipt.event_id, "type": receipt.type.value,
                         "duplicate": receipt.duplicate, "accounts": receipt.accounts})
