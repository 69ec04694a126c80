"""The evaluation passes: escalation, roll triggers, circuit breakers.

Each pass assigns subjects to the policies that govern them (policy/select.py;
shadow policies evaluate every subject they cover, beside the governing one),
asks the compiled rulesets which conditions hold, and steps the state machines.
A pass returns its decisions and the pieces of the new state it owns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from bastion.engine.decision import Check, Decision, Subject, values_of
from bastion.engine.errors import SnapshotError
from bastion.engine.evaluation import breakers, escalation, roll_rules
from bastion.engine.evaluation.compiled import CompiledBreakers, CompiledPolicy, CompiledPolicySet
from bastion.engine.evaluation.facts import Fact, Facts, SubjectFacts
from bastion.engine.indicators.greeks import OptionType
from bastion.engine.policy.kinds.breakers import Breaker
from bastion.engine.policy.model import Policy
from bastion.engine.policy.select import governing
from bastion.engine.roll import (
    OptionLeg,
    RollAnalysis,
    Side,
    analyse_roll,
    find_chain,
    leg_abs_delta,
)
from bastion.engine.snapshot import Position, Snapshot
from bastion.engine.state import ARMED, BreakerState, EscalationState, ManualEscalation, State

_NO_GROUP: dict[str, object] = {}
BREACH = escalation.BREACH_FIELD.split(".", 1)[1]  # "breach_atr", in the "position" group
ASSIGNMENT_CACHE = 65_536  # (kind, account type, symbol, strategy) keys per policy set


@dataclass(slots=True)
class PassResult:
    decisions: list[Decision] = field(default_factory=list)
    escalations: dict[str, EscalationState] = field(default_factory=dict)
    breakers: dict[str, BreakerState] = field(default_factory=dict)
    roll_urgencies: dict[str, str] = field(default_factory=dict)
    unevaluable: set[str] = field(default_factory=set)
    # (account ids or None for all accounts, trading state, why) from enforce-mode policies
    restrictions: list[tuple[frozenset[str] | None, str, str]] = field(default_factory=list)
    halted_symbols: set[str] = field(default_factory=set)
    reducing_symbols: set[str] = field(default_factory=set)


def assign(
    compiled: Sequence[CompiledPolicy],
    subjects: Iterable[SubjectFacts],
    cache: dict[tuple[object, ...], tuple[str, ...]] | None = None,
) -> list[tuple[CompiledPolicy, list[SubjectFacts]]]:
    """Each policy with the subjects it evaluates, in policy order.

    Which policies evaluate a subject depends only on its coordinates (account type,
    symbol, strategy): decided once per combination, and kept in `cache` (the compiled
    set's `assignments`) from one evaluation to the next.
    """
    if not compiled:
        return []
    chosen = cache if cache is not None else {}
    if len(chosen) >= ASSIGNMENT_CACHE:  # bounded: symbols are unbounded
        chosen.clear()
    by_name: dict[str, list[SubjectFacts]] = {c.policy.name: [] for c in compiled}
    kind = compiled[0].policy.kind  # one kind per call
    enforce: list[Policy] | None = None
    shadow: list[Policy] = []
    for item in subjects:
        account_type, symbol, strategy = item.account_type, item.symbol, item.strategy
        coordinates = (kind, account_type, symbol, strategy)
        names = chosen.get(coordinates)
        if names is None:  # many subjects share coordinates: decide once per combination
            if enforce is None:
                enforce = [c.policy for c in compiled if c.policy.mode == "enforce"]
                shadow = [c.policy for c in compiled if c.policy.mode == "shadow"]
            governor = governing(
                enforce, account_type=account_type, symbol=symbol, strategy=strategy
            )
            picked = [governor.name] if governor is not None else []
            picked += [
                p.name
                for p in shadow
                if p.scope.covers(account_type=account_type, symbol=symbol, strategy=strategy)
            ]
            names = chosen[coordinates] = tuple(picked)
        for name in names:
            by_name[name].append(item)
    return [(c, by_name[c.policy.name]) for c in compiled]


def _key(policy: Policy, subject_id: str) -> str:
    return subject_id if policy.mode == "enforce" else f"{subject_id}@{policy.name}"


def _unevaluable(
    result: PassResult,
    state: State,
    key: str,
    decision: Decision,
    accounts: frozenset[str] | None,
) -> None:
    """Record a check that lacked data; fail safe: no new risk where it applied."""
    result.unevaluable.add(key)
    if key not in state.unevaluable:
        result.decisions.append(decision)
    if decision.mode != "enforce":
        return
    if decision.subject.scope == "symbol" and decision.subject.symbol:
        result.reducing_symbols.add(decision.subject.symbol)
    else:
        result.restrictions.append((accounts, "REDUCING", decision.reasons[0]))


def escalation_pass(
    policies: CompiledPolicySet,
    snapshot: Snapshot,
    facts: Facts,
    state: State,
    now: datetime,
    *,
    release: bool = False,
) -> PassResult:
    """Each position's escalation level, and a decision for every change.

    Every policy's positions are sorted (measured or not, held or at level 0) and the
    held ones screened first; then the state machines step. `release`: drop the
    position facts (`Facts.release`) in between — they are read no more, only each
    position's breach, kept beside it — for a caller whose later passes read no
    position fact (evaluate). On a crash day, half the book escalating at once, the
    facts and the decisions are then not held together (the facts: ~0.4 GB at 1M)."""
    result = PassResult()
    positions = facts.positions
    steps: list[_Steps] = []
    for compiled, subjects in assign(
        policies.of_kind("EscalationPolicy"), facts.of("position"), policies.assignments
    ):
        policy, rules = compiled.policy, compiled.rules
        entry_rules, change_rules = compiled.entry_rules, compiled.change_rules
        assert rules is not None and entry_rules is not None and change_rules is not None
        enforce, escalated = policy.mode == "enforce", state.escalations
        # Operators' floors (enforce only: a shadow policy never moves the real level).
        manual = (
            {k: m for k, m in state.manual_escalations.items() if m.active(now)} if enforce else {}
        )
        from_entry = policy.spec.reference == "entry_price"
        top = len(policy.spec.levels) - 1
        held: list[_Held] = []  # positions with a level in the state
        fresh: list[_Entry] = []  # positions at level 0
        for item in subjects:
            position = positions[item.subject.id]
            if position.option is not None:
                continue  # options are governed by their delta (RollPolicy), not by ATRs
            value = item.fact["position"].get("breach_atr")  # measured from the entry price
            key = position.id if enforce else _key(policy, position.id)
            if value is None or not from_entry:
                why = _unmeasurable(policy, position, snapshot)
                decision = _unevaluable_decision(
                    policy, item.subject, "breach", "measure the breach", why, now
                )
                account = frozenset({position.account_id})
                _unevaluable(result, state, f"escalation:{key}", decision, account)
            elif (previous := escalated.get(key)) is not None:
                held.append((item, position, value, key, previous))
            else:
                fresh.append((item, position, value, key, None))
        # Screen the held positions first (escalation.change_specs): one that matches no
        # rule keeps its level and its state, and needs neither the full match nor a step.
        screen = change_rules.match(
            [
                {"position": item.fact["position"], "escalation": {"level": min(top, old.level)}}
                for item, _, _, _, old in held
            ]
        )
        moving = []
        for entry, flags in zip(held, screen, strict=True):
            if flags or entry[3] in manual:  # a floor may hold or lift it: stepped
                moving.append(entry)
            elif entry[4].level > 0:
                result.escalations[entry[3]] = entry[4]
        steps.append((compiled, held, moving, fresh, manual))
    if release:
        facts.release("position")
    # The steps read only the breaches: each policy's positions go separate ways (keys
    # of its own), and the order of the restrictions decides nothing.
    for compiled, held, moving, fresh, manual in steps:
        policy, rules, entry_rules = compiled.policy, compiled.rules, compiled.entry_rules
        assert rules is not None and entry_rules is not None
        _step_escalations(result, policy, snapshot, moving, rules.match, now, manual)
        _step_escalations(result, policy, snapshot, fresh, entry_rules.match, now, manual)
        if policy.mode == "enforce":
            _halt_new_positions(result, policy, [entry[1] for entry in (*held, *fresh)])
    return result


HALT_NEW_POSITIONS = "halt_new_positions"


def _halt_new_positions(result: PassResult, policy: Policy, measured: list[Position]) -> None:
    """While a position is at a level whose actions include halt_new_positions, its
    account takes no new risk (REDUCING), as when an evaluation fails safe; the level's
    other actions are instructions to the desk, shown in the escalation decision."""
    levels = policy.spec.levels
    halting = {i for i, level in enumerate(levels) if HALT_NEW_POSITIONS in level.actions}
    if not halting:
        return
    for position in measured:
        escalated = result.escalations.get(position.id)
        if escalated is None or escalated.policy != policy.name:
            continue
        number = min(escalated.level, len(levels) - 1)
        if number in halting:
            why = (
                f"escalation {policy.name}: {position.id} at level {levels[number].name} "
                f"({HALT_NEW_POSITIONS})"
            )
            result.restrictions.append((frozenset({position.account_id}), "REDUCING", why))


# (subject, position, breach in ATRs, state key, previous state)
_Entry = tuple[SubjectFacts, Position, Decimal, str, EscalationState | None]
_Held = tuple[SubjectFacts, Position, Decimal, str, EscalationState]
# (policy, held, of them those that may move, at level 0, the operators' floors)
_Steps = tuple[CompiledPolicy, list[_Held], list[_Held], list[_Entry], dict[str, ManualEscalation]]
STEP_CHUNK = 4096  # positions matched at a time: the engine's answers are held per chunk


def _step_escalations(
    result: PassResult,
    policy: Policy,
    snapshot: Snapshot,
    group: Sequence[_Entry],
    match: Callable[[list[Fact]], list[frozenset[str]]],
    now: datetime,
    manual: Mapping[str, ManualEscalation],
) -> None:
    # The escalation rules compare the breach alone (escalation.rule_specs): each
    # position is matched on a fact of its breach, its own facts may be released. In
    # chunks: a crash day matches half the book, and each match is a set of rule ids.
    for start in range(0, len(group), STEP_CHUNK):
        chunk = group[start : start + STEP_CHUNK]
        matches = match([{"position": {BREACH: entry[2]}} for entry in chunk])
        for (item, position, value, key, previous), matched in zip(chunk, matches, strict=True):
            floor = manual.get(key)
            if not matched and previous is None and floor is None:
                continue  # at level 0 and no threshold reached: nothing changes
            record = _breach_record(policy, position, snapshot, value)
            new, change = escalation.step(
                policy, item.subject, record, matched, previous, now, floor
            )
            if new.level > 0:  # level 0 needs no memory: nothing to step down from
                result.escalations[key] = new
            if change is not None:
                result.decisions.append(change)


def _unmeasurable(policy: Policy, position: Position, snapshot: Snapshot) -> str:
    """Why the position's breach cannot be measured for this policy."""
    market = snapshot.market.get(position.symbol)
    if market is None:
        return f"no market data for {position.symbol}"
    if market.atr_usd <= 0:
        return f"ATR of {position.symbol} is {market.atr_usd}; a breach needs a positive ATR"
    return f"reference {policy.spec.reference} is not in the snapshot"


def _breach_record(
    policy: Policy, position: Position, snapshot: Snapshot, value: Decimal
) -> escalation.Breach:
    market = snapshot.market[position.symbol]
    return escalation.Breach(
        value,
        market.atr_usd,
        market.price_usd,
        position.entry_price_usd,
        position.side,
        policy.spec.reference,
    )


def _unevaluable_decision(
    policy: Policy, subject: Subject, rule: str, what: str, why: str, now: datetime
) -> Decision:
    """A check that could not be made: recorded, and no new risk for the account."""
    return Decision(
        time=now,
        kind="escalation" if policy.kind == "EscalationPolicy" else "roll",
        policy=policy.name,
        policy_version=policy.version,
        rule=rule,
        subject=subject,
        outcome="unevaluable",
        actions=(breakers.FAIL_SAFE_ACTION,),
        reasons=(
            f"cannot {what} of {subject.id}: {why}; no new risk for its account until "
            "the data is fixed",
        ),
        trace=(Check(f"can {what}", False, why),),
        mode=policy.mode,
    )


def roll_leg(position: Position) -> OptionLeg | None:
    option = position.option
    if option is None:
        return None
    return OptionLeg(
        symbol=position.symbol,
        option_type=OptionType(option.option_type),
        side=Side(position.side),
        strike=option.strike_usd,
        expiry=option.expires_at,
        quantity=abs(position.quantity),
        underlying_price=option.underlying_price_usd,
        implied_vol=option.implied_volatility,
        dividend_yield=option.dividend_yield,
        delta=option.delta,
    )


def roll_pass(
    policies: CompiledPolicySet, snapshot: Snapshot, facts: Facts, state: State, now: datetime
) -> PassResult:
    result = PassResult()
    positions = facts.positions
    for compiled, subjects in assign(
        policies.of_kind("RollPolicy"), facts.of("position"), policies.assignments
    ):
        policy, rules = compiled.policy, compiled.rules
        assert rules is not None
        legs: list[tuple[SubjectFacts, OptionLeg]] = []
        for item in subjects:
            if positions[item.subject.id].option is None:
                continue  # only option positions roll
            try:
                leg = roll_leg(positions[item.subject.id])
            except SnapshotError as error:  # an unusable option leg: fail safe for it alone
                key = f"roll:{_key(policy, item.subject.id)}"
                decision = _unevaluable_decision(
                    policy, item.subject, "delta", "analyse the roll", str(error), now
                )
                account = frozenset({item.subject.account_id or ""})
                _unevaluable(result, state, key, decision, account)
                continue
            if leg is not None:
                legs.append((item, leg))
        deltas = [leg_abs_delta(leg, policy.spec, now) for _, leg in legs]
        matches = rules.match([{"position": {"abs_delta": d[0]}} for d in deltas])
        for (item, leg), (_, source), matched in zip(legs, deltas, matches, strict=True):
            key = _key(policy, item.subject.id)
            urgency = roll_rules.urgency_of(policy.spec, matched)
            result.roll_urgencies[key] = urgency
            if urgency != "none" and urgency != state.roll_urgencies.get(key, "none"):
                # Listed candidates when the snapshot has the underlying's chain.
                chain = find_chain(snapshot.option_chains, leg.symbol)
                analysis = analyse_roll(leg, policy.spec, now, urgency=urgency, chain=chain)
                result.decisions.append(
                    _roll_decision(policy, item.subject, analysis, urgency, matched, source, now)
                )
    return result


def _roll_decision(
    policy: Policy,
    subject: Subject,
    analysis: RollAnalysis,
    urgency: str,
    matched: frozenset[str],
    source: object,
    now: datetime,
) -> Decision:
    recommended = analysis.recommended
    spec = policy.spec
    trace = [
        Check(
            f"|delta| >= {threshold} ({name})",
            f"urgency:{name}" in matched,
            values=values_of({"abs_delta": analysis.abs_delta}),
        )
        for name, threshold in spec.urgency
    ]
    trace.append(Check("an acceptable in-band candidate exists", recommended is not None))
    top = [c.to_dict() for c in analysis.candidates[:3]]
    return Decision(
        time=now,
        kind="roll",
        policy=policy.name,
        policy_version=policy.version,
        rule=f"urgency:{urgency}",
        subject=subject,
        outcome="roll" if recommended is not None else "no_economic_roll",
        actions=("roll",) if recommended is not None else (),
        reasons=tuple(analysis.reasons),
        inputs=values_of(
            {
                "abs_delta": analysis.abs_delta,
                "delta_source": str(source),
                "priced_by": analysis.priced_by.value,
                "normal_abs_delta": spec.normal_abs_delta,
                "emergency_abs_delta": spec.emergency_abs_delta,
            }
        ),
        trace=tuple(trace),
        mode=policy.mode,
        details=(
            ("urgency", urgency),
            ("recommended", recommended.to_dict() if recommended is not None else None),
            ("top_candidates", top),
            ("candidates_considered", len(analysis.candidates)),
        ),
    )


@dataclass(frozen=True, slots=True)
class _BreakerRun:
    result: PassResult
    state: State
    now: datetime
    resets: dict[tuple[str, str], breakers.ManualReset]
    accounts_by_strategy: dict[str, frozenset[str]]
    stateful: frozenset[str]  # "policy:breaker" prefixes that have any state at all
    positions: dict[str, Position]  # by id: a position breaker's state is its own


def breaker_pass(
    policies: CompiledPolicySet,
    facts: Facts,
    state: State,
    now: datetime,
    resets: Sequence[breakers.ManualReset],
) -> PassResult:
    run = _BreakerRun(
        PassResult(),
        state,
        now,
        {(r.breaker_id, r.subject): r for r in resets},
        facts.accounts_by_strategy,
        frozenset(key.partition("@")[0] for key in state.breakers),
        facts.positions,
    )
    compiled_breakers = policies.of_kind("BreakerPolicy")
    scopes = sorted({s for c in compiled_breakers if c.breakers for s in c.breakers.by_scope})
    for scope in scopes:
        for compiled, subjects in assign(compiled_breakers, facts.of(scope), policies.assignments):
            spec = compiled.breakers
            assert spec is not None
            members = spec.by_scope.get(scope, ())
            if not members:
                continue
            matches = _match_complete(spec, scope, members, subjects)
            for breaker in members:
                quiet = f"{compiled.policy.name}:{breaker.id}" not in run.stateful and not any(
                    breaker_id == breaker.id for breaker_id, _ in run.resets
                )
                for item in subjects:
                    matched = matches.get(item.subject.id)  # ids are unique within a scope
                    if quiet and matched is not None and breaker.id not in matched:
                        continue  # armed, quiet, never tripped, no reset: nothing to do
                    _breaker_step(run, compiled.policy, spec, breaker, item, matched)
    return run.result


def _match_complete(
    spec: CompiledBreakers, scope: str, members: Sequence[Breaker], subjects: list[SubjectFacts]
) -> dict[str, frozenset[str]]:
    """One batch through the scope's ruleset for every subject that has all its metrics."""
    needed = [m.split(".", 1) for m in sorted({m for b in members for m in spec.metrics[b.id]})]
    if len(needed) == 1:  # the common case (one metric per scope): no generator per subject
        ((group, name),) = needed
        complete = [s for s in subjects if name in s.fact.get(group, _NO_GROUP)]
    else:
        complete = [
            s
            for s in subjects
            if all(name in s.fact.get(group, _NO_GROUP) for group, name in needed)
        ]
    matched = spec.scope_rules[scope].match([s.fact for s in complete])
    return {s.subject.id: ids for s, ids in zip(complete, matched, strict=True)}


def _breaker_step(
    run: _BreakerRun,
    policy: Policy,
    spec: CompiledBreakers,
    breaker: Breaker,
    item: SubjectFacts,
    matched: frozenset[str] | None,
) -> None:
    metrics = spec.metrics[breaker.id]
    if matched is None:  # the subject lacks a metric some breaker of its scope needs
        missing = [m for m in metrics if not item.has(m)]
        if missing:
            key = breakers.state_key(policy, breaker, item.subject)
            decision = breakers.unevaluable(policy, breaker, item.subject, missing, run.now)
            affected = _affected_accounts(item.subject, run.accounts_by_strategy)
            _unevaluable(run.result, run.state, f"breaker:{key}", decision, affected)
            return
        matched = spec.single_rules[breaker.id].match_one(item.fact)
    fired = breaker.id in matched
    key = breakers.state_key(policy, breaker, item.subject)
    previous = run.state.breakers.get(key)
    if item.subject.scope == "position":
        previous = _for_this_position(previous, run.positions.get(item.subject.id))
    reset = run.resets.get((breaker.id, item.subject.label()))
    if previous is None and not fired and reset is None:
        return
    affected = _affected_accounts(item.subject, run.accounts_by_strategy)
    values = {m: v for m in metrics if (v := item.value(m)) is not None}
    new, decisions = breakers.step(
        policy,
        breaker,
        item.subject,
        breakers.Observation(fired, values),
        previous or BreakerState(ARMED),
        run.now,
        reset,
    )
    run.result.breakers[key] = new
    run.result.decisions.extend(decisions)
    if new.status != ARMED and policy.mode == "enforce":
        _restrict(run.result, breaker, item.subject, affected)


def _for_this_position(
    previous: BreakerState | None, position: Position | None
) -> BreakerState | None:
    """A position breaker's state, unless it was tripped before the position was opened:
    then it belonged to an earlier position under the same id (venues reuse one id per
    symbol), and the new position starts armed — as its high-water mark starts afresh."""
    if (
        previous is None
        or position is None
        or previous.tripped_at is None
        or previous.tripped_at >= position.entered_at
    ):
        return previous
    return BreakerState(ARMED, trip_count=previous.trip_count)


def _affected_accounts(
    subject: Subject, accounts_by_strategy: dict[str, frozenset[str]]
) -> frozenset[str] | None:
    """The accounts a subject's breaker restricts; None means every account."""
    if subject.scope in ("account", "position") and subject.account_id:
        return frozenset({subject.account_id})
    if subject.scope == "strategy":
        return accounts_by_strategy.get(subject.id, frozenset())
    return None


def _restrict(
    result: PassResult, breaker: Breaker, subject: Subject, accounts: frozenset[str] | None
) -> None:
    action = breaker.action
    why = f"breaker {breaker.id} ({subject.label()})"
    if action == "halt_symbol" and subject.symbol:
        result.halted_symbols.add(subject.symbol)
        return
    trading_state = breakers.ACTION_TRADING_STATE.get(action)
    if trading_state == "REDUCING" and subject.scope == "symbol" and subject.symbol:
        result.reducing_symbols.add(subject.symbol)  # reduce-only in that symbol only
        return
    if trading_state is not None:
        result.restrictions.append((accounts, trading_state, why))
