"""The published CAMARA definitions the conformance suite runs: features and OpenAPI documents.

There are two sets (:data:`DEFINITION_SETS`): the work-in-progress definitions
(``shared/camara`` beside the checkout, or ``NUMIDENT_CAMARA_DIR``) and the latest public
releases (``shared/camara-released``, or ``NUMIDENT_CAMARA_RELEASED_DIR``). Each folder holds
one folder per API with its ``.feature`` files and its YAML documents. A YAML refers to the
CAMARA common schemas as ``../common/CAMARA_common.yaml``; here that resolves to the copy in
the same folder (the released documents carry their common schemas inline).

:class:`ApiDocument` answers what the steps need from a YAML: the operation a request is (by
operationId, or by method and path), its scopes, the schema at a JSON pointer, a request body
built from a schema and the test assets' values, and validation with openapi-schema-validator.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

CAMARA_DIR_VARIABLE = "NUMIDENT_CAMARA_DIR"
RELEASED_DIR_VARIABLE = "NUMIDENT_CAMARA_RELEASED_DIR"
BASE_URI = "https://camara.invalid"
METHODS = ("get", "put", "post", "delete", "patch")
Located = tuple[Any, Path, str]
"""A schema, the file it is in and its JSON pointer there (references resolve in that file)."""


@dataclass(frozen=True)
class DefinitionSet:
    """One set of definitions, run against a gateway of its own."""

    name: str
    title: str
    folder_name: str
    variable: str
    camara_settings: Mapping[str, bool] = field(default_factory=dict)
    """The ``operator.camara`` settings of its gateway: the implementation indications its
    features ask for."""

    @property
    def folder(self) -> Path:
        """The folder of the definitions (its environment variable overrides the default)."""
        default = Path(__file__).resolve().parents[2] / ".." / "shared" / self.folder_name
        path = Path(os.environ.get(self.variable, default)).resolve()
        assert path.is_dir(), f"the CAMARA definitions {path} are missing (set {self.variable})"
        return path


WIP_SET = DefinitionSet("wip", "work in progress (vwip)", "camara", CAMARA_DIR_VARIABLE)
RELEASED_SET = DefinitionSet(
    "released", "latest public releases", "camara-released", RELEASED_DIR_VARIABLE,
    # KYC Match r1.2: "Whether or not the idDocument request body property is mandatory" is
    # an implementation indication; mandatory, its scenarios 12 and 13 apply.
    {"kyc_match_id_document_required": True})
DEFINITION_SETS = (WIP_SET, RELEASED_SET)


def camara_dir() -> Path:
    """The folder of the WIP definitions."""
    return WIP_SET.folder


class _JsonLoader(yaml.SafeLoader):
    """YAML as JSON sees it: ``2025-01-17T13:18:23Z`` stays a string, as OpenAPI means it."""


_JsonLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


@cache
def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_JsonLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    """The full path template (``/sim-swap/vwip/check``)."""
    operation_id: str
    spec: Mapping[str, Any]

    @property
    def scopes(self) -> list[list[str]]:
        """The alternatives of the operation's ``security`` (each a list of scopes)."""
        return [scopes for requirement in self.spec.get("security", [])
                for scopes in requirement.values()]

    def matches(self, method: str, path: str) -> bool:
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(self.path))
        return self.method == method.lower() and re.fullmatch(pattern, path) is not None


