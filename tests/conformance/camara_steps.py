"""The step definitions of every CAMARA feature, written once for all of them.

Steps are registered for any keyword (``Given``/``When``/``Then``): the features continue a
``When`` with ``And`` steps that build the request, and a ``Then`` with steps that act. Each
regular expression matches whole step texts and accepts the spellings the files use ("use
BaseURL"/"use BaseUrL", ``"403"``/``403``, ``$config.x``/``$.config.x``); sentences with a common
subject (``the request body property "..."``) are one step whose predicate picks the action from
an ordered table, so that no two definitions ever match the same text.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from camara_assets import HOLDER, OTHER_PERSON, SIM_SWAP_MONITORED_DAYS
from camara_bodies import (
    get_path,
    remove_path,
    set_path,
    split_path,
    violating,
)
from camara_context import MISSING, Auth, Scenario
from camara_spec import Located
from pytest_bdd import parsers, step

Action = Callable[[Scenario, re.Match[str]], None]
HASHED = ", hashed in SHA-256 (in hexadecimal representation)"
LITERAL = r"(?P<literal>-?\d+|true|false|null)"


def dispatch(table: list[tuple[str, Action]], ctx: Scenario, text: str) -> None:
    for pattern, action in table:
        match = re.fullmatch(pattern, text)
        if match:
            action(ctx, match)
            return
    raise AssertionError(f"no step definition understands {text!r}")


def rfc3339(value: Any) -> datetime:
    assert isinstance(value, str), f"{value!r} is not a timestamp"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value), \
        f"{value!r} is not an RFC 3339 date-time with a time zone"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def body(ctx: Scenario) -> dict[str, Any]:
    if not isinstance(ctx.body, dict):
        ctx.body = ctx.default_body()
    return ctx.body  # type: ignore[no-any-return]


def normal(path: str) -> str:
    return "$." + ".".join(split_path(path))


# -- environment, resource, headers -----------------------------------------------------------

@step(parsers.re(r'an environment at "(?P<name>[^"]+)"'))
def environment(ctx: Scenario, name: str) -> None:
    """The API root is the gateway's URL."""
    assert name == "apiRoot"
    assert ctx.gateway.client.url.startswith("http://127.0.0.1:")


@step(parsers.re(r'the resource "(?P<path>[^"]+)"(?: as (?:base url|BaseURL))?'))
def resource(ctx: Scenario, path: str) -> None:
    ctx.resource = path
    assert path.startswith(ctx.document.root), f"{path} is not under {ctx.document.root}"


@step(parsers.re(r"use [Bb]ase[Uu][Rr][Ll]"))
def use_base_url(ctx: Scenario) -> None:
    assert ctx.resource, "no resource was set as the base URL"


@step(parsers.re(r'the header "(?P<name>[^"]+)" is set to "(?P<value>[^"]*)"'))
def header_value(ctx: Scenario, name: str, value: str) -> None:
    ctx.headers[name] = value


@step(parsers.re(r'the header "(?P<name>[^"]+)" complies with the schema at "(?P<pointer>[^"]+)"'))
def header_complies(ctx: Scenario, name: str, pointer: str) -> None:
    value = ctx.correlator()
    assert not ctx.document.errors(value, ctx.document.schema_at(pointer))
    ctx.headers[name] = value


AUTHORIZATION: list[tuple[str, Action]] = [
    (r"is (?:not sent|removed)", lambda c, m: setattr(c, "auth", Auth("none"))),
    (r"is set to a valid access token", lambda c, m: setattr(c, "auth", Auth())),
    (r"is set to an expired access token", lambda c, m: setattr(c, "auth", Auth("expired"))),
    (r"is set to an invalid access token(?: which is invalid for reasons other than lifetime "
     r"expiry)?", lambda c, m: setattr(c, "auth", Auth("forged"))),
    (r"is set to an access token without the required scope",
     lambda c, m: setattr(c, "auth", Auth("wrong_scope"))),
    (r"is set to a valid access(?: token)? which does not identify a single phone number",
     lambda c, m: setattr(c, "auth", Auth("two_legged"))),
    (r"is set to a valid access token identifying a phone number",
     lambda c, m: setattr(c, "auth", Auth("line", c.line.number))),
    (r"is set to a valid access token emitted for a different phone number",
     lambda c, m: setattr(c, "auth", Auth("line", c.gateway.assets.new_holder.number))),
    (r"is set to a token for which neither Network-based nor SIM-based authentication was used",
     lambda c, m: setattr(c, "auth", Auth("line", c.line.number, "otp"))),
]


