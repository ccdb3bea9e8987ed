"""Which sinks the gateway may POST to: none inside the operator's own network (SSRF).

An organizer chooses a SIM swap subscription's sink and the gateway, from inside the
operator's network, POSTs to it. A sink whose host is, or resolves to, a loopback, private,
link-local, multicast, reserved, unspecified or otherwise non-global address (an IPv4 address
inside an IPv6 one counts as that IPv4 address) would turn the gateway into a way into that
network, so :class:`SinkGuard` refuses it: at creation (400 ``INVALID_SINK``) and again before
each delivery, since the name may resolve differently by then. A name that does not resolve
within :data:`RESOLVE_SECONDS` is refused too. ``operator.camara.sim_swap_private_sinks``
turns the check off (loopback tests, demos, deployments whose organizers are inside).

The check resolves the name and the HTTP client then resolves it again to connect, so a name
whose answers change between the two (DNS rebinding, short TTLs) can still reach an internal
address in that window. An operator closes it outside the process: by sending the gateway's
egress through a proxy that refuses internal destinations (``HTTPS_PROXY``, which the
gateway's HTTP client honours), or by a firewall rule that lets the gateway's hosts open
outbound connections only to global addresses.
"""

from __future__ import annotations

import concurrent.futures
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from urllib.parse import urlsplit

RESOLVE_SECONDS = 5.0
_NAT64 = int(IPv6Address("64:ff9b::"))

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
"""``resolve(host, port)``: the addresses ``host`` resolves to, as text; raises OSError when
it resolves to none."""


def resolve_with_system(host: str, port: int) -> list[str]:
    """The host's addresses by ``socket.getaddrinfo`` (what the HTTP client connects to)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def forbidden_kind(address: IPAddress) -> str | None:
    """Why a sink may not have ``address`` (``"loopback"``, ``"private"``...), or None."""
    embedded = _embedded_ipv4(address) if isinstance(address, IPv6Address) else None
    if embedded is not None:
        return forbidden_kind(embedded)
    kinds = (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
             ("link-local", address.is_link_local), ("multicast", address.is_multicast),
             ("private", address.is_private), ("reserved", address.is_reserved),
             ("not global", not address.is_global))
    return next((kind for kind, is_it in kinds if is_it), None)


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or NAT64 (64:ff9b::/96) address reaches."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if int(address) >> 32 == _NAT64 >> 32:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class SinkGuard:
    """Refuses sinks in the operator's network unless ``private_allowed``."""

    private_allowed: bool = False
    resolve: Resolver = field(default=resolve_with_system, repr=False)
    timeout: float = RESOLVE_SECONDS

    def refusal(self, url: str) -> str | None:
        """Why events may not be POSTed to ``url`` (an absolute http(s) URL), or None.

        Blocking (it may resolve the host, for at most ``timeout`` seconds): call it from a
        worker thread, never on the event loop.
        """
        if self.private_allowed:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            addresses = [ip_address(host)]
        except ValueError:
            found = self._resolved(host, parts.port or (443 if parts.scheme == "https" else 80))
            if isinstance(found, str):
                return found
            addresses = found
        for address in addresses:
            kind = forbidden_kind(address)
            if kind is not None:
                shown = host if str(address) == host else f"{host} resolves to {address}"
                return f"{shown}, a {kind} address"
        return None

    def _resolved(self, host: str, port: int) -> list[IPAddress] | str:
        """The host's addresses, or why there are none to check."""
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sink-resolve")
        try:
            texts = pool.submit(self.resolve, host, port).result(self.timeout)
        except concurrent.futures.TimeoutError:
            return f"{host} did not resolve within {self.timeout:g} s"
        except (OSError, UnicodeError) as exc:
            return f"{host} does not resolve ({exc})"
        finally:
            pool.shutdown(wait=False)  # a resolution past the timeout ends on its own
        addresses = []
        for text in texts:
            try:
                addresses.append(ip_address(text))
            except ValueError:
                return f"{host} resolves to {text!r}, which is not an address"
        return addresses or f"{host} resolves to no address"
