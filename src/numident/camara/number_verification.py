"""CAMARA Number Verification: is this the number of the device that is talking to us?

The answer comes only from a three-legged token whose subscriber the *mobile network* named:
the authorization-code flow took the line from the device's network session, and the token's
``amr`` says how that session was authenticated. A token whose line was authenticated
otherwise (a one-time code, say) is refused with ``NUMBER_VERIFICATION.
USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK``; a two-legged token names no device at all and is
refused with ``PERMISSION_DENIED``.

``POST /verify`` compares a plain or SHA-256-hashed (hex) E.164 number with the token's,
in constant time; ``GET /device-phone-number`` returns the token's number.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field, model_validator

from numident.camara.common import (
    Caller,
    CamaraModel,
    PhoneNumber,
    caller_with,
    error_responses,
)
from numident.errors import PermissionDenied
from numident.operator.authorization import Authentication

router = APIRouter(tags=["Number Verification"],
                   responses=error_responses(400, 401, 403))
MOBILE_NETWORK = frozenset(a.value for a in Authentication if a.by_mobile_network)


class VerifyRequest(CamaraModel):
    """Exactly one of the plain or the hashed number."""

    phoneNumber: PhoneNumber | None = None
    hashedPhoneNumber: str | None = Field(
        None, pattern=r"^[a-fA-F0-9]{64}$",
        description="SHA-256, in hexadecimal, of the E.164 number with its leading +")

    @model_validator(mode="after")
    def one_of_them(self) -> VerifyRequest:
        if (self.phoneNumber is None) == (self.hashedPhoneNumber is None):
            raise ValueError("give exactly one of phoneNumber and hashedPhoneNumber")
        return self


class VerifyResponse(CamaraModel):
    devicePhoneNumberVerified: bool


class ShareResponse(CamaraModel):
    devicePhoneNumber: str


def device_number(caller: Caller) -> str:
    """The token's line, when the mobile network authenticated it."""
    number = caller.phone_number
    if number is None:
        raise PermissionDenied("this operation needs a three-legged access token that "
                               "identifies the device", code="PERMISSION_DENIED")
    if not caller.token.amr & MOBILE_NETWORK:
        raise PermissionDenied("Client must authenticate via the mobile network to use this "
                               "service",
                               code="NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK")
    return number


def sha256_hex(number: str) -> str:
    return hashlib.sha256(number.encode("ascii")).hexdigest()


@router.post("/verify", response_model=VerifyResponse, operation_id="phoneNumberVerify",
             summary="Does the given (or hashed) number match the device's?")
def verify(body: VerifyRequest,
           caller: Annotated[Caller, Depends(caller_with("number-verification:verify"))]
           ) -> VerifyResponse:
    number = device_number(caller)
    if body.phoneNumber is not None:
        matched = hmac.compare_digest(body.phoneNumber.encode(), number.encode())
    else:
        assert body.hashedPhoneNumber is not None  # one_of_them
        matched = hmac.compare_digest(body.hashedPhoneNumber.lower().encode(),
                                      sha256_hex(number).encode())
    return VerifyResponse(devicePhoneNumberVerified=matched)


@router.get("/device-phone-number", response_model=ShareResponse,
            operation_id="phoneNumberShare", summary="The number of the device's line")
def device_phone_number(
    caller: Annotated[Caller, Depends(caller_with(
        "number-verification:device-phone-number:read"))]) -> ShareResponse:
    return ShareResponse(devicePhoneNumber=device_number(caller))