@step(parsers.re(r'the header "Authorization" (?P<rest>is (?:not sent|removed|set to a.*))'))
def authorization(ctx: Scenario, rest: str) -> None:
    dispatch(AUTHORIZATION, ctx, rest)


@step(parsers.re(r"the valid access token does no identified a device"))
def two_legged(ctx: Scenario) -> None:
    ctx.auth = Auth("two_legged")


@step(parsers.re(r"this phone number is identified by the token"))
def identified_by_token(ctx: Scenario) -> None:
    ctx.auth = Auth("line", ctx.line.number)


@step(parsers.re(r"the token has been obtained by a supported authentication method"))
def supported_authentication(ctx: Scenario) -> None:
    assert ctx.auth.kind in ("line", "valid")
    assert ctx.auth.authentication in ("network", "sim")


# -- the phone number -------------------------------------------------------------------------

@step(parsers.re(r"a valid (?:testing )?phone(?: n|N)umber(?: supported by the service)?,? "
                 r"identified by the (?:access )?token or provided in the request body"))
def line_in_body(ctx: Scenario) -> None:
    """Two-legged token, the number in the body (the features allow either)."""
    ctx.auth = Auth("two_legged")
    set_path(body(ctx), ctx.phone_path(), ctx.line.number)


@step(parsers.re(r"a valid (?:testing )?phone(?: n|N)umber supported by the service, "
                 r"identified by the token"))
def line_in_token(ctx: Scenario) -> None:
    ctx.auth = Auth("line", ctx.line.number)


@step(parsers.re(r"a valid phone number identified by the token and provided in the request "
                 r"body"))
def line_in_token_and_body(ctx: Scenario) -> None:
    ctx.auth = Auth("line", ctx.line.number)
    set_path(body(ctx), ctx.phone_path(), ctx.line.number)


@step(parsers.re(r"that the service is not available for all phone numbers commercialized by "
                 r"the operator"))
def some_lines_not_served(ctx: Scenario) -> None:
    assert ctx.gateway.assets.not_applicable.number.startswith("+7958")


@step(parsers.re(r"a valid phone number, identified by the token or provided in the request "
                 r"body, for which the service is not applicable"))
def not_applicable_line(ctx: Scenario) -> None:
    ctx.auth = Auth("two_legged")
    ctx.line = ctx.gateway.assets.not_applicable
    set_path(body(ctx), ctx.phone_path(), ctx.line.number)


# -- assets: what happened to the line --------------------------------------------------------

@step(parsers.re(r"the same phone number was cancelled by the User A and is used by User B"))
def recycled_line(ctx: Scenario) -> None:
    ctx.use_line(ctx.gateway.assets.recycled)


@step(parsers.re(r"the mobile subscription (?P<held>has|hasn't) had a valid tenure since the "
                 r"provided tenure date"))
def tenure(ctx: Scenario, held: str) -> None:
    assets = ctx.gateway.assets
    ctx.use_line(assets.long_held if held == "has" else assets.new_holder)
    start = ctx.line.activated_at
    assert start is not None
    assert (start.date().isoformat() <= body(ctx)["tenureDate"]) == (held == "has")


@step(parsers.re(r"the SIM for this phone number has been swapped"))
def swapped(ctx: Scenario) -> None:
    ctx.use_line(ctx.gateway.assets.swapped[23])


@step(parsers.re(r'the SIM for this phone number has been swapped in the last "?(?P<hours>\d+)"?'
                 r"(?: hours)?"))
def swapped_within(ctx: Scenario, hours: str) -> None:
    ctx.use_line(ctx.gateway.assets.swapped_within(int(hours)))


@step(parsers.re(r"the SIM for this phone number has been swapped more than (?P<hours>\d+) hours "
                 r"ago"))
def swapped_before(ctx: Scenario, hours: str) -> None:
    ctx.use_line(ctx.gateway.assets.swapped_before(int(hours)))


@step(parsers.re(r"the SIM for this phone number has been swapped before the limited history "
                 r"window threshold"))
def swapped_before_window(ctx: Scenario) -> None:
    ctx.use_line(ctx.gateway.assets.swapped[SIM_SWAP_MONITORED_DAYS * 24 + 2400])


