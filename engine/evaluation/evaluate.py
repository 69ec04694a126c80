"""evaluate(policies, snapshot, state, now) -> (decisions, new_state). Pure, deterministic.

The passes (passes.py) produce decisions and state; this module combines them,
derives each account's trading state (the strictest restriction wins), records
trading-state changes as decisions, and fails safe: an exception anywhere inside
an evaluation yields one `evaluation/error` decision and every account REDUCING —
no new risk — never an approval and never a crash of the caller.

Time is passed in (`now`); latency is measured only with a clock the caller
injects (`clock_ns`), so that by default the same inputs give byte-identical
decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from bastion.engine.authority.history.evolve import evolve_locks
from bastion.engine.decision import Check, Decision, Subject
from bastion.engine.evaluation import high_water
from bastion.engine.evaluation.breakers import FAIL_SAFE_ACTION, ManualReset, of_held_positions
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.evaluation.facts import build_facts
from bastion.engine.evaluation.passes import PassResult, breaker_pass, escalation_pass, roll_pass
from bastion.engine.evaluation.screen import screen
from bastion.engine.snapshot import Snapshot
from bastion.engine.snapshot.left_out import Unevaluable
from bastion.engine.state import TRADING_STATE_RANK, BreakerState, ManualEscalation, State

KIND_ORDER = {
    "evaluation": 0,
    "snapshot": 1,
    "breaker": 2,
    "trading_state": 3,
    "escalation": 4,
    "roll": 5,
    "protection": 6,  # history-protection locks made this cycle
}
DEFAULT_INTERVAL_S = Decimal(300)
SCREEN = True  # screen positions with numpy first (screen.py); False: all go the full way
SCREEN_FROM = 100  # positions; below, the screen's fixed cost outweighs what it saves


def evaluate(
    policies: CompiledPolicySet,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    *,
    resets: Sequence[ManualReset] = (),
    left_out: Sequence[Unevaluable] = (),
    clock_ns: Callable[[], int] | None = None,
) -> tuple[tuple[Decision, ...], State]:
    """All decisions for `snapshot` at `now`, and the state to pass next time.

    `left_out`: records the snapshot builder could not use; each is an unevaluable
    position whose account gets no new risk (REDUCING) until the record is usable."""
    started = clock_ns() if clock_ns else 0
    try:
        decisions, new_state = _evaluate(policies, snapshot, state, now, resets, left_out)
    except Exception as error:
        decisions, new_state = fail_safe(policies, snapshot, state, now, error)
    if clock_ns is not None:
        latency_us = (clock_ns() - started) // 1000
        decisions = tuple(replace(d, latency_us=latency_us) for d in decisions)
    return decisions, new_state


def _evaluate(
    policies: CompiledPolicySet,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    resets: Sequence[ManualReset],
    left_out: Sequence[Unevaluable] = (),
) -> tuple[tuple[Decision, ...], State]:
    held_out = {record.id for record in left_out if record.kind == "position"}
    marks = (
        high_water.track(snapshot.positions, state.high_water, held_out)
        if high_water.needs_marks(policies)
        else {}
    )
    # Only the positions that may change level or trip go the full way (screen.py).
    screening = SCREEN and len(snapshot.positions) >= SCREEN_FROM
    screened = screen(policies, snapshot, state, resets) if screening else None
    if screened is None:
        facts = build_facts(snapshot, marks)
    else:
        facts = build_facts(snapshot, marks, screened.positions, screened.columns.strategy_pairs)
    results = [
        breaker_pass(policies, facts, state, now, resets),
        # Releases the position facts before its decisions: no pass after it reads them
        # (roll_pass reads the positions and the subjects, left_out_pass the records).
        escalation_pass(policies, snapshot, facts, state, now, release=True),
        roll_pass(policies, snapshot, facts, state, now),
        left_out_pass(policies.version, left_out, state, now),
    ]
    # The screened-out positions keep their state: merged into, not copied (no key of
    # theirs is in another result, and the order of restrictions decides nothing).
    merged = screened.carried if screened is not None else PassResult()
    for result in results:
        merged.decisions += result.decisions
        merged.escalations |= result.escalations
        merged.breakers |= result.breakers
        merged.roll_urgencies |= result.roll_urgencies
        merged.unevaluable |= result.unevaluable
        merged.restrictions += result.restrictions
        merged.halted_symbols |= result.halted_symbols
        merged.reducing_symbols |= result.reducing_symbols
    accounts = sorted({account.id for account in snapshot.accounts} | _accounts_of(left_out))
    trading_states, changes = _trading_states(accounts, merged, state, now, policies.version)
    locks, locked = evolve_locks(policies, snapshot, state.locks, now)
    decisions = tuple(sorted([*merged.decisions, *changes, *locked], key=_order))
    new_state = State(
        escalations=merged.escalations,  # to_dict() sorts: no need to here
        breakers=_of_held_positions({**state.breakers, **merged.breakers}, snapshot, held_out),
        trading_states=trading_states,
        halted_symbols=frozenset(merged.halted_symbols),
        reducing_symbols=frozenset(merged.reducing_symbols - merged.halted_symbols),
        roll_urgencies=merged.roll_urgencies,
        unevaluable=frozenset(merged.unevaluable),
        counters=state.counters,
        evaluated_at=now,
        authority=state.authority,
        high_water=marks,
        locks=locks,
        # Kept while active and the position is held: a ttl or a closed position ends one.
        manual_escalations=_manual_held(state, snapshot, held_out, now),
    ).bump(evaluations=1, decisions=len(decisions))
    return decisions, new_state


def _of_held_positions(
    states: dict[str, BreakerState], snapshot: Snapshot, held_out: set[str]
) -> dict[str, BreakerState]:
    """of_held_positions; the set of held ids is built only when a position has a state."""
    if not any("@position:" in key for key in states):
        return states
    return of_held_positions(states, {position.id for position in snapshot.positions} | held_out)


def _manual_held(
    state: State, snapshot: Snapshot, held_out: set[str], now: datetime
) -> dict[str, ManualEscalation]:
    """Manual escalations kept while active and the position is held: a ttl or a
    closed position ends one."""
    if not state.manual_escalations:
        return {}
    held = {position.id for position in snapshot.positions} | held_out
    return {
        key: manual
        for key, manual in state.manual_escalations.items()
        if manual.active(now) and key in held
    }


def left_out_pass(
    version: str, left_out: Sequence[Unevaluable], state: State, now: datetime
) -> PassResult:
    """Records the builder left out: each is unevaluable, its account REDUCING.

    Decided once, when the record is first left out (its key is kept in the state's
    `unevaluable` like any check that lacked data); the restriction holds every cycle
    the record stays out, and lifts by itself when it is usable again."""
    result = PassResult()
    for record in left_out:
        key = f"record:{record.id}" if record.kind == "position" else f"record:trade:{record.id}"
        result.unevaluable.add(key)
        what = f"{record.kind} {record.id} ({record.symbol})"
        why = f"{what} left out of the snapshot: {record.reason}"
        result.restrictions.append((frozenset({record.account_id}), "REDUCING", why))
        if key in state.unevaluable:
            continue
        result.decisions.append(
            Decision(
                time=now,
                kind="snapshot",
                policy="bastion",
                policy_version=version,
                rule="record_unusable",
                subject=Subject(
                    "position",
                    record.id,
                    account_id=record.account_id,
                    symbol=record.symbol,
                ),
                outcome="unevaluable",
                actions=(FAIL_SAFE_ACTION,),
                reasons=(f"{why}; no new risk for account {record.account_id} until it is fixed",),
                trace=(Check("record usable", False, record.reason),),
            )
        )
    return result


def _accounts_of(left_out: Sequence[Unevaluable]) -> set[str]:
    return {record.account_id for record in left_out}


def _order(decision: Decision) -> tuple[int, str, str, str, str]:
    return (
        KIND_ORDER.get(decision.kind, 9),
        decision.subject.label(),
        decision.policy,
        decision.rule,
        decision.outcome,
    )


def _trading_states(
    accounts: list[str], result: PassResult, state: State, now: datetime, version: str
) -> tuple[dict[str, str], list[Decision]]:
    """Strictest restriction per account, and a decision for every change."""
    new: dict[str, str] = {}
    reasons: dict[str, list[str]] = {}
    # account -> trading state -> why, in the order the restrictions came
    by_account: dict[str, dict[str, list[str]]] = {account: {} for account in accounts}
    for affected, trading_state, why in result.restrictions:
        for account in accounts if affected is None else affected:
            if account in by_account:
                by_account[account].setdefault(trading_state, []).append(why)
    for account in accounts:
        applying = by_account[account]
        new[account] = max(applying, key=TRADING_STATE_RANK.__getitem__, default="ACTIVE")
        if new[account] != state.trading_state(account):  # the reasons of a change only
            reasons[account] = sorted(set(applying.get(new[account], ())))
    changes = [
        Decision(
            time=now,
            kind="trading_state",
            policy="bastion",
            policy_version=version,
            rule="strictest_wins",
            subject=Subject("account", account, account_id=account),
            outcome=new[account],
            actions=(new[account].lower(),),
            reasons=(
                f"{state.trading_state(account)} → {new[account]}: "
                + ("; ".join(reasons[account]) or "no breaker restricts the account any more"),
            ),
            trace=tuple(Check(why, True) for why in reasons[account]),
        )
        for account in accounts
        if new[account] != state.trading_state(account)
    ]
    return new, changes


def fail_safe(
    policies: CompiledPolicySet,
    snapshot: Snapshot | None,
    state: State,
    now: datetime,
    error: BaseException,
) -> tuple[tuple[Decision, ...], State]:
    """The conservative outcome: every known account REDUCING, with the error recorded."""
    accounts = {a.id for a in snapshot.accounts} if snapshot is not None else set()
    accounts |= set(state.trading_states)
    trading_states = {
        account: max(state.trading_state(account), "REDUCING", key=TRADING_STATE_RANK.__getitem__)
        for account in sorted(accounts)
    }
    decision = Decision(
        time=now,
        kind="evaluation",
        policy="bastion",
        policy_version=policies.version,
        rule="fail_safe",
        subject=Subject("system", "all"),
        outcome="error",
        actions=("halt_new_positions",),
        reasons=(
            f"evaluation failed ({type(error).__name__}: {error}); failing safe: no new risk "
            "on any account until an evaluation succeeds",
        ),
        trace=(Check("evaluation completed", False, type(error).__name__),),
    )
    new_state = replace(state, trading_states=trading_states, evaluated_at=now)
    return (decision,), new_state.bump(evaluations=1, errors=1)


def polling_interval_s(policies: CompiledPolicySet, state: State) -> Decimal:
    """How often to evaluate next: the interval of the most escalated position."""
    intervals = []
    by_name = {c.policy.name: c.policy for c in policies.of_kind("EscalationPolicy")}
    for escalated in state.escalations.values():
        policy = by_name.get(escalated.policy)
        if policy is not None and policy.mode == "enforce":
            levels = policy.spec.levels
            intervals.append(levels[min(escalated.level, len(levels) - 1)].interval_s)
    if not intervals:
        intervals = [p.spec.levels[0].interval_s for p in by_name.values() if p.mode == "enforce"]
    return min(intervals, default=DEFAULT_INTERVAL_S)
