"""A vectorised screen: which positions may change anything this tick, for all at once.

At 100k positions and more, building a fact and asking the rules engine for every
position costs seconds, although on a steady tick almost none changes level or trips a
breaker. This module computes, with numpy over columns of the positions' numbers
(`columns.PositionColumns`), the positions that *may* change something; only those go
the full way (facts, durable-rules, state machines, decisions). Every other position
keeps its state and makes no decision — exactly what the full path does for it, as
`escalation.change_specs` already screens held positions inside the rules engine.

Conservative by construction; when in doubt, a position goes the full way:

- a position is left out of the full path only when it is farther from every threshold
  it could cross than any float rounding could matter: its metrics are computed in
  float64 here and compared with a margin of 1e-9 relative to the magnitudes involved
  (the operands, the threshold), about a million times the worst rounding of a few
  float operations. The decision itself is unchanged: the full path compares the
  Decimal metric with the rule as today, in durable-rules;
- options (rolled by delta), positions whose account or market data is missing, whose
  breach cannot be measured, that have an operator's manual escalation, a position
  breaker state or a pending breaker reset, always go the full way;
- a breaker condition over a metric this screen does not compute (anything but
  `position.loss_pct`, `unrealized_profit_pct`, `breach_atr`) sends every position its
  policy governs the full way; a policy set that tracks high-water marks (a trailing
  stop) is not screened at all (`screen` returns None).

tests/engine/test_screen.py evaluates random snapshots and states, with values at
and one ulp around every threshold, with and without the screen: the same decisions
and the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import repeat
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from bastion.engine.decision import Subject
from bastion.engine.evaluation import high_water
from bastion.engine.evaluation.breakers import ManualReset
from bastion.engine.evaluation.columns import PositionColumns, position_columns
from bastion.engine.evaluation.compiled import CompiledPolicy, CompiledPolicySet
from bastion.engine.evaluation.facts import SubjectFacts
from bastion.engine.evaluation.passes import HALT_NEW_POSITIONS, PassResult, assign
from bastion.engine.policy.kinds import breakers as kind
from bastion.engine.snapshot import Position, Snapshot
from bastion.engine.state import EscalationState, State

Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]
MARGIN = 1e-9  # relative; float64 rounding of these few operations is ~1e-15


@dataclass(frozen=True, slots=True)
class Screened:
    """The positions that go the full way, and what the others carry over unchanged."""

    positions: tuple[Position, ...]  # in snapshot order
    carried: PassResult  # escalation states kept, and the restrictions they imply
    columns: PositionColumns


def screen(
    policies: CompiledPolicySet,
    snapshot: Snapshot,
    state: State,
    resets: Sequence[ManualReset] = (),
) -> Screened | None:
    """The screened evaluation of `snapshot`, or None when this policy set is not screened.

    Needs no clock: a position whose state may move with time alone (a breaker cooling
    down, a manual escalation expiring) has state, and goes the full way."""
    if high_water.needs_marks(policies):
        return None  # a trailing stop's metric depends on marks tracked per position
    columns = position_columns(snapshot)
    if columns.size == 0:
        return Screened((), PassResult(), columns)
    full = ~columns.plain
    full |= columns.marked(_ids_with_state(state, resets))
    escalations = policies.of_kind("EscalationPolicy")
    governed = _assignments(escalations, columns, policies)
    views = [_EscalationView(c, governed[c.policy.name], columns, state) for c in escalations]
    for view in views:
        full |= view.full
    breaker_policies = policies.of_kind("BreakerPolicy")
    governed = _assignments(breaker_policies, columns, policies)
    for compiled in breaker_policies:
        full |= governed[compiled.policy.name] & _breakers_may_fire(compiled, columns)
    carried = PassResult()
    skipped = ~full
    for view in views:
        view.carry(carried, skipped)
    positions = columns.positions
    chosen = tuple(positions[i] for i in np.flatnonzero(full).tolist())
    return Screened(chosen, carried, columns)


def _ids_with_state(state: State, resets: Sequence[ManualReset]) -> set[str]:
    """Positions with an operator's escalation, a breaker state or a pending reset."""
    ids = set(state.manual_escalations)
    for key in state.breakers:
        subject = key.partition("@")[2]
        if subject.startswith("position:"):
            ids.add(subject[len("position:") :])
    ids.update(r.subject[len("position:") :] for r in resets if r.subject.startswith("position:"))
    return ids


