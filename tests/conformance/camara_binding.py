"""Every scenario of every CAMARA feature file of both sets as a pytest test, and the n/a ones.

:func:`bind` puts one test per scenario (an outline's examples become its parameters) into a
test module, named after the definition set, the feature file and the scenario's tag, and
records on it what the conformance tables report (:class:`ScenarioInfo`).

A scenario is not applicable only when the feature itself makes it optional and the gateway
offers the alternative the feature names, or when the published scenario contradicts its own
definition (and a later one corrects it): :data:`NOT_APPLICABLE` maps such a scenario's set and
tag to the reason and to a check of what the gateway does instead, which runs in place of the
scenario (so an n/a scenario still fails when that breaks).
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camara_context import Scenario
from camara_spec import DEFINITION_SETS, RELEASED_SET, DefinitionSet, feature_files
from pytest_bdd import scenario
from pytest_bdd.feature import get_feature


@dataclass(frozen=True)
class NotApplicable:
    reason: str
    """The feature's own words that make the scenario optional."""
    check: Callable[[Scenario], None]
    """Proves the gateway offers the alternative instead."""


def _creates_synchronously(ctx: Scenario) -> None:
    ctx.create_subscription()  # asserts 201 Created: the synchronous creation of scenario 01


def _perfect_match_is_true(ctx: Scenario) -> None:
    """Every attribute of the default body holds the holder's value: each answer is true.
    (An n/a check runs without the feature's background steps.)"""
    ctx.headers = {"Content-Type": "application/json"}
    ctx.body = ctx.default_body()
    response = ctx.exchange()
    assert response.status_code == 200, response.text
    verdicts = {k: v for k, v in response.json().items() if k.endswith("Match")}
    assert verdicts, response.text
    assert set(verdicts.values()) == {"true"}, verdicts


ASYNC_CREATION = NotApplicable(
    '"Check async subscription creation - This scenario could be bypass if previous '
    'scenario is provided": the gateway creates subscriptions synchronously (201, '
    "sim_swap_subscription_creation_01_sync_creation)", _creates_synchronously)
NOT_APPLICABLE: dict[tuple[str, str], NotApplicable] = {
    **{(definitions.name, "sim_swap_subscription_creation_02_async_creation"): ASYNC_CREATION
       for definitions in DEFINITION_SETS},
    (RELEASED_SET.name, "KYC_Match_5_success_specific_property_false"): NotApplicable(
        "r1.2 expects false for a value that does perfectly match the stored one (its own "
        "scenario 4 expects true for the same request; the WIP definition corrects it to a "
        "value that does not match): the gateway answers true for a perfect match",
        _perfect_match_is_true),
}
"""By (definition set, scenario tag)."""


@dataclass(frozen=True)
class ScenarioInfo:
    definitions: DefinitionSet
    api: str
    """The title of the API's OpenAPI document."""
    feature: Path
    document: Path
    name: str
    tag: str
    operation: str | None
    """The operationId the feature is about (its title says "Operation X"), if one."""
    not_applicable: NotApplicable | None = None


def bind(namespace: MutableMapping[str, Any]) -> int:
    """Add a test for every scenario to ``namespace`` (a test module's globals); the count."""
    count = 0
    for definitions in DEFINITION_SETS:
        count += _bind_set(namespace, definitions)
    return count


def _bind_set(namespace: MutableMapping[str, Any], definitions: DefinitionSet) -> int:
    count = 0
    for found in feature_files(definitions.folder):
        feature = get_feature(str(found.path.parent), found.path.name)
        operation = re.search(r"Operation (\w+)", feature.name)
        for name, template in feature.scenarios.items():
            tag = sorted(template.tags)[0] if template.tags else name
            info = ScenarioInfo(definitions, found.document.title, found.path,
                                found.document.path, name, tag,
                                operation[1] if operation else None,
                                NOT_APPLICABLE.get((definitions.name, tag)))
            test = _not_applicable_test(info) if info.not_applicable else scenario(
                found.path.name, name, features_base_dir=str(found.path.parent))(_no_more)
            test.camara = info  # type: ignore[attr-defined]
            test.__name__ = "test_" + re.sub(
                r"\W+", "_", f"{definitions.name}__{found.path.stem}__{tag}")
            assert test.__name__ not in namespace, f"two scenarios are {test.__name__}"
            namespace[test.__name__] = test
            count += 1
    return count


def _no_more() -> None:
    """Everything a scenario checks is in its steps."""


def _not_applicable_test(info: ScenarioInfo) -> Callable[[Scenario], None]:
    assert info.not_applicable is not None
    check = info.not_applicable.check

    def test(ctx: Scenario) -> None:
        check(ctx)

    test.__doc__ = f"n/a: {info.not_applicable.reason}"
    return test
