"""Request bodies from an OpenAPI schema: compliant ones from the assets, and broken ones.

``build`` fills a schema with the test assets' values: an object gets its required properties,
the properties the assets name in ``include`` and every ``phoneNumber`` the assets give (at any
depth, so a subscription's ``config.subscriptionDetail.phoneNumber`` too), then optional ones
until ``minProperties`` holds. A value the assets do not give comes from the schema itself
(first enum value, the type's simplest value). ``violating`` returns a value that breaks a
schema, checked with the validator by the caller. JSON paths (``$.a.b``) address properties.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

Schema = Mapping[str, Any]
Resolve = Callable[[Any], Any]
"""Follows ``$ref`` and merges ``allOf`` (:meth:`ApiDocument.merged`)."""

TYPE_DEFAULTS: dict[str, Any] = {"integer": 1, "number": 1, "boolean": True, "string": "text"}
FORMAT_DEFAULTS: dict[str, str] = {"uri": "https://example.com/", "email": "user@example.com",
                                   "date": "2020-01-01"}


def build(schema: Any, resolve: Resolve, values: Mapping[str, Any],
          include: Iterable[str] = (), name: str | None = None) -> Any:
    """A value complying with ``schema`` made of ``values`` where they apply."""
    schema = resolve(schema)
    if name is not None and name in values:
        return values[name]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type") or ("object" if "properties" in schema else "string")
    if kind == "object":
        return _object(schema, resolve, values, set(include))
    if kind == "array":
        item = build(schema.get("items", {}), resolve, values, include)
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind == "string" and schema.get("format") == "date-time":
        return datetime.now(UTC).isoformat(timespec="seconds")
    if kind == "string" and schema.get("format") in FORMAT_DEFAULTS:
        return FORMAT_DEFAULTS[schema["format"]]
    if kind == "integer" and "minimum" in schema:
        return schema["minimum"]
    return TYPE_DEFAULTS[kind]


def _object(schema: Schema, resolve: Resolve, values: Mapping[str, Any],
            include: set[str]) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    wanted = [p for p in properties
              if p in schema.get("required", ()) or p in include
              or (p == "phoneNumber" and p in values)]
    body = {p: build(properties[p], resolve, values, include, p) for p in wanted}
    for extra in properties:
        if len(body) >= int(schema.get("minProperties", 0)):
            break
        body.setdefault(extra, build(properties[extra], resolve, values, include, extra))
    return body


def violating(schema: Any, resolve: Resolve) -> list[Any]:
    """Candidate values that break ``schema``, the likeliest first (a wrong type first: a
    value of the right type but out of range may be refused with another code)."""
    schema = resolve(schema)
    kind = schema.get("type") or ("object" if "properties" in schema else "string")
    if kind == "object":
        return [["not", "an", "object"], "not an object"]
    if kind in ("integer", "number"):
        return ["not-a-number", 1.5, True]
    if kind == "boolean":
        return ["not-a-boolean", 1]
    if kind == "array":
        return ["not-an-array", {}]
    shaped = {"date": "31/12/2020", "date-time": "yesterday", "uri": "not a uri",
              "email": "not-an-email"}.get(schema.get("format", ""))
    return [c for c in (shaped, "not-valid!", "", 12345) if c is not None]


def split_path(path: str) -> list[str]:
    """``$.a.b`` (also ``$a.b``, ``a.b``) as its keys."""
    text = path.strip()
    text = text[1:] if text.startswith("$") else text
    return [key for key in text.lstrip(".").split(".") if key]


def get_path(document: Any, path: str) -> Any:
    """The value at ``path``; KeyError when absent."""
    node = document
    for key in split_path(path):
        if not isinstance(node, Mapping) or key not in node:
            raise KeyError(path)
        node = node[key]
    return node


def has_path(document: Any, path: str) -> bool:
    try:
        get_path(document, path)
    except KeyError:
        return False
    return True


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = split_path(path)
    node = document
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def remove_path(document: dict[str, Any], path: str) -> None:
    *parents, last = split_path(path)
    node: Any = document
    for key in parents:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
        node.pop(last, None)


def find_key(document: Any, key: str) -> Any:
    """The first value of property ``key`` at any depth; KeyError when none."""
    if isinstance(document, Mapping):
        if key in document:
            return document[key]
        for value in document.values():
            try:
                return find_key(value, key)
            except KeyError:
                continue
    raise KeyError(key)


def path_of(document: Any, key: str, prefix: str = "$") -> str | None:
    """The JSON path of the first property ``key`` at any depth."""
    if isinstance(document, Mapping):
        if key in document:
            return f"{prefix}.{key}"
        for name, value in document.items():
            found = path_of(value, key, f"{prefix}.{name}")
            if found:
                return found
    return None