@step(parsers.re(r"the SIM for this phone number has never been swapped"))
def never_swapped(ctx: Scenario) -> None:
    ctx.use_line(ctx.gateway.assets.never_swapped)


@step(parsers.re(r'the activation of the SIM occurred more than "?(?P<hours>\d+)"? hours ago'))
def activated_before(ctx: Scenario, hours: str) -> None:
    activated = ctx.line.activated_at
    assert activated is not None
    assert ctx.line.swapped_hours_ago is None
    assert ctx.gateway.assets.now - activated > timedelta(hours=int(hours))


@step(parsers.re(r"the last swap for this phone number's SIM was more than \"maxAge\" hours ago"))
def swap_older_than_max_age(ctx: Scenario) -> None:
    hours = ctx.line.swapped_hours_ago
    assert hours is not None
    assert hours > body(ctx)["maxAge"]


@step(parsers.re(r"the phone number is not associated to any sim card"))
def no_sim(ctx: Scenario) -> None:
    ctx.use_line(ctx.gateway.assets.no_sim)


@step(parsers.re(r'the "maxAge" request body property is set to a value equal or greater than '
                 r'"(?P<hours>\d+)" within the allowed range'))
def max_age_at_least(ctx: Scenario, hours: str) -> None:
    body(ctx)["maxAge"] = int(hours)


# -- the request body -------------------------------------------------------------------------

@step(parsers.re(r"the request body is set by default to a request body compliant with the "
                 r"schema"))
def default_body(ctx: Scenario) -> None:
    ctx.body = ctx.default_body()


@step(parsers.re(r"(?:the request body is set to a valid (?:request body|parameter combination)"
                 r"|a valid subscription request body)"))
def valid_body(ctx: Scenario) -> None:
    ctx.body = ctx.default_body()


@step(parsers.re(r"the request body is not included"))
def no_body(ctx: Scenario) -> None:
    ctx.body = MISSING


@step(parsers.re(r'the request body is set to "(?P<raw>[^"]*)"'))
def raw_body(ctx: Scenario, raw: str) -> None:
    ctx.body = json.loads(raw)


@step(parsers.re(r'the request body is set to any value which is not compliant with the OAS '
                 r'schema at "(?P<pointer>[^"]+)"'))
def non_compliant_body(ctx: Scenario, pointer: str) -> None:
    """A whole body breaking the schema, or (when the pointer names one property's schema)
    the default body with that property broken."""
    operation = ctx.body_operation
    located = ctx.document.schema_at(pointer, operation, else_request_body=True)
    request = ctx.document.request_located(operation)
    if ctx.document.merged(located).get("type", "object") == "object":
        ctx.body = invalid_value(ctx, request)
        return
    name = pointer.rsplit("/", 1)[-1]
    prop = name[0].lower() + name[1:]
    assert ctx.document.property_at(request, prop) is not None, f"{prop}: no such property"
    set_property(ctx, f"$.{prop}", invalid_value(ctx, located))


def invalid_value(ctx: Scenario, located: Located) -> Any:
    """A value the validator refuses for the schema."""
    candidates = [v for v in violating(ctx.document.merged(located), ctx.document.resolve)
                  if ctx.document.errors(v, located)]
    assert candidates, f"no value found that breaks {located[0]}"
    return candidates[0]


def set_property(ctx: Scenario, path: str, value: Any) -> None:
    set_path(body(ctx), path, value)
    ctx.last_property = path


def property_schema(ctx: Scenario, path: str) -> Located:
    """The schema of a request body property (``$.config.subscriptionDetail.phoneNumber``)."""
    located: Located | None = ctx.document.request_located(ctx.body_operation)
    for key in split_path(path):
        assert located is not None
        located = ctx.document.property_at(located, key)
    assert located is not None, f"the request body has no property {path}"
    return located


def future_day(ctx: Scenario, m: re.Match[str]) -> None:
    day = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    set_property(ctx, m["path"], day)


def literal(ctx: Scenario, m: re.Match[str]) -> None:
    set_property(ctx, m["path"], json.loads(m["literal"]))


def quoted(ctx: Scenario, m: re.Match[str]) -> None:
    value = m["value"]
    if re.fullmatch(r"<\w+>", value):  # an outline parameter without examples: a bad value
        set_property(ctx, m["path"], invalid_value(ctx, property_schema(ctx, m["path"])))
    else:
        set_property(ctx, m["path"], value)


