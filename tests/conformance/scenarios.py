"""The conformance scenarios: read from scenarios/<engine>.yaml, replayed through Bastion.

One file per engine. Its header names the engine, the repository and commit the source
tests were read at, and the source file; `defaults` holds the source test fixture in
Bastion terms (merged under every scenario). Each scenario cites the test(s) it
re-expresses and the engine's own expected outcome, and says how it stands:

- passes: Bastion gives the engine's outcome;
- differs: Bastion deliberately decides otherwise (`note` says how); the steps assert
  Bastion's outcome, and a sibling scenario usually shows the setting that agrees;
- waits: written against a control another helper is adding (`waits_for`); replayed,
  and expected to fail (strict xfail) until that control lands;
- part 2 / not expressible / not mapped: listed (with `note`), not replayed.

Steps run in order, threading the engine state:

- `check`: can_execute for an order that is then sent (the answer's state is kept:
  submit rate, pending exposure); `ask`: one that is not (a question, like
  Authority.check: nothing remembered); `repeat` asks N times, each answer checked,
  target_size growing by `grow` each time;
- `list` / `ask_list`: an order list (`id`, `contingency`, `orders` with their `role`)
  checked by check_list, sent or asked; `expect` names the list's outcome, each leg's
  (`legs`) and the list's blocking (`orders[i]:name`);
- `evaluate`: an evaluation cycle (breakers, history-protection locks);
- `load`: a policy set that the loader must refuse or accept.

`at_min` / `at_s` move the clock (from the scenario's `now`); `snapshot` changes the
snapshot from that step on (build.advanced).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bastion.engine.authority import can_execute
from bastion.engine.authority.check import ExecutionDecision
from bastion.engine.authority.order_list_check import ListDecision, check_list
from bastion.engine.decision import Decision
from bastion.engine.errors import PolicyError
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.state import State
from tests.conformance import build

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
REPLAYED = ("passes", "differs", "waits")
LISTED = ("part 2", "not expressible", "not mapped")
STATUSES = REPLAYED + LISTED


@dataclass(frozen=True)
class Scenario:
    engine: str
    repository: str
    commit: str
    source: str  # file in the engine's repository
    id: str
    tests: tuple[str, ...]  # the source tests (Class::test or Class.Method / case)
    engine_outcome: str
    status: str
    note: str = ""
    waits_for: str = ""
    now: datetime = build.NOW_DEFAULT
    policies: Mapping[str, Any] = field(default_factory=dict)
    snapshot: Mapping[str, Any] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[Mapping[str, Any], ...] = ()

    @property
    def replayed(self) -> bool:
        return self.status in REPLAYED


def load(path: Path) -> list[Scenario]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    defaults = document.get("defaults", {})
    found = []
    for item in document["scenarios"]:
        tests = item.get("tests", item.get("test"))
        status = item["status"]
        if status not in STATUSES:
            raise ValueError(f"{path.name}: {item['id']}: status {status!r} not in {STATUSES}")
        now = item.get("now", defaults.get("now", build.NOW_DEFAULT))
        found.append(
            Scenario(
                engine=document["engine"],
                repository=document["repository"],
                commit=document["commit"],
                source=item.get("source", document["source"]),
                id=item["id"],
                tests=tuple([tests] if isinstance(tests, str) else tests),
                engine_outcome=item.get("engine_outcome", ""),
                status=status,
                note=item.get("note", ""),
                waits_for=item.get("waits_for", ""),
                now=now if isinstance(now, datetime) else datetime.fromisoformat(str(now)),
                policies=build.merged(defaults.get("policies", {}), item.get("policies", {})),
                snapshot=build.merged(defaults.get("snapshot", {}), item.get("snapshot", {})),
                state=item.get("state", {}),
                steps=tuple(item.get("steps", ())),
            )
        )
    return found


def load_all() -> list[Scenario]:
    return [s for path in sorted(SCENARIOS.glob("*.yaml")) for s in load(path)]


# -- replay ------------------------------------------------------------------------------


def replay(scenario: Scenario, policies: build.PolicyCache) -> None:
    """Run every step; an AssertionError names the step and what differed."""
    compiled = policies.get(scenario.policies)
    spec: Mapping[str, Any] = scenario.snapshot
    memory = build.state(scenario.state)
    for number, step in enumerate(scenario.steps, 1):
        at = scenario.now + timedelta(
            minutes=float(step.get("at_min", 0)), seconds=float(step.get("at_s", 0))
        )
        if "snapshot" in step:
            spec = build.advanced(spec, step["snapshot"])
        snap = build.snapshot(spec, at, scenario.now)
        where = f"{scenario.id} step {number} ({step.get('say', '')})"
        expect = step.get("expect", {})
        if "check" in step or "ask" in step:
            asked = step.get("check", step.get("ask"))
            for attempt in range(int(step.get("repeat", 1))):
                request = build.order(_grown(asked, step.get("grow", 0), attempt))
                result = can_execute(compiled, request, snap, memory, at)
                _check_answer(result, expect, f"{where}, attempt {attempt + 1}")
                if "check" in step:  # an order sent: remembered (rate, pending exposure)
                    memory = result.state
        elif "list" in step or "ask_list" in step:
            document = step.get("list", step.get("ask_list"))
            listed = check_list(compiled, build.order_list(document), snap, memory, at)
            _check_list(listed, expect, where)
            if "list" in step:  # sent: every leg remembered when the list is approved
                memory = listed.state
        elif "evaluate" in step:
            decisions, memory = evaluate(compiled, snap, memory, at)
            _check_evaluation(decisions, memory, expect, where)
        elif "load" in step:
            _check_load(policies, step["load"], expect, where)
        else:
            raise ValueError(
                f"{where}: a step needs `check`, `ask`, `list`, `ask_list`, `evaluate` or `load`"
            )


def _grown(request: Mapping[str, Any], grow: Any, attempt: int) -> dict[str, Any]:
    """The request of a repeated step's `attempt`: target_size grown by `grow` each time
    (back-to-back increases of one position, each on top of the last approved one)."""
    grown = dict(request)
    if grow:
        grown["target_size"] = Decimal(str(request["target_size"])) + Decimal(str(grow)) * attempt
    return grown


def _check_answer(result: ExecutionDecision, expect: Mapping[str, Any], where: str) -> None:
    said = f"{where}: {result.outcome} {result.approved_size} {result.blocking} {result.reasons}"
    if "outcome" in expect:
        assert result.outcome == expect["outcome"], said
    if "size" in expect:
        assert result.approved_size == Decimal(str(expect["size"])), said
    if "blocking" in expect:
        assert result.blocking == tuple(expect["blocking"]), said
    for part in _listed(expect.get("blocking_contains")):
        assert any(part in name for name in result.blocking), said
    for part in _listed(expect.get("reason_contains")):
        assert part in result.reason, said


def _check_list(listed: ListDecision, expect: Mapping[str, Any], where: str) -> None:
    """An order list: the list's outcome, each leg's, the list's blocking names."""
    legs = [leg.outcome for leg in listed.legs]
    said = f"{where}: {listed.outcome} legs {legs} {listed.blocking} {listed.reasons}"
    if "outcome" in expect:
        assert listed.outcome == expect["outcome"], said
    if "legs" in expect:
        assert legs == list(expect["legs"]), said
    if "blocking" in expect:
        assert listed.blocking == tuple(expect["blocking"]), said
    for part in _listed(expect.get("blocking_contains")):
        assert any(part in name for name in listed.blocking), said
    for part in _listed(expect.get("reason_contains")):
        assert any(part in reason for reason in listed.reasons), said


def _check_evaluation(
    decisions: Sequence[Decision], state: State, expect: Mapping[str, Any], where: str
) -> None:
    trips = sorted(
        f"{d.rule} {d.subject.label()} {'+'.join(d.actions)}"
        for d in decisions
        if d.kind == "breaker" and d.outcome == "trip"
    )
    locked = sorted(d.rule for d in decisions if d.kind == "protection" and d.outcome == "locked")
    said = f"{where}: trips {trips}, locks made {locked}, states {dict(state.trading_states)}"
    if "trips" in expect:
        assert trips == sorted(expect["trips"]), said
    if "locked" in expect:
        assert locked == sorted(expect["locked"]), said
    for account, trading_state in expect.get("trading_states", {}).items():
        assert state.trading_state(account) == trading_state, said


def _check_load(
    policies: build.PolicyCache, changes: Mapping[str, Any], expect: Mapping[str, Any], where: str
) -> None:
    """The policy loader refuses (or accepts) a policy set, as the engine's config check does."""
    try:
        policies.get(changes)
    except PolicyError as error:
        assert expect.get("refused"), f"{where}: refused: {error}"
    else:
        assert not expect.get("refused"), f"{where}: accepted"


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
