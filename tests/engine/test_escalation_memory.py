"""A crash day's memory: decisions share what their transition shares, and the position
facts are released before the decisions are made — with the same output.

The crash-day example, each position copied under a few ids (several positions per
symbol and per transition), with the shipped policies plus a shadow escalation policy
(two policies reading the same position facts), over two ticks (positions at level 0,
then held ones stepping).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from bastion.engine.decision import Decision
from bastion.engine.evaluation import escalation, passes
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.evaluation.facts import build_facts
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.rules.spec import AllOf, AnyOf, Compare, Condition, Not
from bastion.engine.snapshot import Snapshot, parse_snapshot
from bastion.engine.state import State
from tests.conftest import POLICIES, ROOT

CRASH_DAY = ROOT / "examples" / "snapshots" / "crash-day.json"
COPIES = 3
SHADOW_ESCALATION = """\
apiVersion: bastion/v1
kind: EscalationPolicy
metadata: {name: shadow-escalation}
mode: shadow
spec:
  atr: {period: 14, method: wilder}
  reference: entry_price
  levels:
    - {name: normal, breach_atr: 0, interval_s: 300, actions: [monitor]}
    - {name: enhanced, breach_atr: 0.5, interval_s: 60, actions: [monitor]}
    - {name: recovery, breach_atr: 1.5, interval_s: 30, actions: [halt_new_positions]}
  deescalation: {hysteresis_atr: 0.1, min_dwell_s: 0}
"""


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompiledPolicySet]:
    folder = tmp_path_factory.mktemp("memory") / "policies"
    shutil.copytree(POLICIES, folder)
    (folder / "shadow-escalation.yaml").write_text(SHADOW_ESCALATION)
    compiled = compile_policy_set(load_policy_set([folder]))
    yield compiled
    compiled.close()


def _crash_day(*, recovered: bool = False) -> Snapshot:
    """The crash day, each position `COPIES` times; `recovered`: prices back at entry."""
    document: dict[str, Any] = json.loads(CRASH_DAY.read_text())
    positions = []
    for position in document["positions"]:
        for copy in range(COPIES):
            positions.append({**position, "id": f"{position['id']}-{copy}"})
    document["positions"] = positions
    if recovered:
        for position in positions:
            document["market"][position["symbol"]]["price_usd"] = position["entry_price_usd"]
    return parse_snapshot(json.dumps(document), source="crash-day copies")


def _ticks(policies: CompiledPolicySet) -> list[tuple[Snapshot, State]]:
    """(snapshot, state before it): the crash day from nothing, then a recovery an hour
    later from the crash day's state (held positions stepping down)."""
    crash = _crash_day()
    _, after = evaluate(policies, crash, State(), crash.as_of)
    recovered = _crash_day(recovered=True)
    later = replace(recovered, as_of=recovered.as_of + timedelta(hours=1))
    return [(crash, State()), (later, after)]


def _dicts(decisions: list[Decision]) -> list[dict[str, Any]]:
    return [decision.to_dict() for decision in decisions]


def _fresh_copy(decision: Decision) -> Decision:
    """The decision with every input pair and its rule made anew: nothing shared."""
    inputs = tuple((name[:], "".join(list(text))) for name, text in decision.inputs)
    return replace(decision, rule="".join(list(decision.rule)), inputs=inputs)


def test_escalation_pass_when_facts_released_then_same_decisions_and_state(
    policies: CompiledPolicySet,
) -> None:
    """Releasing the position facts before stepping changes no decision, no state and no
    restriction, with two policies reading the same facts; the facts are gone after."""
    stepped = 0
    for snapshot, state in _ticks(policies):
        now = snapshot.as_of
        kept = passes.escalation_pass(policies, snapshot, build_facts(snapshot), state, now)
        facts = build_facts(snapshot)
        released = passes.escalation_pass(policies, snapshot, facts, state, now, release=True)
        assert _dicts(released.decisions) == _dicts(kept.decisions)
        assert released.escalations == kept.escalations
        assert sorted(map(repr, released.restrictions)) == sorted(map(repr, kept.restrictions))
        assert released.unevaluable == kept.unevaluable
        assert all(not item.fact for item in facts.of("position"))
        assert all(item.fact for item in facts.of("account"))  # other scopes kept
        stepped += len(kept.decisions)
    assert stepped >= 2 * COPIES * 4  # escalations on the crash day, steps down after


