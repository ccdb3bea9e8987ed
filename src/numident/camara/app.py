"""Mount the CAMARA APIs on the gateway and serve each one's OpenAPI document."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from numident import __version__


@dataclass(frozen=True)
class CamaraApi:
    """One API as served: its CAMARA name and version, its root path and its router."""

    title: str
    name: str
    version: str
    router: APIRouter

    @property
    def root(self) -> str:
        return f"/{self.name}/{self.version}"


def served_apis() -> list[CamaraApi]:
    """Every CAMARA API the gateway serves, in the order of the README's table."""
    from numident.camara import (
        kyc_match,
        number_recycling,
        number_verification,
        sim_swap,
        sim_swap_subscriptions,
        tenure,
    )

    return [
        CamaraApi("Number Verification", "number-verification", number_verification.VERSION,
                  number_verification.router),
        CamaraApi("Number Recycling", "number-recycling", number_recycling.VERSION,
                  number_recycling.router),
        CamaraApi("SIM Swap", "sim-swap", sim_swap.VERSION, sim_swap.router),
        CamaraApi("Sim Swap Subscriptions", "sim-swap-subscriptions",
                  sim_swap_subscriptions.VERSION, sim_swap_subscriptions.router),
        CamaraApi("KYC Tenure", "kyc-tenure", tenure.VERSION, tenure.router),
        CamaraApi("Know Your Customer Match", "kyc-match", kyc_match.VERSION, kyc_match.router),
    ]


def install_camara(app: FastAPI) -> None:
    for api in served_apis():
        app.include_router(api.router)
        _serve_document(app, api)


def _serve_document(app: FastAPI, api: CamaraApi) -> None:
    document: dict[str, object] = {}

    @app.get(f"{api.root}/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        if not document:
            document.update(get_openapi(
                title=f"{api.title} (numident {__version__})", version=api.version,
                routes=api.router.routes, openapi_version="3.1.0"))
        return JSONResponse(document)