@dataclass
class ApiDocument:
    """One CAMARA OpenAPI document and the files its references reach."""

    path: Path
    doc: Mapping[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.doc = load_yaml(self.path)

    @property
    def title(self) -> str:
        return str(self.doc["info"]["title"])

    @property
    def root(self) -> str:
        """The path the API is served under (``/sim-swap/vwip``)."""
        return urlsplit(self.doc["servers"][0]["url"].replace("{apiRoot}", "http://x")).path

    @property
    def operations(self) -> list[Operation]:
        return [Operation(method, self.root + path, item[method]["operationId"], item[method])
                for path, item in self.doc["paths"].items() for method in METHODS
                if method in item]

    def operation(self, operation_id: str) -> Operation | None:
        return next((o for o in self.operations if o.operation_id == operation_id), None)

    def operation_at(self, method: str, path: str) -> Operation | None:
        return next((o for o in self.operations if o.matches(method, path)), None)

    # -- references -------------------------------------------------------------------------

    def _uri(self, path: Path) -> str:
        return f"{BASE_URI}/{path.parent.name}/api/{path.name}"

    def deref(self, node: Any, source: Path, pointer: str = "") -> Located:
        """``node`` with its ``$ref`` chain followed: the schema, its file, its pointer."""
        while isinstance(node, Mapping) and "$ref" in node:
            reference, _, pointer = str(node["$ref"]).partition("#")
            if reference:
                source = source.parent / Path(reference).name
            node = walk(load_yaml(source), pointer)
        return node, source, pointer

    def at(self, source: Path, pointer: str) -> Located:
        return self.deref(walk(load_yaml(source), pointer), source, pointer)

    def schema_at(self, pointer: str, operation: Operation | None = None, *,
                  else_request_body: bool = False) -> Located:
        """The schema a feature's pointer names.

        The features write pointers with one, two or no ``#``, and some name a schema the
        document does not have under that pointer: the CAMARA common ``XCorrelator``, a schema
        the document has only inline (``HashedPhoneNumber``, ``TenureDate``: the request body
        property of that name in lower camel case) or under another path
        (``Subscription/CloudEvent``). Such a pointer falls back to the schema named by its last
        segment: in the document's components, in the common file's, then as a request body
        property of ``operation``; with ``else_request_body``, a name the document does not
        have at all (KYC Match's ``VerifyRequestBody``) is the request body's schema.
        """
        pointer = "/" + pointer.lstrip("#").lstrip("/")
        try:
            return self.at(self.path, pointer)
        except KeyError:
            pass
        name = pointer.rsplit("/", 1)[-1]
        for source in (self.path, self.path.parent / "CAMARA_common.yaml"):
            if source.exists() and name in load_yaml(source).get("components", {}).get(
                    "schemas", {}):
                return self.at(source, f"/components/schemas/{name}")
        assert operation is not None, f"{pointer} is not in {self.path.name}"
        found = self.property_at(self.request_located(operation), name[0].lower() + name[1:])
        if found is None and else_request_body:
            return self.request_located(operation)
        assert found is not None, \
            f"{pointer} is not in {self.path.name} nor a property of {operation.operation_id}"
        return found

    def request_located(self, operation: Operation) -> Located:
        assert "requestBody" in operation.spec, f"{operation.operation_id} has no request body"
        path = operation.path.removeprefix(self.root).replace("~", "~0").replace("/", "~1")
        return self.at(self.path, f"/paths/{path}/{operation.method}/requestBody/content/"
                                  "application~1json/schema")

    def request_schema(self, operation: Operation) -> Mapping[str, Any] | None:
        if "requestBody" not in operation.spec:
            return None
        return self.merged(self.request_located(operation))  # type: ignore[no-any-return]

    def property_at(self, located: Located, key: str,
                    seen: frozenset[tuple[Path, str]] = frozenset()) -> Located | None:
        """The schema of property ``key`` of an object schema, looking into ``allOf`` and the
        schemas its ``discriminator`` maps to (``sinkCredential.accessToken``)."""
        node, source, pointer = self.deref(*located)
        if not isinstance(node, Mapping) or (source, pointer) in seen:
            return None
        seen = seen | {(source, pointer)}
        if key in node.get("properties", {}):
            return self.at(source, f"{pointer}/properties/{key}")
        parts = [self.at(source, f"{pointer}/allOf/{i}") for i, _ in
                 enumerate(node.get("allOf", []))]
        mapping = node.get("discriminator", {}).get("mapping", {})
        parts += [self.deref({"$ref": ref}, source) for ref in mapping.values()]
        for part in parts:
            found = self.property_at(part, key, seen)
            if found is not None:
                return found
        return None

    def merged(self, located: Located) -> Any:
        """The schema with references followed and ``allOf`` parts merged (for building)."""
        node, source, _ = self.deref(*located)
        if not isinstance(node, Mapping) or "allOf" not in node:
            return node
        merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
        for part in node["allOf"]:
            for key, value in self.merged(self.deref(part, source)).items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged

    def resolve(self, node: Any) -> Any:
        """A schema node of this document, references followed and ``allOf`` merged."""
        return self.merged(self.deref(node, self.path))

    # -- validation -------------------------------------------------------------------------

    def errors(self, instance: Any, located: Located) -> list[str]:
        """Why ``instance`` does not comply with the schema (empty: it does)."""
        _, source, pointer = located
        validator = OAS30Validator({"$ref": f"{self._uri(source)}#{pointer}"},
                                   registry=self._registry(), format_checker=oas30_format_checker)
        return [_describe(error) for error in validator.iter_errors(instance)]

    def _registry(self) -> Registry:
        folder = self.path.parent

        def retrieve(uri: str) -> Resource:
            return Resource.from_contents(load_yaml(folder / urlsplit(uri).path.rsplit("/")[-1]),
                                          default_specification=DRAFT4)

        return Registry(retrieve=retrieve)  # type: ignore[call-arg]


def walk(document: Any, pointer: str) -> Any:
    """The node at a JSON pointer (RFC 6901); KeyError when there is none."""
    node = document
    for token in [t for t in pointer.split("/") if t]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, Mapping) and token in node:
            node = node[token]
        else:
            raise KeyError(pointer)
    return node


def _describe(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(body)"
    return f"{where}: {error.message}"


@dataclass(frozen=True)
class FeatureFile:
    path: Path
    document: ApiDocument


def feature_files(folder: Path | None = None) -> Iterator[FeatureFile]:
    """Every ``.feature`` with the document of its API: the YAML whose name is the longest
    prefix of the feature's (``sim-swap-checkSimSwap`` -> ``sim-swap.yaml``)."""
    root = folder or camara_dir()
    for path in sorted(root.glob("*/*.feature")):
        candidates = [y for y in path.parent.glob("*.yaml")
                      if path.stem.startswith(y.stem) and not y.stem.startswith("CAMARA")]
        assert candidates, f"no OpenAPI document for {path}"
        yield FeatureFile(path, ApiDocument(max(candidates, key=lambda y: len(y.stem))))


def api_documents(folder: Path | None = None) -> list[ApiDocument]:
    """Every API document of the folder (not the common ones)."""
    root = folder or camara_dir()
    return [ApiDocument(y) for y in sorted(root.glob("*/*.yaml"))
            if not y.stem.startswith(("CAMARA", "info-"))]
