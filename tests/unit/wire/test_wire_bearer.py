"""The Bearer authorization header, read the same way by the gateway and the messenger."""

from __future__ import annotations

import pytest

from numident.errors import Unauthenticated
from numident.wire.bearer import bearer_token


@pytest.mark.parametrize("header", ["Bearer abc", "bearer abc", "BEARER  abc "])
def test_the_token_is_what_follows_the_scheme(header: str) -> None:
    """The scheme is case-insensitive; the token is trimmed."""
    assert bearer_token(header) == "abc"


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   "])
def test_no_bearer_token_is_missing_token(header: str | None) -> None:
    """No header, another scheme or no token: 401 MISSING_TOKEN."""
    with pytest.raises(Unauthenticated) as refused:
        bearer_token(header)
    assert refused.value.code == "MISSING_TOKEN"