def breaks_schema(ctx: Scenario, m: re.Match[str]) -> None:
    located = ctx.document.schema_at(m["pointer"], ctx.body_operation)
    key = split_path(m["path"])[-1]
    if ctx.document.property_at(located, key) is not None:  # the pointer names the body's
        located = property_schema(ctx, m["path"])
    set_property(ctx, m["path"], invalid_value(ctx, located))


def stored_value(ctx: Scenario, m: re.Match[str]) -> None:
    key = split_path(m["path"])[-1]
    assert key in ctx.line.holder, f"the line holds no {key}"
    set_property(ctx, m["path"], ctx.line.holder[key])
    assert not ctx.document.errors(ctx.line.holder[key], property_schema(ctx, m["path"]))


def other_persons_value(ctx: Scenario, m: re.Match[str]) -> None:
    key = split_path(m["path"])[-1]
    assert OTHER_PERSON[key] != ctx.line.holder.get(key)
    set_property(ctx, m["path"], OTHER_PERSON[key])
    assert not ctx.document.errors(OTHER_PERSON[key], property_schema(ctx, m["path"]))


def hashed_valid(ctx: Scenario, m: re.Match[str]) -> None:
    value = hashlib.sha256(ctx.line.number.encode()).hexdigest()
    located = ctx.document.schema_at(m["pointer"], ctx.body_operation)
    assert not ctx.document.errors(value, located), f"{value} breaks {m['pointer']}"
    set_property(ctx, m["path"], value)


def max_age_beyond_history(ctx: Scenario, m: re.Match[str]) -> None:
    hours = SIM_SWAP_MONITORED_DAYS * 24 + 24
    schema = ctx.document.merged(property_schema(ctx, m["path"]))
    assert hours <= schema["maximum"], "the monitored period is longer than maxAge allows"
    set_property(ctx, m["path"], hours)


def since_last_swap(ctx: Scenario, m: re.Match[str]) -> None:
    ctx.use_line(ctx.gateway.assets.swapped[48])
    set_property(ctx, m["path"], 48 - 1)


def not_a_line(ctx: Scenario, m: re.Match[str]) -> None:
    set_property(ctx, m["path"], ctx.gateway.assets.unknown)


def a_valid_line(ctx: Scenario, m: re.Match[str]) -> None:
    set_property(ctx, m["path"], ctx.line.number)


def not_included(ctx: Scenario, m: re.Match[str]) -> None:
    remove_path(body(ctx), m["path"])


REQUEST_PROPERTY: list[tuple[str, Action]] = [
    (r"is not included", not_included),
    (rf"is set to {LITERAL}", literal),
    (r'is set to "(?P<value>[^"]*)"', quoted),
    (r'does not comply with the OAS schema at "(?P<pointer>[^"]+)"', breaks_schema),
    (r"is compliant with the schema but does not identify a valid (?:phone number|subscription "
     r"managed by the API provider)", not_a_line),
    (r"(?:is )?set to a valid (?:testing )?(?:phone number|formatted value)", a_valid_line),
    (r"is set to a date on which the user signed contracts with Service Provider",
     lambda c, m: set_property(c, m["path"], c.contract_start(last=True))),
    (r"is set to a date on which the User A signed contracts with Service Provider",
     lambda c, m: set_property(c, m["path"], c.contract_start(last=False))),
    (r"is set to a value in the future", future_day),
    (r"is set to a valid past date in format RFC 3339 / ISO 8601",
     lambda c, m: set_property(c, m["path"], c.gateway.assets.past_date.isoformat())),
    (r"is set to a valid value above the supported monitored period of the API Provider",
     max_age_beyond_history),
    (r'is set to a value less than "(?P<hours>\d+)" within the allowed range',
     lambda c, m: set_property(c, m["path"], int(m["hours"]) - 1)),
    (r"is set to the number of hours since the last SIM swap minus 1", since_last_swap),
    (r'is set to a valid phone number compliant with OAS schema at "(?P<pointer>[^"]+)"',
     hashed_valid),
    (r"is set to a valid identity document associated with the identified phoneNumber",
     stored_value),
    (r'is set to a valid value that complies with the OAS schema at "(?P<pointer>[^"]+)"',
     stored_value),
    (r"is set to a valid idDocument that is not associated with the identified phone number",
     other_persons_value),
]


