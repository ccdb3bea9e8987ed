"""Bad input: schemathesis against every CAMARA API version the gateway serves.

For each API version of :func:`numident.camara.app.served_apis` schemathesis generates requests
from two documents: the OpenAPI document the gateway serves (``/{name}/{version}/openapi.json``)
and the official CAMARA YAML of that version (WIP or released; its ``../common`` references laid
out beside it), both sent to the gateway of that definition set with a valid token for each
operation. Every response must be free of server errors and comply with the document the
request was generated from. Examples are bounded so the whole run takes seconds: fewer for the
released versions, which share their implementation with WIP.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from camara_context import DEVICE_APIS
from camara_gateway import Gateways, RunningGateway
from camara_spec import DEFINITION_SETS, ApiDocument, DefinitionSet, api_documents
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from numident.camara.app import CamaraApi, served_apis

pytestmark = pytest.mark.conformance
EXAMPLES = {"wip": 15, "released": 5}
"""Examples per operation and mode, by definition set."""
CHECKS = [not_a_server_error, response_schema_conformance]


def official(api: CamaraApi) -> tuple[DefinitionSet, ApiDocument]:
    """The published document of the version, and its set."""
    found = [(definitions, d) for definitions in DEFINITION_SETS
             for d in api_documents(definitions.folder) if d.root == api.root]
    assert len(found) == 1, f"no official document is served at {api.root}"
    return found[0]


def bearer(gateway: RunningGateway, document: ApiDocument, operation_id: str) -> dict[str, str]:
    """A valid token for the operation: three-legged on the device APIs, else two-legged."""
    operation = document.operation(operation_id)
    assert operation is not None, f"{operation_id} is not an operation of {document.title}"
    scope = operation.scopes[0][0]
    client = gateway.client
    token = client.line_token(gateway.assets.long_held.number, scope) \
        if document.title in DEVICE_APIS else client.token(scope)
    return {"Authorization": f"Bearer {token}"}


def fuzz(schema: Any, base_url: str, headers_for: Callable[[str], dict[str, str]],
         examples: int) -> list[str]:
    """Run every operation of ``schema``; the failures found (one entry each)."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        raw = operation.definition.raw
        breakable = bool(raw.get("requestBody") or raw.get("parameters"))
        for mode in (GenerationMode.POSITIVE, *([GenerationMode.NEGATIVE] * breakable)):
            failures += fuzz_operation(operation, mode, base_url,
                                       lambda op=raw["operationId"]: headers_for(op), examples)
    return failures


def fuzz_operation(operation: Any, mode: GenerationMode, base_url: str,
                   headers: Callable[[], dict[str, str]], examples: int) -> list[str]:
    """``headers()`` is asked for each case: a Number Verification token serves one call."""
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers())
        try:
            case.validate_response(response, checks=CHECKS)
        except AssertionError as exc:
            failures.append(f"{operation.label} ({mode.value}): {exc}"[:2000])

    try:
        run()
    except Unsatisfiable:
        # A schema that admits every value (a path parameter of any string) has no negative
        # examples; schemathesis's own runner passes over them as well.
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid example"
    return failures


VERSIONS = served_apis()


@pytest.mark.parametrize("api", VERSIONS, ids=lambda api: api.root.lstrip("/"))
def test_the_served_document_holds_for_generated_requests(
        camara_gateways: Gateways, api: CamaraApi) -> None:
    """No 5xx, and every response as the gateway's own document says."""
    definitions, document = official(api)
    camara_gateway = camara_gateways[definitions]
    url = camara_gateway.client.url
    schema = schemathesis.openapi.from_url(f"{url}{api.root}/openapi.json")
    failures = fuzz(schema, url, lambda op: bearer(camara_gateway, document, op),
                    EXAMPLES[definitions.name])
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("api", VERSIONS, ids=lambda api: api.root.lstrip("/"))
def test_the_official_document_holds_for_generated_requests(
        camara_gateways: Gateways, api: CamaraApi, tmp_path: Path) -> None:
    """No 5xx, and every response as the published CAMARA YAML says."""
    definitions, document = official(api)
    camara_gateway = camara_gateways[definitions]
    (tmp_path / "api").mkdir()
    (tmp_path / "common").mkdir()
    for sibling in document.path.parent.glob("*.yaml"):
        shutil.copy(sibling, tmp_path / ("common" if sibling.stem.startswith("CAMARA")
                                         else "api") / sibling.name)
    schema = schemathesis.openapi.from_path(tmp_path / "api" / document.path.name)
    url = camara_gateway.client.url + document.root
    failures = fuzz(schema, url, lambda op: bearer(camara_gateway, document, op),
                    EXAMPLES[definitions.name])
    assert not failures, "\n\n".join(failures)
