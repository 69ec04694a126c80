"""Conformance: the risk scenarios of NautilusTrader's, freqtrade's and LEAN's own tests,
re-expressed as Bastion policies, snapshots and requests (scenarios/*.yaml), replayed
through can_execute and evaluate. README.md lists every scenario and how it stands.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance import build, table
from tests.conformance.scenarios import LISTED, REPLAYED, Scenario, load_all, replay

ALL = load_all()


def _param(scenario: Scenario) -> object:
    marks = []
    if scenario.status == "waits":
        marks.append(pytest.mark.xfail(reason=f"waits for {scenario.waits_for}", strict=True))
    return pytest.param(scenario, id=scenario.id, marks=marks)


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[build.PolicyCache]:
    cache = build.PolicyCache(tmp_path_factory.mktemp("conformance"))
    yield cache
    cache.close()


@pytest.mark.parametrize("scenario", [_param(s) for s in ALL if s.replayed])
def test_scenario_when_replayed_then_bastion_gives_the_expected_outcome(
    scenario: Scenario, policies: build.PolicyCache
) -> None:
    """Every step's answer is the one the scenario expects (the engine's, or Bastion's
    deliberate difference)."""
    replay(scenario, policies)


def test_scenarios_when_loaded_then_each_cites_its_source_and_says_how_it_stands() -> None:
    """Ids are unique; each scenario names its tests and the engine's outcome; a replayed
    one has steps, a listed one says why it is not replayed, a waiting one what for."""
    assert len({s.id for s in ALL}) == len(ALL)
    for scenario in ALL:
        assert scenario.tests and all(scenario.tests), scenario.id
        if scenario.status in REPLAYED:
            assert scenario.steps and scenario.engine_outcome, scenario.id
        if scenario.status in LISTED or scenario.status == "differs":
            assert scenario.note, scenario.id
        assert (scenario.status == "waits") == bool(scenario.waits_for), scenario.id


def test_readme_when_scenarios_change_then_its_table_is_regenerated() -> None:
    """README.md's table is `python -m tests.conformance.table` output, kept in step."""
    assert table.rendered(ALL) in table.README.read_text(encoding="utf-8"), (
        "tests/conformance/README.md is out of date: run "
        "`.venv/bin/python -m tests.conformance.table --write`"
    )