@step(parsers.re(r'the request body property "(?P<path>[^"]+)" (?P<rest>.+)'))
def request_property(ctx: Scenario, path: str, rest: str) -> None:
    text = f"{rest}"
    for pattern, action in REQUEST_PROPERTY:
        match = re.fullmatch(pattern, text)
        if match:
            action(ctx, _with_path(match, normal(path)))
            return
    raise AssertionError(f"no step definition understands the property phrase {rest!r}")


class _PathMatch:
    """A match that also answers ``m["path"]``."""

    def __init__(self, match: re.Match[str], path: str) -> None:
        self.match, self.path = match, path

    def __getitem__(self, key: str) -> str:
        return self.path if key == "path" else self.match[key]


def _with_path(match: re.Match[str], path: str) -> Any:
    return _PathMatch(match, path)


@step(parsers.re(r'the request body is set to a valid parameter combination with property '
                 r'"(?P<path>[^"]+)" set to (?P<rest>.+)'))
def combination_with(ctx: Scenario, path: str, rest: str) -> None:
    ctx.body = ctx.default_body()
    key = split_path(path)[-1]
    if rest.startswith('"'):
        quoted(ctx, _with_path(re.fullmatch(r'"(?P<value>[^"]*)"', rest), normal(path)))
    elif rest.endswith("does not match the value stored in the MNO system"):
        set_property(ctx, normal(path), OTHER_PERSON[key])
    else:
        assert rest.endswith("does perfectly match the value stored in the MNO system"), rest
        set_property(ctx, normal(path), ctx.line.holder[key])


@step(parsers.re(r'the request body is set to a valid parameter combination without property '
                 r'"(?P<path>[^"]+)"'))
def combination_without(ctx: Scenario, path: str) -> None:
    ctx.body = ctx.default_body()
    remove_path(ctx.body, path)
    assert ctx.body, "nothing is left of the parameter combination"


@step(parsers.re(r'the body property "(?P<path>[^"]+)" is set to (?P<rest>.+)'))
def device_body_property(ctx: Scenario, path: str, rest: str) -> None:
    """Number Verification: the number of the token's line, or of another line; maybe hashed."""
    hashed = rest.endswith(HASHED)
    which = rest.removesuffix(HASHED)
    assert ctx.auth.kind == "line"
    if which == "the phone number identified by the access token":
        number = ctx.auth.number or ctx.line.number
    else:
        assert which == "a valid phone number different from the one identified by the " \
            "access token", which
        number = ctx.gateway.assets.new_holder.number
    value = hashlib.sha256(number.encode()).hexdigest() if hashed else number
    ctx.body = {split_path(path)[-1]: value}


@step(parsers.re(r'the request body does not contain neither "(?P<a>[^"]+)" nor "(?P<b>[^"]+)"'))
def neither(ctx: Scenario, a: str, b: str) -> None:
    remove_path(body(ctx), a)
    remove_path(body(ctx), b)


@step(parsers.re(r'the request body contains only the property "(?P<path>[^"]+)"'))
def only_property(ctx: Scenario, path: str) -> None:
    value = get_path(body(ctx), path)
    ctx.body = {}
    set_path(ctx.body, path, value)


@step(parsers.re(r"the request body contains valid required properties"))
def required_present(ctx: Scenario) -> None:
    located = ctx.document.request_located(ctx.body_operation)
    assert not ctx.document.errors(body(ctx), located)


@step(parsers.re(r"the request body contains a random combination of valid optional parameters, "
                 r"including, but not limited to, (?P<names>.+) fields"))