def _assignments(
    compiled: Sequence[CompiledPolicy], columns: PositionColumns, policies: CompiledPolicySet
) -> dict[str, Mask]:
    """Which positions each policy of one kind evaluates: `passes.assign`, once per
    distinct (account type, symbol, strategy) of the positions, with the same cache."""
    probes = [
        SubjectFacts(_PROBE, {}, account_type, symbol, strategy)
        for account_type, symbol, strategy in columns.coordinates
    ]
    index = {id(probe): number for number, probe in enumerate(probes)}
    masks = {}
    for chosen, subjects in assign(compiled, probes, policies.assignments):
        governed = np.zeros(len(probes), dtype=np.bool_)
        for probe in subjects:
            governed[index[id(probe)]] = True
        masks[chosen.policy.name] = governed[columns.combo]
    return masks


_PROBE = Subject("position", "")


class _EscalationView:
    """One EscalationPolicy over every position: who may move, what the others keep."""

    def __init__(
        self, compiled: CompiledPolicy, assigned: Mask, columns: PositionColumns, state: State
    ) -> None:
        policy = compiled.policy
        self.policy = policy
        self.columns = columns
        self.assigned = assigned
        self.enforce = policy.mode == "enforce"
        chosen = np.flatnonzero(self.assigned & columns.plain)
        self.chosen = chosen
        ids = columns.ids
        if self.enforce:
            keys = ids if len(chosen) == len(ids) else list(map(ids.__getitem__, chosen.tolist()))
        else:
            keys = [f"{ids[i]}@{policy.name}" for i in chosen.tolist()]
        self.keys = keys
        # The state under each key (_ABSENT: none), and its level (-1: none).
        self.previous = list(map(state.escalations.get, keys, repeat(_ABSENT)))
        self.level = np.fromiter(map(_LEVEL, self.previous), np.int64, len(self.previous))
        self.full = np.zeros(columns.size, dtype=np.bool_)
        if policy.spec.reference != "entry_price":
            self.full |= self.assigned  # unmeasurable every tick: the full path says so
            return
        self.full[chosen] = self._may_move(chosen)

    def _may_move(self, chosen: npt.NDArray[np.intp]) -> Mask:
        spec = self.policy.spec
        levels = spec.levels
        top = len(levels) - 1
        level = np.minimum(self.level, top)  # as the evaluator reads a removed level
        # Thresholds by current level + 1 (0: no state, level 0 with nothing to step down).
        up = [float(min(lv.breach_atr for lv in levels[1:])) if top > 0 else np.inf]
        down = [-np.inf]
        for current, at in enumerate(levels):
            above = levels[current + 1 :]
            up.append(float(min(lv.breach_atr for lv in above)) if above else np.inf)
            down.append(float(at.breach_atr - spec.hysteresis_atr) if current > 0 else -np.inf)
        up_at, down_at = np.array(up)[level + 1], np.array(down)[level + 1]
        breach, tolerance = self.columns.breach()
        value, slack = breach[chosen], tolerance[chosen]
        measurable = self.columns.measurable[chosen]
        may_up = ~(value + slack + MARGIN * np.abs(np.where(np.isinf(up_at), 0, up_at)) < up_at)
        may_down = ~(
            value - slack - MARGIN * np.abs(np.where(np.isinf(down_at), 0, down_at)) >= down_at
        )
        moving: Mask = ~measurable | may_up | may_down
        return moving

    def carry(self, result: PassResult, skipped: Mask) -> None:
        """Skipped positions keep their state (a level above 0: level 0 needs no memory);
        at a halting level they still restrict their account, in the words of
        `passes._halt_new_positions`."""
        kept = skipped[self.chosen] & (self.level > 0)
        at = np.flatnonzero(kept).tolist()
        keys, previous = self.keys, self.previous
        result.escalations.update(
            zip(map(keys.__getitem__, at), map(previous.__getitem__, at), strict=True)
        )
        levels = self.policy.spec.levels
        top = len(levels) - 1
        halting = [i for i, lv in enumerate(levels) if HALT_NEW_POSITIONS in lv.actions]
        if not self.enforce or not halting:
            return
        halted = kept & np.isin(np.minimum(self.level, top), halting)
        name, ids, accounts = self.policy.name, self.columns.ids, self.columns.account_ids
        chosen = self.chosen
        shown = {at: f" at level {levels[at].name} ({HALT_NEW_POSITIONS})" for at in halting}
        affected: dict[str, frozenset[str]] = {}
        for i in np.flatnonzero(halted).tolist():
            state = previous[i]
            if state.policy != name:
                continue
            number = int(chosen[i])
            account = accounts[number]
            if account not in affected:
                affected[account] = frozenset({account})
            why = f"escalation {name}: {ids[number]}{shown[min(state.level, top)]}"
            result.restrictions.append((affected[account], "REDUCING", why))


