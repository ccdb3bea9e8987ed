"""The ``Authorization: Bearer <token>`` header (RFC 6750 section 2.1), read one way everywhere."""

from __future__ import annotations

from numident.errors import Unauthenticated


def bearer_token(authorization: str | None) -> str:
    """The token of a ``Bearer`` authorization header (the scheme is case-insensitive);
    :class:`~numident.errors.Unauthenticated` ``MISSING_TOKEN`` when the header is missing,
    names another scheme or carries no token."""
    if not authorization:
        raise Unauthenticated("an Authorization: Bearer token is required",
                              code="MISSING_TOKEN")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'",
                              code="MISSING_TOKEN")
    return token.strip()
