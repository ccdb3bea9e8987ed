"""The conformance suite's fixtures (one gateway per definition set, started when a test of
that set first needs it and reused by all of them; one context per scenario) and its report:
after the session, for each definition set, a table of the CAMARA APIs with their scenarios
passed, failed and not applicable, and the reason of each n/a.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest
from camara_binding import ScenarioInfo
from camara_context import Scenario
from camara_gateway import Gateways
from camara_spec import DEFINITION_SETS, ApiDocument, DefinitionSet

RESULTS = pytest.StashKey["ConformanceResults"]()
SCENARIO = pytest.StashKey[Scenario]()


@dataclass
class ConformanceResults:
    scenarios: dict[str, ScenarioInfo] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="session")
def camara_gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    """The gateways with the assets, organizer and events; stopped after the session."""
    with ExitStack() as stack:
        yield Gateways(tmp_path_factory, stack)


@pytest.fixture
def ctx(request: pytest.FixtureRequest, camara_gateways: Gateways) -> Scenario:
    """The state of the scenario being run, on the gateway of its definition set."""
    info: ScenarioInfo = request.node.function.camara
    gateway = camara_gateways[info.definitions]
    document = ApiDocument(info.document)
    assets = gateway.assets
    line = assets.subscribed if "subscriptions" in document.path.stem else assets.long_held
    scenario = Scenario(gateway, document, info.operation, line)
    request.node.stash[SCENARIO] = scenario
    return scenario


def pytest_bdd_apply_tag(tag: str, function: object) -> bool:
    """Scenario tags name scenarios in the table; they are not pytest markers."""
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    results = config.stash.setdefault(RESULTS, ConformanceResults())
    for item in items:
        info = getattr(getattr(item, "function", None), "camara", None)
        if isinstance(info, ScenarioInfo):
            item.add_marker(pytest.mark.conformance)
            results.scenarios[item.nodeid] = info


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    results = item.config.stash.get(RESULTS, None)
    if results is not None and item.nodeid in results.scenarios:
        if report.failed:
            results.outcomes[item.nodeid] = "failed"
            if SCENARIO in item.stash:
                report.sections.append(("CAMARA exchange", item.stash[SCENARIO].describe()))
        elif report.when == "call" and report.passed:
            results.outcomes.setdefault(item.nodeid, "passed")
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    results = config.stash.get(RESULTS, None)
    if results is None or not results.outcomes:
        return
    for definitions in DEFINITION_SETS:
        for line in conformance_table(results, definitions):
            terminalreporter.write_line(line)


def conformance_table(results: ConformanceResults, definitions: DefinitionSet) -> list[str]:
    """The table of the run's scenarios of one set by API, then the n/a reasons and the
    failures (nothing when the run had none of that set)."""
    rows: dict[str, list[int]] = {}
    not_applicable: list[str] = []
    failed: list[str] = []
    for nodeid, outcome in results.outcomes.items():
        info = results.scenarios[nodeid]
        if info.definitions != definitions:
            continue
        counts = rows.setdefault(info.api, [0, 0, 0, 0])
        counts[0] += 1
        if outcome == "failed":
            counts[2] += 1
            failed.append(f"  {info.api}: {info.tag} ({nodeid.rsplit('::', 1)[-1]})")
        elif info.not_applicable is not None:
            counts[3] += 1
            not_applicable.append(f"  {info.tag}: {info.not_applicable.reason}")
        else:
            counts[1] += 1
    if not rows:
        return []
    header = ("API", "scenarios", "passed", "failed", "n/a")
    width = max(len(header[0]), *(len(api) for api in rows))
    lines = ["", f"CAMARA conformance: {definitions.title} ({definitions.folder})",
             f"{header[0]:<{width}}  " + "  ".join(
        f"{h:>9}" for h in header[1:])]
    for api, counts in sorted(rows.items()):
        lines.append(f"{api:<{width}}  " + "  ".join(f"{c:>9}" for c in counts))
    totals = [sum(c[i] for c in rows.values()) for i in range(4)]
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{c:>9}" for c in totals))
    if not_applicable:
        lines += ["", "not applicable:", *sorted(set(not_applicable))]
    if failed:
        lines += ["", "failed:", *sorted(failed)]
    return lines
