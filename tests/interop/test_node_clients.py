"""Node.js clients (node ``jose`` and ``oauth4webapi``, pinned in ``node/package-lock.json``)
discover the gateway, authenticate with ``private_key_jwt``, get a token and call the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from interop_gateway import LINE, Gateway, run_node
from joserfc.jwk import ECKey, OKPKey

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("kind", ["Ed25519", "P-256"])
def test_oauth4webapi_and_jose_get_tokens_and_read_the_jwks(gateway: Gateway, node: Path,
                                                            kind: str) -> None:
    """oauth4webapi: OpenID discovery with its issuer check, a client-credentials grant with
    ``private_key_jwt`` (audience: the issuer), the token on the API. jose: the remote JWKS
    verifies the access token, and its own assertion gets a token. A client the gateway does
    not know gets ``invalid_client`` as an OAuth error, not as a resource-server challenge."""
    key = OKPKey.generate_key("Ed25519") if kind == "Ed25519" else ECKey.generate_key("P-256")
    client = gateway.register(f"node-{kind.lower()}", key.as_dict(private=False))
    private = {**key.as_dict(private=True), "kid": key.thumbprint()}
    result = run_node(node, "clients.mjs", {"issuer": gateway.url, "clientId": client,
                                            "jwk": private, "line": LINE})
    assert result["issuer"] == gateway.url
    assert result["oauth4webapi"] == {"tokenType": "bearer", "scope": "identification",
                                      "expiresIn": 600}
    assert result["identification"] == {"status": 200, "result": "confirmed"}
    assert result["joseVerified"] == {"iss": gateway.url, "clientId": client,
                                      "alg": "Ed25519"}
    assert result["joseAssertion"] == {"status": 200, "tokenType": "Bearer",
                                       "alg": "EdDSA" if kind == "Ed25519" else "ES256"}
    assert result["refused"] == {"kind": "ResponseBodyError", "error": "invalid_client",
                                 "status": 401}