_ABSENT = EscalationState(-1, "", datetime.min.replace(tzinfo=UTC), Decimal(0), "")
_LEVEL = attrgetter("level")


def _breakers_may_fire(compiled: CompiledPolicy, columns: PositionColumns) -> Mask:
    """Positions for which some position breaker of the policy may fire (or lacks data)."""
    spec = compiled.breakers
    members = spec.by_scope.get("position", ()) if spec is not None else ()
    may = np.zeros(columns.size, dtype=np.bool_)
    for breaker in members:
        may |= _may_be(breaker.condition, columns)[0]
    return may


def _may_be(condition: kind.Condition, columns: PositionColumns) -> tuple[Mask, Mask]:
    """(may hold, may not hold) for every position, in three-valued logic: a comparison
    within the margin of its threshold, or over a metric not computed here, may do both."""
    if isinstance(condition, kind.Compare):
        metric = columns.metric(condition.metric)
        if metric is None:
            everyone = np.ones(columns.size, dtype=np.bool_)
            return everyone, everyone
        value, slack = metric
        threshold = float(condition.value)
        margin = slack + MARGIN * abs(threshold)
        return _compare(condition.op, value, margin, threshold)
    if isinstance(condition, kind.Not):
        holds, fails = _may_be(condition.condition, columns)
        return fails, holds
    parts = [_may_be(child, columns) for child in condition.conditions]
    if isinstance(condition, kind.AllOf):
        return _all([h for h, _ in parts]), _any([f for _, f in parts])
    return _any([h for h, _ in parts]), _all([f for _, f in parts])


def _compare(op: str, value: Floats, margin: Floats, threshold: float) -> tuple[Mask, Mask]:
    """Written as negations of "surely", so that a NaN reads as "may" both ways."""
    low, high = value - margin, value + margin
    if op == ">=":
        return ~(high < threshold), ~(low >= threshold)
    if op == ">":
        return ~(high <= threshold), ~(low > threshold)
    if op == "<":
        return ~(low >= threshold), ~(high < threshold)
    if op == "<=":
        return ~(low > threshold), ~(high <= threshold)
    apart = np.abs(value - threshold) > margin
    everyone = np.ones(value.shape, dtype=np.bool_)
    if op == "==":
        return ~apart, everyone
    return everyone, ~apart  # !=


def _all(masks: list[Mask]) -> Mask:
    result = masks[0].copy()
    for mask in masks[1:]:
        result &= mask
    return result


def _any(masks: list[Mask]) -> Mask:
    result = masks[0].copy()
    for mask in masks[1:]:
        result |= mask
    return result
