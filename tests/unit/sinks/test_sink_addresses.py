"""Which sinks are refused as inside the operator's network, with a resolver that is a table."""

from __future__ import annotations

import time
from collections.abc import Sequence
from ipaddress import ip_address

import pytest

from numident.sinks.addresses import SinkGuard, forbidden_kind

NAMES = {"sink.bank.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
         "intranet.bank.example": ["93.184.215.14", "10.1.2.3"],
         "empty.example": []}


def table(host: str, port: int) -> Sequence[str]:
    if host not in NAMES:
        raise OSError(-2, "Name or service not known")
    return NAMES[host]


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.0.0.1", "private"),
    ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"), ("::", "unspecified"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, not a binding
    ("100.64.0.1", "not global"), ("::ffff:10.0.0.1", "private"),
    ("2002:7f00:1::", "loopback"), ("64:ff9b::a9fe:a9fe", "link-local"),
    ("93.184.215.14", None), ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
    ("64:ff9b::5db8:d70e", None)])
def test_an_address_is_forbidden_unless_it_is_global(address: str, kind: str | None) -> None:
    assert forbidden_kind(ip_address(address)) == kind


@pytest.mark.parametrize(("sink", "refusal"), [
    ("https://sink.bank.example/events", None),
    ("https://93.184.215.14:8443/events", None),
    ("https://[::1]:8443/events", "::1, a loopback address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254, a link-local address"),
    ("https://intranet.bank.example/events",
     "intranet.bank.example resolves to 10.1.2.3, a private address"),
    ("https://nowhere.example/events",
     "nowhere.example does not resolve ([Errno -2] Name or service not known)"),
    ("https://empty.example/events", "empty.example resolves to no address")])
def test_a_sink_is_refused_when_any_of_its_addresses_is_forbidden(
        sink: str, refusal: str | None) -> None:
    assert SinkGuard(resolve=table).refusal(sink) == refusal


def test_private_sinks_when_allowed_are_not_even_resolved() -> None:
    def unreachable(host: str, port: int) -> Sequence[str]:
        raise AssertionError("resolved")

    guard = SinkGuard(private_allowed=True, resolve=unreachable)
    assert guard.refusal("https://intranet.bank.example/events") is None
    assert guard.refusal("https://127.0.0.1/events") is None


def test_a_resolution_that_takes_too_long_is_a_refusal_without_waiting_for_it() -> None:
    def slow(host: str, port: int) -> Sequence[str]:
        time.sleep(1.0)
        return ["93.184.215.14"]

    started = time.monotonic()
    refusal = SinkGuard(resolve=slow, timeout=0.05).refusal("https://slow.example/")
    assert refusal == "slow.example did not resolve within 0.05 s"
    assert time.monotonic() - started < 0.5


def test_the_default_port_of_the_scheme_is_resolved() -> None:
    asked: list[tuple[str, int]] = []

    def recording(host: str, port: int) -> Sequence[str]:
        asked.append((host, port))
        return ["93.184.215.14"]

    guard = SinkGuard(resolve=recording)
    for sink in ("https://a.example/", "http://a.example/", "https://a.example:8443/"):
        assert guard.refusal(sink) is None
    assert asked == [("a.example", 443), ("a.example", 80), ("a.example", 8443)]
