"""Every released CAMARA version is served beside the WIP one, from one implementation.

Each version has its own root and OpenAPI document; versions an operator switches off, and
versions that do not exist, are 404 with the CAMARA error body naming the versions served.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from operator_harness import ADMIN, Harness, HarnessFactory

from numident.camara.releases import CATALOGUE
from numident.config import load_settings
from numident.core.clock import FakeClock
from numident.errors import ConfigurationError

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SWAPPED, QUIET = "+79161234567", "+79031112233"
SIM_SWAP = ["sim-swap:check", "sim-swap:retrieve-date"]
EXPORT = f"""phone_number,contract_id,status,activated_at
{SWAPPED},C-1,active,2021-03-01
{QUIET},C-2,active,2021-03-01
"""
VERSIONS = [(api.name, release.segment, release.version)
            for api in CATALOGUE for release in api.releases]


async def sim_swap_gateway(make_gateway: HarnessFactory, **camara: Any) -> Harness:
    h: Harness = await make_gateway(register=False, clock=FakeClock(NOW), camara=camara)
    h.register("bank", scopes=SIM_SWAP)
    h.import_csv(EXPORT)
    response = await h.client.post("/admin/v1/events", headers=ADMIN, json={
        "type": "sim_swapped", "phoneNumber": SWAPPED,
        "occurredAt": (NOW - timedelta(hours=5)).isoformat()})
    assert response.status_code == 201, response.text
    return h


async def headers(h: Harness) -> dict[str, str]:
    token = await h.token("bank", " ".join(SIM_SWAP))
    return {"Authorization": f"Bearer {token}", "x-correlator": "v-1"}


@pytest.mark.parametrize(("name", "segment", "version"), VERSIONS,
                         ids=[f"{n}/{s}" for n, s, _ in VERSIONS])
async def test_every_version_serves_its_own_document(
        make_gateway: HarnessFactory, name: str, segment: str, version: str) -> None:
    """``/<api>/<segment>/openapi.json`` has the release's version and only its own paths."""
    h = await make_gateway()
    response = await h.client.get(f"/{name}/{segment}/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["version"] == version
    assert document["paths"]
    assert all(path.startswith(f"/{name}/{segment}/") for path in document["paths"])


async def test_sim_swap_v2_answers_as_the_wip_version(make_gateway: HarnessFactory) -> None:
    """The same line, the same answers, at /sim-swap/v2 and /sim-swap/vwip."""
    h = await sim_swap_gateway(make_gateway)
    auth = await headers(h)
    answers = {}
    for segment in ("v2", "vwip"):
        answers[segment] = [
            (r.status_code, r.json(), r.headers.get("x-correlator")) for r in [
                await h.client.post(f"/sim-swap/{segment}/check", headers=auth,
                                    json={"phoneNumber": SWAPPED, "maxAge": 6}),
                await h.client.post(f"/sim-swap/{segment}/check", headers=auth,
                                    json={"phoneNumber": QUIET, "maxAge": 6}),
                await h.client.post(f"/sim-swap/{segment}/retrieve-date", headers=auth,
                                    json={"phoneNumber": SWAPPED})]]
    assert answers["v2"] == [(200, {"swapped": True}, "v-1"), (200, {"swapped": False}, "v-1"),
                             (200, {"latestSimChange": "2026-03-01T07:00:00Z"}, "v-1")]
    assert answers["v2"] == answers["vwip"]


async def test_an_unknown_version_is_404_naming_the_versions_served(
        make_gateway: HarnessFactory) -> None:
    """``/sim-swap/v9/check`` is the CAMARA 404 body, whose message lists v2 and vwip."""
    h = await sim_swap_gateway(make_gateway)
    response = await h.client.post("/sim-swap/v9/check", headers=await headers(h),
                                   json={"phoneNumber": SWAPPED})
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"status", "code", "message"}
    assert (body["status"], body["code"]) == (404, "NOT_FOUND")
    assert "v2, vwip" in body["message"]
    assert "v9" in body["message"]


async def test_a_switched_off_version_is_not_served(make_gateway: HarnessFactory) -> None:
    """With ``disabled_versions = ["sim-swap/v2"]`` v2's operations and document are 404, and
    the message names vwip only; vwip and the other APIs' releases are still served."""
    h = await sim_swap_gateway(make_gateway, disabled_versions=["sim-swap/v2"])
    auth = await headers(h)
    off = await h.client.post("/sim-swap/v2/check", headers=auth, json={"phoneNumber": SWAPPED})
    assert off.status_code == 404
    assert off.json()["code"] == "NOT_FOUND"
    assert "served at versions vwip," in off.json()["message"]
    assert (await h.client.get("/sim-swap/v2/openapi.json")).status_code == 404
    on = await h.client.post("/sim-swap/vwip/check", headers=auth,
                             json={"phoneNumber": SWAPPED})
    assert (on.status_code, on.json()) == (200, {"swapped": True})
    assert (await h.client.get("/sim-swap-subscriptions/v0.3/openapi.json")).status_code == 200


async def test_the_gateway_document_lists_each_api_once_at_its_last_served_version(
        make_gateway: HarnessFactory) -> None:
    """The gateway's own document keeps unique operation ids: vwip, or the release when vwip
    is switched off."""
    h = await make_gateway(camara={"disabled_versions": ["kyc-match/vwip"]})
    paths = (await h.client.get("/openapi.json")).json()["paths"]
    assert "/sim-swap/vwip/check" in paths
    assert "/sim-swap/v2/check" not in paths
    assert "/kyc-match/v0.4/match" in paths
    assert "/kyc-match/vwip/match" not in paths


def test_an_unknown_version_in_the_configuration_is_refused_naming_the_key() -> None:
    """A typo in ``disabled_versions`` stops the start with the key and the known names."""
    with pytest.raises(ConfigurationError) as refused:
        load_settings(None, operator={"camara": {"disabled_versions": ["sim-swap/v3"]}})
    message = str(refused.value)
    assert "operator.camara.disabled_versions" in message
    assert "sim-swap/v3" in message
    assert "sim-swap/v2" in message
