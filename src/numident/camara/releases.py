"""The CAMARA API versions the gateway can serve: the catalogue, as plain data.

Each API is served under ``/<name>/<segment>`` for every release listed here, oldest first
and the work-in-progress version (``vwip``) last. Serving the next release of an API is adding
its definitions (the schemas and rules that differ, where the API's module keys them by
segment) and one :class:`Release` line below. An operator switches releases off with
``operator.camara.disabled_versions`` (``["kyc-match/v0.4", ...]``, names from this catalogue).

This module imports nothing but the standard library, so that the configuration can check the
names it is given against it.
"""

from __future__ import annotations

from dataclasses import dataclass

WIP = "vwip"


@dataclass(frozen=True)
class Release:
    """One published version: its path segment, its version string and where it comes from."""

    segment: str
    """The path segment (``v2``, ``v0.4``, ``vwip``): the major version, or major and minor
    while the major version is 0, as CAMARA names its server URLs."""
    version: str
    """The document's ``info.version`` (``2.1.0``, ``wip``)."""
    source: str
    """The API repository's release tag and commit (or the commit of the WIP definition)."""


@dataclass(frozen=True)
class Api:
    """One CAMARA API: its title, its path name and the releases it is served at."""

    title: str
    name: str
    releases: tuple[Release, ...]

    def release(self, segment: str) -> Release | None:
        return next((r for r in self.releases if r.segment == segment), None)


CATALOGUE: tuple[Api, ...] = (
    Api("Number Verification", "number-verification", (
        Release("v2", "2.1.0", "camaraproject/NumberVerification r3.2 5659864"),
        Release(WIP, "wip", "camaraproject/NumberVerification 5ad5660"),
    )),
    Api("Number Recycling", "number-recycling", (
        Release("v0.2", "0.2.0", "camaraproject/NumberRecycling r2.2 37afb6b"),
        Release(WIP, "wip", "camaraproject/NumberRecycling ee5eccd"),
    )),
    Api("SIM Swap", "sim-swap", (
        Release("v2", "2.1.0", "camaraproject/SimSwap r3.3 6008716"),
        Release(WIP, "wip", "camaraproject/SimSwap 4dd8194"),
    )),
    Api("Sim Swap Subscriptions", "sim-swap-subscriptions", (
        Release("v0.3", "0.3.0", "camaraproject/SimSwap r3.3 6008716"),
        Release(WIP, "wip", "camaraproject/SimSwap 4dd8194"),
    )),
    Api("KYC Tenure", "kyc-tenure", (
        Release("v0.2", "0.2.0", "camaraproject/Tenure r2.2 f3bf3bb"),
        Release(WIP, "wip", "camaraproject/Tenure 81c5522"),
    )),
    Api("Know Your Customer Match", "kyc-match", (
        Release("v0.4", "0.4.0", "camaraproject/KnowYourCustomerMatch r1.2 eaad6f6"),
        Release(WIP, "wip", "camaraproject/KnowYourCustomerMatch 7a5a9d4"),
    )),
)
"""Every API, in the order of the README's table."""


def version_names() -> list[str]:
    """Every ``<name>/<segment>`` of the catalogue (the values ``disabled_versions`` takes)."""
    return [f"{api.name}/{release.segment}" for api in CATALOGUE for release in api.releases]
