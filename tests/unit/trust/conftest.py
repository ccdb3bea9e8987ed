"""Fixtures for the trust tests: a fake clock and one key of each supported kind."""

from __future__ import annotations

import pytest

from numident.client.keys import KeyKind, PrivateKey, generate_key
from numident.core.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["Ed25519", "ES256"])
def key(request: pytest.FixtureRequest) -> PrivateKey:
    """A fresh key pair, once Ed25519 and once ES256 (P-256)."""
    kind: KeyKind = request.param
    return generate_key(kind)
