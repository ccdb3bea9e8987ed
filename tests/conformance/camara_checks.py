"""The step definitions that wait for and check what the gateway did: the response, its
headers and body, and the CloudEvents the SIM swap subscriptions push to the sink.

Like :mod:`camara_steps` (the requests), each definition accepts any keyword, and sentences
with a common subject pick their check from an ordered table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from camara_assets import SIM_SWAP_MONITORED_DAYS
from camara_bodies import find_key, get_path, split_path
from camara_context import Scenario
from camara_steps import LITERAL, normal, rfc3339
from pytest_bdd import parsers, step

# -- subscriptions and their events -----------------------------------------------------------

@step(parsers.re(r'(?:a subscription is existing and identified by an "id"|at least one '
                 r"subscription is existing for the API client making this request|a "
                 r"subscription is existing for a phoneNumber)"))
def existing_subscription(ctx: Scenario) -> None:
    ctx.create_subscription()


@step(parsers.re(r"no subscription is existing for a phoneNumber"))
def no_subscription(ctx: Scenario) -> None:
    ctx.line = ctx.gateway.assets.unsubscribed


@step(parsers.re(r"subcriptionId is provided"))
def subscription_id_given(ctx: Scenario) -> None:
    ctx.subscription_id = str(ctx.json()["id"])
    assert ctx.subscription_id


@step(parsers.re(r"(?:sims swap is performed on this mobile line|the sim of the device was "
                 r"swapped)"))
def perform_swap(ctx: Scenario) -> None:
    ctx.exchange()
    number = find_key(ctx.subscription_body, "phoneNumber")
    ctx.swap_time = datetime.now(UTC).replace(microsecond=0)
    ctx.gateway.client.admin_call("POST", "/admin/v1/events", {
        "type": "sim_swapped", "phoneNumber": number, "occurredAt": ctx.swap_time.isoformat()})


@step(parsers.re(r"(?:The callback notification application receives (?P<a>[\w-]+) event at "
                 r'provided callbackUrl|event notification "(?P<b>[\w-]+)" is received on '
                 r"callback-url)"))
def notification_received(ctx: Scenario, a: str | None, b: str | None) -> None:
    kind = a or b
    ctx.exchange()
    wanted = ctx.subscription_id
    ctx.notification = ctx.gateway.sink.wait_for(
        lambda e: str(e.get("type", "")).endswith(f".{kind}")
        and (e.get("data") or {}).get("subscriptionId") == wanted)


@step(parsers.re(r'notification body complies with the OAS schema at "(?P<pointer>[^"]+)"'))
def notification_complies(ctx: Scenario, pointer: str) -> None:
    assert ctx.notification is not None, "no notification was received"
    problems = ctx.document.errors(ctx.notification, ctx.document.schema_at(pointer))
    assert not problems, f"{ctx.notification} breaks {pointer}: {problems}"


@step(parsers.re(r'(?P<field>type|data\.[\w.]+)="(?P<value>[^"]*)"'))
def notification_field(ctx: Scenario, field: str, value: str) -> None:
    """A field of the notification; a ``$.x`` value is the subscription request's ``x``."""
    assert ctx.notification is not None, "no notification was received"
    expected: Any = value
    if value.startswith("$."):
        expected = find_key(ctx.subscription_body, split_path(value)[-1])
    assert get_path(ctx.notification, field) == expected, ctx.notification


@step(parsers.re(r"data.subscriptionId is valued with the subcriptionId"))
def notification_subscription(ctx: Scenario) -> None:
    assert ctx.notification is not None
    assert ctx.notification["data"]["subscriptionId"] == ctx.subscription_id


@step(parsers.re(r"time is valued by the date time of (?P<what>subscription termination|the sim "
                 r"swap)"))
def notification_time(ctx: Scenario, what: str) -> None:
    assert ctx.notification is not None
    assert ctx.sent is not None
    time = rfc3339(ctx.notification["time"])
    if what == "the sim swap":
        assert time == ctx.swap_time, f"{time} is not the swap's {ctx.swap_time}"
    else:
        assert ctx.received_at is not None
        low, high = ctx.sent.at - timedelta(seconds=1), ctx.received_at + timedelta(seconds=1)
        assert low <= time <= high, f"{time} is not between {low} and {high}"