def random_combination(ctx: Scenario, names: str) -> None:
    """The named properties and a random (seeded) half of the others, all as stored."""
    named = [n.strip() for n in names.replace(" and ", ", ").split(",")]
    others = sorted(set(HOLDER) - set(named))
    chosen = named + random.Random(3).sample(others, len(others) // 2)
    for name in chosen:
        body(ctx)[name] = ctx.line.holder[name]


@step(parsers.re(r'the same phone number is compliant with OAS schema at "(?P<pointer>[^"]+)"'))
def same_number_complies(ctx: Scenario, pointer: str) -> None:
    located = ctx.document.schema_at(pointer, ctx.body_operation)
    assert not ctx.document.errors(body(ctx)["phoneNumber"], located)


# -- subscription requests --------------------------------------------------------------------

def other_value(ctx: Scenario, path: str, value: str) -> Any:
    """A value of ``path``'s schema other than ``value`` (another enum value if any)."""
    schema = ctx.document.merged(property_schema(ctx, path))
    items = ctx.document.resolve(schema.get("items", {})) if schema.get("type") == "array" \
        else schema
    others = [v for v in items.get("enum", []) if v != value]
    chosen = others[0] if others else {"bearer": "mac"}.get(value, f"{value}-other")
    return [chosen] if schema.get("type") == "array" else chosen


@step(parsers.re(r'"(?P<path>\$[^"]+)"\s*(?P<op>=|<>)\s*"(?P<value>[^"]*)"'))
def body_equals(ctx: Scenario, path: str, op: str, value: str) -> None:
    """``"$.x"="v"`` sets a body property, ``"$.x"<>"v"`` sets it to anything else."""
    schema = ctx.document.merged(property_schema(ctx, path))
    if op == "<>":
        set_property(ctx, path, other_value(ctx, path, value))
    else:
        set_property(ctx, path, [value] if schema.get("type") == "array" else value)


def in_the_past(ctx: Scenario, m: re.Match[str]) -> None:
    when = datetime.now(UTC) - timedelta(days=1)
    set_property(ctx, m["path"], when.isoformat(timespec="seconds").replace("+00:00", "Z"))


def valid_credential_value(ctx: Scenario, m: re.Match[str]) -> None:
    located = property_schema(ctx, m["path"])
    value: Any = "conformance-sink-token"
    if ctx.document.merged(located).get("format") == "date-time":
        value = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
    assert not ctx.document.errors(value, located)
    set_property(ctx, m["path"], value)


SUBSCRIPTION_PROPERTY: list[tuple[str, Action]] = [
    (r"is set with with provided phoneNumber",
     lambda c, m: set_property(c, m["path"], c.line.number)),
    (r"is set to provided callbackUrl",
     lambda c, m: set_property(c, m["path"], c.gateway.sink.url)),
    # "not valued" (a property without a value) is null; "not included" (creation_25) is
    # absence, which the schema refuses as INVALID_ARGUMENT before any identifier rule.
    (r"is not valued", lambda c, m: set_property(c, m["path"], None)),
    (r"is set in the past", in_the_past),
    (r"is not set to an url", lambda c, m: set_property(c, m["path"], "not an url")),
    (r"is valued with a valid value", valid_credential_value),
    (r"is set to a valid testing device that does not allow sim swap subscription",
     lambda c, m: set_property(c, m["path"], c.gateway.assets.not_applicable.number)),
]


@step(parsers.re(r'"(?P<path>\$[^"]+)" (?P<rest>is .+)'))
def subscription_property(ctx: Scenario, path: str, rest: str) -> None:
    for pattern, action in SUBSCRIPTION_PROPERTY:
        match = re.fullmatch(pattern, rest)
        if match:
            action(ctx, _with_path(match, normal(path)))
            return
    raise AssertionError(f"no step definition understands {rest!r}")


# -- sending ----------------------------------------------------------------------------------

@step(parsers.re(r'the HTTP "(?P<method>[A-Z]+)" request is sent'))
def http_sent(ctx: Scenario, method: str) -> None:
    ctx.send_later(method=method)


@step(parsers.re(r'the HTTP "(?P<method>[A-Z]+)" request is sent with subscriptionId="id"'))
def sent_with_id(ctx: Scenario, method: str) -> None:
    assert ctx.subscription_id, "no subscription was created"
    ctx.send_later(method=method, path=f"{ctx.resource}/{ctx.subscription_id}")


@step(parsers.re(r'the HTTP "(?P<method>[A-Z]+)" request is sent (?:with )?subscriptionId set to '
                 r"non-existing subscription id"))
def sent_unknown_id(ctx: Scenario, method: str) -> None:
    ctx.send_later(method=method, path=f"{ctx.resource}/{ctx.correlator()}")


@step(parsers.re(r'the request "(?P<name>[^"]+)" is sent'))
def request_sent(ctx: Scenario, name: str) -> None:
    """By operationId, or by HTTP method on the resource."""
    if name in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        ctx.send_later(method=name)
    else:
        ctx.send_later(operation_id=name)
