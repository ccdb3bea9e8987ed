"""What the gateway's and the messenger's OpenAPI documents promise is what the servers do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from numident.config import load_settings
from numident.messenger.app import create_app as create_messenger
from numident.operator.app import create_app as create_gateway

Document = dict[str, Any]

GATEWAY_OPERATIONS = {
    ("post", "/identification/v1/requests"): "createIdentificationRequest",
    ("get", "/identification/v1/requests/{requestId}"): "getIdentificationRequest",
    ("post", "/identification/v1/requests/batch"): "createIdentificationBatch",
    ("delete", "/identification/v1/usages/{identificationCode}"): "withdrawUsage",
    ("post", "/oauth2/token"): "requestAccessToken",
    ("get", "/oauth2/authorize"): "authorize",
    ("post", "/oauth2/bc-authorize"): "requestBackchannelAuthentication",
    ("get", "/.well-known/oauth-authorization-server"): "getAuthorizationServerMetadata",
    ("get", "/.well-known/openid-configuration"): "getOpenIdConfiguration",
    ("post", "/admin/v1/events"): "recordLifecycleEvent",
    ("post", "/admin/v1/organizers"): "registerOrganizer",
    ("get", "/admin/v1/organizers/{name}/limits"): "getOrganizerLimits",
    ("put", "/admin/v1/organizers/{name}/limits"): "setOrganizerLimits",
    ("put", "/admin/v1/organizers/{name}/ciba"): "setOrganizerCibaDelivery",
    ("put", "/admin/v1/network-sessions/{sessionId}"): "putNetworkSession",
    ("delete", "/admin/v1/network-sessions/{sessionId}"): "deleteNetworkSession",
    ("get", "/admin/v1/sim-swap-subscriptions"): "listSimSwapSubscriptions",
    ("delete", "/admin/v1/sim-swap-subscriptions/{subscriptionId}"): "endSimSwapSubscription",
    ("get", "/admin/v1/notices"): "listNotices",
    ("post", "/admin/v1/notices/{noticeId}/retry"): "retryNotice",
}
MESSENGER_OPERATIONS = {
    ("put", "/messenger/v1/accounts/{accountId}/phone-number"): "setPhoneNumber",
    ("post", "/messenger/v1/accounts/{accountId}/phone-number/confirm"): "confirmPhoneNumber",
    ("get", "/messenger/v1/accounts/{accountId}"): "getAccount",
    ("post", "/messenger/v1/notices"): "receiveNotice",
}


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Document]]:
    home = tmp_path_factory.mktemp("openapi")
    settings = load_settings(None, home=str(home), database_url=f"sqlite:///{home}/db")
    gateway = create_gateway(settings, background=False)
    messenger = create_messenger(settings, background=False)
    try:
        yield {"gateway": gateway.openapi(), "messenger": messenger.openapi()}
    finally:
        gateway.state.gateway.engine.dispose()
        messenger.state.service.engine.dispose()


def operations(document: Document) -> Iterator[tuple[str, str, Document]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


@pytest.mark.parametrize(("side", "expected"), [("gateway", GATEWAY_OPERATIONS),
                                                ("messenger", MESSENGER_OPERATIONS)])
def test_own_operations_have_stable_meaningful_ids(documents: dict[str, Document], side: str,
                                                   expected: dict[tuple[str, str], str]) -> None:
    """Each of the service's own operations carries the operationId a generated client names
    its method by; none is the framework's generated ``<function>_<path>_<method>``."""
    found = {(m, p): o["operationId"] for m, p, o in operations(documents[side])
             if (m, p) in expected}
    assert found == expected
    ids = [o["operationId"] for _, _, o in operations(documents[side])]
    assert len(ids) == len(set(ids))
