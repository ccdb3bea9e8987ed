"""The conformance suite itself: every scenario is bound, every step has exactly one definition.

The feature files are read here with plain regular expressions, independently of pytest-bdd's
parser, so that a scenario pytest-bdd would drop (two scenarios of one name) is noticed.
"""

from __future__ import annotations

import re
from pathlib import Path

import camara_checks
import camara_steps
import pytest
import test_camara_features
from camara_spec import DEFINITION_SETS, FeatureFile, feature_files
from pytest_bdd.steps import step_function_context_registry

pytestmark = pytest.mark.conformance


def every_feature_file() -> list[FeatureFile]:
    return [found for definitions in DEFINITION_SETS
            for found in feature_files(definitions.folder)]


KEYWORDS = re.compile(r"^\s*(?:Given|When|Then|And|But)\s+(?P<text>.+?)\s*$")


def scenarios_in(path: Path) -> dict[str, int]:
    """Each scenario's name and how many times it runs (its examples' rows, or once)."""
    runs: dict[str, int] = {}
    current, in_examples = None, False
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^\s*Scenario(?: Outline)?:\s*(?P<name>.+?)\s*$", line)
        if heading:
            current, in_examples = heading["name"], False
            assert current not in runs, f"{path.name}: two scenarios named {current!r}"
            runs[current] = 1
        elif re.match(r"^\s*Examples:", line):
            in_examples, runs[str(current)] = True, -1  # the header row is not a run
        elif in_examples and line.strip().startswith("|"):
            runs[str(current)] += 1
    return runs


def step_texts(path: Path) -> set[str]:
    """Every step of the file, outline placeholders filled from the first example row."""
    text = path.read_text(encoding="utf-8")
    texts = set()
    for block in re.split(r"\n\s*(?=@|Scenario)", text):
        rows = [[c.strip() for c in r.strip().strip("|").split("|")]
                for r in block.splitlines() if r.strip().startswith("|")]
        values = dict(zip(rows[0], rows[1], strict=True)) if len(rows) > 1 else {}
        for line in block.splitlines():
            step = KEYWORDS.match(line)
            if step:
                texts.add(fill(step["text"], values))
    return texts


def fill(text: str, values: dict[str, str]) -> str:
    return re.sub(r"<(\w+)>", lambda m: values.get(m[1], m[0]), text)


def test_every_scenario_of_every_feature_file_is_a_test() -> None:
    """One test per scenario; an outline's test runs once per example row."""
    bound = {(f.camara.feature, f.camara.name): f for f in vars(test_camara_features).values()
             if hasattr(f, "camara")}
    expected = {(found.path, name): runs for found in every_feature_file()
                for name, runs in scenarios_in(found.path).items()}
    assert set(bound) == set(expected)
    assert len(expected) > 200
    for key, runs in expected.items():
        marks = [m for m in getattr(bound[key], "pytestmark", []) if m.name == "parametrize"]
        count = len(marks[0].args[1]) if marks else 1
        assert count == runs or bound[key].camara.not_applicable, key


def test_every_step_text_has_exactly_one_definition() -> None:
    """No step is left undefined, and no two definitions compete for one."""
    parsers = [c.parser for c in step_function_context_registry.values()
               if c.step_func.__module__ in (camara_steps.__name__, camara_checks.__name__)]
    texts = {t for found in every_feature_file() for t in step_texts(found.path)}
    assert len(texts) > 150
    for text in sorted(texts):
        matching = [p for p in parsers if p.is_matching(text)]
        assert len(matching) == 1, f"{text!r} matches {len(matching)} definitions"