@step(parsers.re(r"(?P<names>[\w., ]+) are present with provided value"))
def echoed(ctx: Scenario, names: str) -> None:
    assert ctx.sent is not None
    response = ctx.json()
    for name in re.split(r",\s*|\s+and\s+", names):
        assert get_path(response, name) == get_path(ctx.sent.body, name), name


@step(parsers.re(r"startsAt is valued with a datetime corresponding to the date time of the "
                 r"response"))
def starts_at(ctx: Scenario) -> None:
    starts = rfc3339(ctx.json()["startsAt"])
    assert ctx.sent is not None
    assert ctx.received_at is not None
    assert ctx.sent.at - timedelta(seconds=1) <= starts <= ctx.received_at + timedelta(seconds=1)


@step(parsers.re(r"subscription\(s\) is/are listed"))
def listed(ctx: Scenario) -> None:
    ids = [item["id"] for item in ctx.json()]
    assert ctx.subscription_id in ids, f"{ctx.subscription_id} not in {ids}"


@step(parsers.re(r"the subscriptions for this phoneNumber are listed"))
def listed_for_line(ctx: Scenario) -> None:
    items = ctx.json()
    assert ctx.subscription_id in [item["id"] for item in items]
    for item in items:
        number = item.get("config", {}).get("subscriptionDetail", {}).get("phoneNumber")
        assert number in (None, ctx.line.number), item


@step(parsers.re(r"the response body is an empty list"))
def empty_list(ctx: Scenario) -> None:
    assert ctx.json() == []


# -- the response -----------------------------------------------------------------------------

@step(parsers.re(r'the response (?:status )?code is "?(?P<status>\d{3})"?'))
def status_code(ctx: Scenario, status: str) -> None:
    response = ctx.exchange()
    assert response.status_code == int(status), f"{response.status_code} {response.text}"


@step(parsers.re(r'the response header "(?P<name>[^"]+)" is "(?P<value>[^"]*)"'))
def response_header(ctx: Scenario, name: str, value: str) -> None:
    """For ``Content-Type`` the media type counts; a response the API declares without a body
    (``204``) must then have none (see :meth:`Scenario.declares_no_content`)."""
    response = ctx.exchange()
    if name.lower() == "content-type" and ctx.declares_no_content():
        assert not response.content, response.content
        return
    actual = response.headers.get(name, "")
    if name.lower() == "content-type":
        actual = actual.split(";")[0].strip()
    assert actual == value, f"{name}: {actual!r}"


@step(parsers.re(r'the response header "(?P<name>[^"]+)" has same value as the request header '
                 r'"(?P<request_name>[^"]+)"'))
def echoed_header(ctx: Scenario, name: str, request_name: str) -> None:
    response = ctx.exchange()
    assert ctx.sent is not None
    assert response.headers.get(name) == ctx.sent.headers[request_name]


@step(parsers.re(r'the response body complies with the OAS schema at "(?P<pointer>[^"]+)"'))
def body_complies(ctx: Scenario, pointer: str) -> None:
    if ctx.declares_no_content():
        assert not ctx.exchange().content
        return
    problems = ctx.document.errors(ctx.json(), ctx.document.schema_at(pointer))
    assert not problems, f"{ctx.json()} breaks {pointer}: {problems}"


@step(parsers.re(r'the response body complies with an array of OAS schema defined at '
                 r'"(?P<pointer>[^"]+)"'))
def array_complies(ctx: Scenario, pointer: str) -> None:
    located = ctx.document.schema_at(pointer)
    items = ctx.json()
    assert isinstance(items, list), items
    for item in items:
        problems = ctx.document.errors(item, located)
        assert not problems, f"{item} breaks {pointer}: {problems}"


