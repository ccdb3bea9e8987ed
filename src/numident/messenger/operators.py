"""Which operator serves a number now, and how to reach the operators we have agreements with.

``OperatorLookup`` is the port the identification uses to route a number (SPEC rule 2): the
real adapter reads the numbering plan and the portability database (``RoutingLookup``); tests
use ``StaticLookup``. ``OperatorDirectory`` holds one ``GatewayClient`` per configured operator
(keyed by ИНН), built lazily over one ``httpx2.AsyncClient`` each, whose exchanges its
``health`` records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2

from numident.client.gateway import GatewayClient
from numident.client.keys import PrivateKey
from numident.config import OperatorEndpoint
from numident.core.clock import Clock
from numident.messenger.operator_health import MeasuredTransport, OperatorHealth

TransportFactory = Callable[[str], httpx2.AsyncBaseTransport]
"""Given an operator's ИНН, the transport to reach its gateway (tests: ``ASGITransport``)."""


@dataclass(frozen=True)
class Route:
    """The operator serving a number now; ``operator_inn`` None when nobody is known to."""

    phone_number: str
    operator_inn: str | None
    operator_name: str | None
    source: str
    region: str | None = None
    plan_range: str | None = None
    """The numbering plan's range that lists the number (``+79165550000-+79165559999``), or
    None when the plan lists it in none."""

    @property
    def is_mobile(self) -> bool:
        """The plan lists the number in a Russian mobile (DEF 9xx) range."""
        return self.plan_range is not None and self.phone_number.startswith("+79")


class OperatorLookup(Protocol):
    def route(self, phone_number: str) -> Route:
        """Route an E.164 number (already normalised) to its current operator."""
        ...

    def route_many(self, phone_numbers: Sequence[str]) -> list[Route]:
        """Route many E.164 numbers at once (bulk identification), in order."""
        ...


class StaticLookup:
    """Routes by the longest matching number prefix: ``{"+7916": ("7707083893", "MTS")}``."""

    def __init__(self, prefixes: Mapping[str, tuple[str, str]]) -> None:
        self._prefixes = sorted(prefixes.items(), key=lambda item: -len(item[0]))

    def route(self, phone_number: str) -> Route:
        for prefix, (inn, name) in self._prefixes:
            if phone_number.startswith(prefix):
                return Route(phone_number, inn, name, "plan", plan_range=prefix)
        return Route(phone_number, None, None, "none")

    def route_many(self, phone_numbers: Sequence[str]) -> list[Route]:
        return [self.route(number) for number in phone_numbers]


class RoutingLookup:
    """Adapter of ``numident.routing.RoutingService`` (numbering plan + portability)."""

    def __init__(self, service: Any) -> None:
        self._service = service

    def route(self, phone_number: str) -> Route:
        return _route(self._service.route(phone_number))

    def route_many(self, phone_numbers: Sequence[str]) -> list[Route]:
        return [_route(result) for result in self._service.route_e164(phone_numbers)]


def _route(result: Any) -> Route:
    operator = result.operator
    bounds = result.plan_range
    plan_range = None if bounds is None else f"+7{bounds[0]}-+7{bounds[1]}"
    if operator is None:
        return Route(result.phone_number, None, None, str(result.source), result.region,
                     plan_range)
    return Route(result.phone_number, str(operator.key), str(operator.name),
                 str(result.source), result.region, plan_range)


class OperatorDirectory:
    """The operators of ``endpoints`` and a lazily built ``GatewayClient`` for each."""

    def __init__(self, endpoints: Iterable[OperatorEndpoint], *, client_id: str,
                 key: PrivateKey, clock: Clock, timeout: float,
                 transport_for_operator: TransportFactory | None = None,
                 health: OperatorHealth | None = None) -> None:
        self.health = health or OperatorHealth(clock)
        self._endpoints = {e.inn: e for e in endpoints}
        self._client_id = client_id
        self._key = key
        self._clock = clock
        self._timeout = timeout
        self._transports = transport_for_operator
        self._clients: dict[str, GatewayClient] = {}
        self._http: list[httpx2.AsyncClient] = []

    @property
    def endpoints(self) -> Mapping[str, OperatorEndpoint]:
        return self._endpoints

    def client(self, inn: str) -> GatewayClient | None:
        """The client of operator ``inn``, or None when no endpoint is configured for it."""
        if inn in self._clients:
            return self._clients[inn]
        endpoint = self._endpoints.get(inn)
        if endpoint is None:
            return None
        inner = (self._transports(inn) if self._transports is not None
                 else httpx2.AsyncHTTPTransport())
        http = httpx2.AsyncClient(transport=MeasuredTransport(inner, inn, self.health),
                                  timeout=self._timeout, follow_redirects=False)
        self._http.append(http)
        client = GatewayClient(endpoint.gateway_url, endpoint.client_id or self._client_id,
                               self._key, http=http, clock=self._clock,
                               token_url=endpoint.token_url)
        self._clients[inn] = client
        return client

    async def aclose(self) -> None:
        for http in self._http:
            await http.aclose()
        self._http.clear()
        self._clients.clear()
