"""Mount the CAMARA APIs on the gateway, one router per served version, and their documents.

Every release of :data:`numident.camara.releases.CATALOGUE` that the operator has not switched
off (``operator.camara.disabled_versions``) is served under ``/<name>/<segment>``, from the
API module's one implementation: :func:`api_router` asks the module for the router of that
release (the module picks the release's schemas and rules). Each version serves its own
OpenAPI document at ``/<name>/<segment>/openapi.json`` (``info.version`` is the release's).
The gateway's own document lists each API once, at its last served release, so that its
operations keep unique ids.

A path under an API's name with a version it does not serve is 404 ``NOT_FOUND``, and the
message names the versions that are served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from numident import __version__
from numident.camara.releases import CATALOGUE, Api, Release
from numident.web.errors import explain_not_found
from numident.web.openapi import (
    correlated,
    errors_as_served,
    scopes_as_alternatives,
    served_at,
)


@dataclass(frozen=True)
class CamaraApi:
    """One API version as served: its CAMARA title and name, its release and its router."""

    title: str
    name: str
    release: Release
    router: APIRouter

    @property
    def version(self) -> str:
        return self.release.segment

    @property
    def root(self) -> str:
        return f"/{self.name}/{self.release.segment}"


def _module(name: str) -> ModuleType:
    from numident.camara import (
        kyc_match,
        number_recycling,
        number_verification,
        sim_swap,
        sim_swap_subscriptions,
        tenure,
    )

    modules = {"number-verification": number_verification, "number-recycling": number_recycling,
               "sim-swap": sim_swap, "sim-swap-subscriptions": sim_swap_subscriptions,
               "kyc-tenure": tenure, "kyc-match": kyc_match}
    return modules[name]


def api_router(api: Api, release: Release) -> APIRouter:
    """The routes of ``release`` of ``api``, under its root: the module's ``router_for(release)``
    where versions differ, else its one ``router``."""
    module = _module(api.name)
    factory: Callable[[Release], APIRouter] | None = getattr(module, "router_for", None)
    routes: APIRouter = factory(release) if factory is not None else module.router
    versioned = APIRouter(prefix=f"/{api.name}/{release.segment}")
    versioned.include_router(routes)
    return versioned


def served_apis(disabled: Iterable[str] = ()) -> list[CamaraApi]:
    """Every API version served (all of the catalogue but ``disabled``), in catalogue order."""
    off = set(disabled)
    return [CamaraApi(api.title, api.name, release, api_router(api, release))
            for api in CATALOGUE for release in api.releases
            if f"{api.name}/{release.segment}" not in off]


def install_camara(app: FastAPI, disabled: Iterable[str] = (), *, base_url: str) -> None:
    """Serve every enabled version, each with its document naming ``base_url`` as server."""
    served = served_apis(disabled)
    last = {api.name: api for api in served}
    for api in served:
        app.include_router(api.router, include_in_schema=last[api.name] is api)
        _serve_document(app, api, base_url)
    segments = {api.name: [s.version for s in served if s.name == api.name]
                for api in CATALOGUE}
    explain_not_found(app, lambda path: _unknown_version(segments, path))


def _unknown_version(segments: dict[str, list[str]], path: str) -> str | None:
    """The 404 message for a path under a CAMARA API's name that no served version has."""
    name, _, rest = path.lstrip("/").partition("/")
    if name not in segments:
        return None
    version = rest.partition("/")[0]
    served = segments[name]
    if not served:
        return f"{name} is not served by this gateway"
    if version in served:
        return f"{name} {version} has no operation at {path}"
    return (f"{name} is served at versions {', '.join(served)}, not "
            f"{version or 'without a version'}")


def _serve_document(app: FastAPI, api: CamaraApi, base_url: str) -> None:
    document: dict[str, object] = {}

    @app.get(f"{api.root}/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        if not document:
            document.update(get_openapi(
                title=f"{api.title} (numident {__version__})", version=api.release.version,
                routes=api.router.routes, openapi_version="3.1.0"))
            errors_as_served(document, "ErrorInfo")
            correlated(document)
            scopes_as_alternatives(document)
            served_at(base_url)(document)
        return JSONResponse(document)
