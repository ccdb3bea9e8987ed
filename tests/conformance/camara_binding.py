"""Every scenario of every CAMARA feature file as a pytest test, and the list of n/a ones.

:func:`bind` puts one test per scenario (an outline's examples become its parameters) into a
test module, named after the feature file and the scenario's tag, and records on it what the
conformance table reports (:class:`ScenarioInfo`).

A scenario is not applicable only when the feature itself makes it optional, and only when the
gateway offers the alternative the feature names: :data:`NOT_APPLICABLE` maps such a scenario's
tag to the spec's words and to a check of that alternative, which runs in place of the scenario
(so an n/a scenario still fails when its alternative breaks).
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camara_context import Scenario
from camara_spec import feature_files
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


NOT_APPLICABLE: dict[str, NotApplicable] = {
    "sim_swap_subscription_creation_02_async_creation": NotApplicable(
        '"Check async subscription creation - This scenario could be bypass if previous '
        'scenario is provided": the gateway creates subscriptions synchronously (201, '
        "sim_swap_subscription_creation_01_sync_creation)", _creates_synchronously),
}


@dataclass(frozen=True)
class ScenarioInfo:
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
    for found in feature_files():
        feature = get_feature(str(found.path.parent), found.path.name)
        operation = re.search(r"Operation (\w+)", feature.name)
        for name, template in feature.scenarios.items():
            tag = sorted(template.tags)[0] if template.tags else name
            info = ScenarioInfo(found.document.title, found.path, found.document.path, name,
                                tag, operation[1] if operation else None,
                                NOT_APPLICABLE.get(tag))
            test = _not_applicable_test(info) if info.not_applicable else scenario(
                found.path.name, name, features_base_dir=str(found.path.parent))(_no_more)
            test.camara = info  # type: ignore[attr-defined]
            test.__name__ = "test_" + re.sub(r"\W+", "_", f"{found.path.stem}__{tag}")
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
