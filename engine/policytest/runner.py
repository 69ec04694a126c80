"""Run a test file's tests, step by step, through `evaluate` and `can_execute`.

Each test starts from an empty state; each step builds its snapshot (a whole one, or
the previous one with edits), applies the manual resets, evaluates at the step's time,
compares the outcome, then checks its orders (each on the state the previous left). A
test stops at its first failing step: later steps build on it. What fired on the way
is collected for coverage.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bastion.engine.authority import can_execute
from bastion.engine.authority.check import resolve_account
from bastion.engine.authority.request import RequestError, request_from_dict
from bastion.engine.decision import Decision
from bastion.engine.errors import BastionError, SnapshotError
from bastion.engine.evaluation.breakers import ManualReset
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.policy.yamlsource import load_documents
from bastion.engine.policytest.delta import EditError, apply_edit
from bastion.engine.policytest.expect import (
    Known,
    Mismatch,
    compare_check,
    compare_state,
    missing_rules,
    unknown_name,
)
from bastion.engine.policytest.model import PolicyTestCase, Step, TestFile, TestFileError
from bastion.engine.snapshot import Snapshot
from bastion.engine.snapshot.validate import parse_json, read_text
from bastion.engine.state import State

FiredKey = tuple[str, str, str]  # (kind, policy, rule): ("breaker", "default-breakers", "drawdown")


@dataclass(frozen=True, slots=True)
class TestResult:
    __test__ = False  # not a pytest class

    file: str
    suite: str
    name: str
    passed: bool
    steps_run: int
    step: int | None = None  # 1-based, the failing step
    step_name: str = ""
    place: str = ""  # file:line:col of the failing step
    mismatches: tuple[Mismatch, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. an evaluation error's reason


@dataclass(slots=True)
class Fired:
    """What fired during a run (for coverage)."""

    keys: set[FiredKey] = field(default_factory=set)

    def decisions(self, decisions: tuple[Decision, ...]) -> None:
        for decision in decisions:
            if decision.kind == "breaker" and decision.outcome == "trip":
                self.keys.add(("breaker", decision.policy, decision.rule))
            elif decision.kind == "protection":
                self.keys.add(("protection", decision.policy, _history(decision.rule)))

    def escalations(self, state: State) -> None:
        for escalation in state.escalations.values():
            self.keys.add(("escalation", escalation.policy, escalation.level_name))

    def check(
        self, policy: str, blocking: tuple[str, ...], failed: list[str], override: bool
    ) -> None:
        for policy_name in policy.split("+"):
            for name in {*blocking, *failed}:
                kind = "limit" if name.startswith("limit.") else "protection"
                self.keys.add((kind, policy_name, name))
            if override:
                self.keys.add(("protection", policy_name, "regime_override"))


def _history(rule: str) -> str:
    return rule if rule.startswith("history.") else f"history.{rule}"


def read_snapshot_data(source: str | Mapping[str, Any], test_file: TestFile, place: Any) -> Any:
    """A step's whole snapshot as JSON data: a file relative to the test file, or inline."""
    if not isinstance(source, str):
        return _jsonable(source)
    path = test_file.resolve(source)
    try:
        text = read_text(path, "the snapshot", SnapshotError)
        if path.suffix in (".yaml", ".yml"):
            return _jsonable(load_documents(text, str(path))[0].data)
        return _jsonable(parse_json(text, str(path), SnapshotError))
    except (BastionError, IndexError) as error:  # unreadable, invalid, or an empty YAML
        raise place.error(f"snapshot {source}: {error}") from error