def is_literal(ctx: Scenario, path: str, m: re.Match[str]) -> None:
    """``$.status is 201`` speaks of the HTTP status (a subscription's body ``status`` is
    its state, a 204 has no body); an error body's ``status`` must say the same."""
    expected = json.loads(m["literal"])
    if path == "$.status" and isinstance(expected, int):
        response = ctx.exchange()
        assert response.status_code == expected, f"{response.status_code} {response.text}"
        document = response.json() if response.content and ctx.notification is None else None
        if isinstance(document, dict) and isinstance(document.get("status"), int):
            assert document["status"] == expected
        return
    actual = ctx.property(path)
    assert actual == expected, f"{path} is {actual!r}"
    assert type(actual) is type(expected), f"{path} is {actual!r}"


def friendly(ctx: Scenario, path: str, m: re.Match[str]) -> None:
    text = ctx.property(path)
    assert isinstance(text, str), text
    assert re.search(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}", text), text


def equals_text(ctx: Scenario, path: str, m: re.Match[str]) -> None:
    assert ctx.property(path) == m["value"], f"{path} is {ctx.property(path)!r}"


def in_range(ctx: Scenario, path: str, m: re.Match[str]) -> None:
    value = ctx.property(path)
    assert type(value) is int, value
    assert int(m["low"]) <= value <= int(m["high"]), value


def device_number(ctx: Scenario, path: str, m: re.Match[str]) -> None:
    assert ctx.auth.kind in ("line", "valid")
    assert ctx.property(path) == (ctx.auth.number or ctx.line.number)


def valid_timestamp(ctx: Scenario, path: str, m: re.Match[str]) -> None:
    """A timestamp with a time zone: the asset's swap time."""
    assert rfc3339(ctx.property(path)) == ctx.gateway.assets.swap_time(ctx.line)


def activation(ctx: Scenario, path: str, m: re.Match[str]) -> None:
    assert rfc3339(ctx.property(path)) == ctx.line.activated_at


RESPONSE_PROPERTY: list[tuple[str, Callable[[Scenario, str, re.Match[str]], None]]] = [
    (rf"(?:is|==) {LITERAL}", is_literal),
    (r'is "(?P<value>[^"]*)"', equals_text),
    (r'is equal to "(?P<value>[^"]*)"', equals_text),
    (r"contains a user friendly text", friendly),
    (r"is equal to an integer value between (?P<low>\d+) and (?P<high>\d+)", in_range),
    (r"is equal to the phone number associated with the access token", device_number),
    (r"contains a valid timestamp", valid_timestamp),
    (r"contains the sim's activation timestamp", activation),
]


@step(parsers.re(r'(?:the value of response property|the response property) "(?P<path>[^"]+)" '
                 r"(?P<rest>.+)"))
def response_property(ctx: Scenario, path: str, rest: str) -> None:
    for pattern, action in RESPONSE_PROPERTY:
        match = re.fullmatch(pattern, rest)
        if match:
            action(ctx, normal(path), match)
            return
    raise AssertionError(f"no step definition understands the response phrase {rest!r}")


@step(parsers.re(r'the response contains the property "(?P<path>[^"]+)"'))
def contains_property(ctx: Scenario, path: str) -> None:
    ctx.property(path)


@step(parsers.re(r'the response optionally contains the property "(?P<path>[^"]+)" with the '
                 r"value of monitored time frame \(in days\) supported by the MNO"))
def monitored_period(ctx: Scenario, path: str) -> None:
    document = ctx.json()
    key = split_path(path)[-1]
    if key in document:
        assert document[key] == SIM_SWAP_MONITORED_DAYS, document


@step(parsers.re(r'if the response contains property "(?P<path>[^"]+)", the value is one of '
                 r"(?P<values>\[.*\])"))
def one_of(ctx: Scenario, path: str, values: str) -> None:
    document = ctx.json()
    key = split_path(path)[-1]
    if key in document:
        assert document[key] in json.loads(values), document


@step(parsers.re(r"the correspondent score property, if exists, is not returned"))
def no_score(ctx: Scenario) -> None:
    assert ctx.last_property is not None
    score = split_path(ctx.last_property)[-1] + "Score"
    assert score not in ctx.json(), ctx.json()