def test_escalation_pass_when_matched_in_small_chunks_then_same_result(
    policies: CompiledPolicySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Positions matched a chunk at a time, even one by one: the same decisions and state."""
    for snapshot, state in _ticks(policies):
        now = snapshot.as_of
        whole = passes.escalation_pass(policies, snapshot, build_facts(snapshot), state, now)
        monkeypatch.setattr(passes, "STEP_CHUNK", 1)
        one = passes.escalation_pass(policies, snapshot, build_facts(snapshot), state, now)
        monkeypatch.undo()
        assert _dicts(one.decisions) == _dicts(whole.decisions)
        assert one.escalations == whole.escalations


def test_decisions_when_same_transition_then_share_their_parts_with_output_unchanged(
    policies: CompiledPolicySet,
) -> None:
    """Decisions of the same transition share one rule string and one pair per shared
    input (atr and price per symbol, side, threshold); each serialises and is
    identified exactly as a copy whose parts are all its own."""
    crash = _crash_day()
    decisions, _ = evaluate(policies, crash, State(), crash.as_of)
    escalations = [d for d in decisions if d.kind == "escalation" and d.outcome == "escalate"]
    assert len(escalations) >= 2 * COPIES * 4
    by_transition: dict[tuple[str, str, str | None], list[Decision]] = {}
    for decision in escalations:
        key = (decision.policy, decision.rule, decision.subject.symbol)
        by_transition.setdefault(key, []).append(decision)
    for group in by_transition.values():
        assert len(group) == COPIES  # the copies of one position
        first = group[0]
        shared = {"atr", "price", "side", "threshold_atr"}
        for other in group[1:]:
            assert other.rule is first.rule
            for mine, theirs in zip(other.inputs, first.inputs, strict=True):
                assert mine == theirs
                assert (mine is theirs) == (mine[0] in shared)
            assert other.trace[0].values[0] is other.inputs[0]  # one breach pair a decision
    for decision in escalations:
        copy = _fresh_copy(decision)
        assert copy.inputs[1] is not decision.inputs[1]
        assert json.dumps(copy.to_dict()) == json.dumps(decision.to_dict())
        assert copy.id == decision.id


def _fields(condition: Condition) -> set[str]:
    if isinstance(condition, Compare):
        return {condition.field}
    if isinstance(condition, Not):
        return _fields(condition.condition)
    assert isinstance(condition, AllOf | AnyOf)
    return set().union(*(_fields(part) for part in condition.conditions))


def _near(rng: random.Random, threshold: Decimal) -> Decimal:
    """A breach at, a hair or one float ulp around `threshold`, or anywhere near it."""
    pick = rng.randrange(6)
    if pick == 0:
        return threshold
    if pick in (1, 2):
        return threshold + (Decimal("1e-20") if pick == 1 else Decimal("-1e-20"))
    if pick in (3, 4):
        return Decimal(math.nextafter(float(threshold), math.inf if pick == 3 else -math.inf))
    return max(Decimal(0), threshold + Decimal(rng.randint(-500, 500)) / 1000)


def test_escalation_rules_when_matched_on_the_breach_alone_then_same_as_full_facts(
    policies: CompiledPolicySet,
) -> None:
    """The escalation rules compare the breach alone, so a position matched on a fact of
    its breach (what lets its facts be released) matches as on its full fact — breaches
    at, a hair and one ulp around every threshold and the hysteresis floors; and the
    comparison notices a fact whose breach is off by one ulp."""
    rng = random.Random(17)
    crash = _crash_day()
    items = build_facts(crash).of("position")
    noticed = 0
    for compiled in policies.of_kind("EscalationPolicy"):
        spec = compiled.policy.spec
        assert all(
            _fields(rule.condition) == {escalation.BREACH_FIELD}
            for rule in escalation.rule_specs(spec)
        )
        edges = [level.breach_atr for level in spec.levels]
        edges += [level.breach_atr - spec.hysteresis_atr for level in spec.levels[1:]]
        breaches = [_near(rng, rng.choice(edges)) for _ in range(400)] + edges
        full = [
            {**item.fact, "position": {**item.fact["position"], "breach_atr": breach}}
            for item, breach in zip(items * len(breaches), breaches, strict=False)
        ]
        alone = [{"position": {"breach_atr": fact["position"]["breach_atr"]}} for fact in full]
        off = [
            {"position": {"breach_atr": Decimal(math.nextafter(float(edge), -math.inf))}}
            for edge in edges
        ]
        for ruleset in (compiled.rules, compiled.entry_rules):
            assert ruleset is not None
            assert ruleset.match(alone) == ruleset.match(full)
            at_edges = ruleset.match(alone[-len(edges) :])
            noticed += ruleset.match(off) != at_edges
    assert noticed  # a breach one ulp off would be caught