def _jsonable(data: Any) -> Any:
    """Deep copy with Decimals as text (what Snapshot.from_dict reads back exactly)."""
    if isinstance(data, dict):
        return {key: _jsonable(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_jsonable(value) for value in data]
    if isinstance(data, bool | int | str) or data is None:
        return data
    return str(data)


class _Run:
    def __init__(self, test_file: TestFile, compiled: CompiledPolicySet, fired: Fired) -> None:
        self.file = test_file
        self.compiled = compiled
        self.fired = fired
        levels = [
            policy.policy.spec.levels[0].name
            for policy in compiled.of_kind("EscalationPolicy")
            if policy.policy.spec.levels
        ]
        self.base_level = levels[0] if levels else "none"
        self.breaker_ids = frozenset(
            breaker.id
            for policy in compiled.of_kind("BreakerPolicy")
            for breaker in policy.policy.spec.breakers
        )
        self.history_ids = frozenset(
            entry.id
            for policy in compiled.of_kind("ProtectionPolicy")
            for entry in policy.policy.spec.history
        )

    def _check_names(self, step: Step, snapshot: Snapshot) -> list[Mismatch]:
        """Names the snapshot lacks break the file; rules the set lacks fail the test."""
        known = Known(
            positions=frozenset(p.id for p in snapshot.positions),
            accounts=frozenset(a.id for a in snapshot.accounts),
            symbols=frozenset(snapshot.market) | {p.symbol for p in snapshot.positions},
            breakers=self.breaker_ids,
            history=self.history_ids,
        )
        for category, entries in step.expect.items():
            for key in entries:
                problem = unknown_name(category, key, known)
                if problem is not None:
                    raise step.place.error(f"expect.{category}: {problem}")
        return missing_rules(step.expect, known)

    def test(self, test: PolicyTestCase) -> TestResult:
        state = State()
        data: Any = None
        now: datetime | None = None
        for number, step in enumerate(test.steps, start=1):
            data, now = self._snapshot(step, data, now, first=number == 1)
            try:
                snapshot = Snapshot.from_dict(data, source=str(step.place))
            except SnapshotError as error:
                raise step.place.error(f"the step's snapshot is invalid: {error}") from error
            mismatches, notes, state = self._step(step, snapshot, state, now)
            if mismatches:
                return TestResult(
                    str(self.file.path),
                    self.file.name,
                    test.name,
                    False,
                    number,
                    number,
                    step.name,
                    str(step.place),
                    tuple(mismatches),
                    tuple(notes),
                )
        return TestResult(str(self.file.path), self.file.name, test.name, True, len(test.steps))

    def _snapshot(
        self, step: Step, previous: Any, now: datetime | None, *, first: bool
    ) -> tuple[Any, datetime]:
        source = step.snapshot
        if source is None and first:
            source = self.file.snapshot
        if source is not None:
            data = read_snapshot_data(source, self.file, step.place)
        elif previous is not None:
            data = copy.deepcopy(previous)
        else:
            raise step.place.error(
                "the first step needs a snapshot: give `snapshot:` in the step or at the top"
            )
        for line, place in step.edits:
            try:
                apply_edit(data, line)
            except EditError as error:
                raise place.error(str(error)) from error
            except (KeyError, TypeError) as error:
                raise place.error(f"{line!r}: the snapshot lacks {error}") from error
        when = self._time(step, data, now, given=source is not None)
        if step.at is not None or step.after is not None:
            data["as_of"] = when.isoformat()
        return data, when

    def _time(self, step: Step, data: Any, now: datetime | None, *, given: bool) -> datetime:
        if step.at is not None:
            when = step.at
        elif step.after is not None:
            if now is None:
                raise step.place.error("`after` needs a previous step; use `at` on the first")
            when = now + step.after
        elif given or now is None:
            try:
                when = datetime.fromisoformat(str(data["as_of"]).replace("Z", "+00:00"))
            except (KeyError, ValueError) as error:
                raise step.place.error("the snapshot has no valid as_of") from error
        else:
            when = now
        if now is not None and when < now:
            raise step.place.error(
                f"time goes back from {now.isoformat()} to {when.isoformat()}: steps run "
                "forward in time"
            )
        return when

    def _step(
        self, step: Step, snapshot: Snapshot, state: State, now: datetime
    ) -> tuple[list[Mismatch], list[str], State]:
        resets = []
        for reset in step.resets:
            breaker, _, subject = reset.breaker.partition("@")
            resets.append(ManualReset(breaker, subject, reset.by, reset.reason))
        missing = self._check_names(step, snapshot)
        notes: list[str] = []
        if step.evaluate:
            decisions, state = evaluate(self.compiled, snapshot, state, now, resets=resets)
            self.fired.decisions(decisions)
            self.fired.escalations(state)
            notes += [
                f"{d.kind}/{d.rule}: {'; '.join(d.reasons)}"
                for d in decisions
                if d.kind == "evaluation"
            ]
        elif resets:
            raise step.place.error("a reset takes effect in an evaluation: drop `evaluate: false`")
        mismatches = missing + [
            mismatch
            for mismatch in compare_state(step.expect, state, now, self.base_level)
            if mismatch.what not in {m.what for m in missing}
        ]
        for check in step.checks:
            try:
                request = request_from_dict(check.order, source=str(check.place))
            except RequestError as error:
                raise check.place.error(f"the order is invalid: {error}") from error
            try:
                resolve_account(snapshot, request.account_id)
            except LookupError as error:  # a typo, not a denial
                raise check.place.error(f"the order's account: {error}") from error
            for _ in range(check.repeat):
                answer = can_execute(self.compiled, request, snapshot, state, now)
                state = answer.state
                failed = [c.name for c in answer.checks if not c.passed]
                self.fired.check(
                    answer.decision.policy, answer.blocking, failed, answer.override_applied
                )
            mismatches += compare_check(check.name, check.expect, answer)
        return mismatches, notes, state


def run_file(
    test_file: TestFile, compiled: CompiledPolicySet, fired: Fired
) -> tuple[list[TestResult], list[TestFileError]]:
    """Every test of the file that could be built, and the problems of those that could
    not (a step's snapshot, edit or order is broken: exit 2)."""
    run = _Run(test_file, compiled, fired)
    results, broken = [], []
    for test in test_file.tests:
        try:
            results.append(run.test(test))
        except TestFileError as error:
            broken.append(error)
    return results, broken


def policies_of(test_file: TestFile, override: str | Path | None) -> Path:
    return Path(override).resolve() if override is not None else test_file.policies


__all__ = ["Fired", "TestFileError", "TestResult", "policies_of", "read_snapshot_data", "run_file"]
