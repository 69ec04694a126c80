"""A check the caller will explain (`can_execute(..., explain=True)`, as the service's
POST /api/v1/check asks) records its trace as the checks run instead of replaying the
walk when the record is first read: the record must be the same, byte for byte."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bastion.engine.authority import can_execute
from bastion.engine.authority.request import load_request
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import State
from tests.authority.conftest import PolicyFactory
from tests.authority.test_golden_checks import CASES


def _answers(case: Path, policies: PolicyFactory) -> list[str]:
    meta = json.loads((case / "case.json").read_text(encoding="utf-8"))
    compiled = policies(limits=meta.get("limits", True), breakers=meta.get("breakers", False))
    snapshot = load_snapshot(case / "snapshot.json")
    state = State()
    if meta.get("breakers", False):
        _, state = evaluate(compiled, snapshot, state, snapshot.as_of)
    request = load_request(case / "request.json")
    answers = []
    for explain in (False, True):
        result = can_execute(compiled, request, snapshot, state, snapshot.as_of, explain=explain)
        answer: dict[str, Any] = result.to_dict()
        answers.append(json.dumps(answer, sort_keys=True))
    return answers


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_can_execute_when_explained_then_same_record_as_replayed(
    case: Path, policies: PolicyFactory
) -> None:
    """Reasons, trace, inputs, details and the decision id are the same either way."""
    replayed, explained = _answers(case, policies)
    assert explained == replayed


@pytest.mark.parametrize("case", CASES[:5], ids=[case.name for case in CASES[:5]])
def test_decision_when_answer_built_first_then_same_id_as_asked_first(
    case: Path, policies: PolicyFactory
) -> None:
    """`to_dict()` before `id` (the service's order) names the id `id` alone gives."""
    meta = json.loads((case / "case.json").read_text(encoding="utf-8"))
    compiled = policies(limits=meta.get("limits", True), breakers=meta.get("breakers", False))
    snapshot = load_snapshot(case / "snapshot.json")
    request = load_request(case / "request.json")
    result = can_execute(compiled, request, snapshot, State(), snapshot.as_of, explain=True)
    answered_first = result.decision.to_dict()["id"]
    asked_first = replace(result.decision).id  # a copy: no id kept yet
    assert answered_first == asked_first == result.decision.id
