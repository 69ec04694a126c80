"""can_execute(policies, request, snapshot, state, now) -> ExecutionDecision. Pure.

One decision authority for every order:

1. Protections, in the ProtectionPolicy's `hierarchy`. A core-asset-immunity block is
   final. A block by grace period, holding period or whipsaw protection is bypassed
   when a regime override is available (regime severity ≥ min_severity, the
   protection in may_bypass, the cooldown since the last override on this
   account/symbol passed) — and the override is recorded with its reason.
2. Limits, from the LimitPolicy: the trading state (HALTED: cancels only; REDUCING:
   nothing that adds exposure), the kill switch (daily drawdown, drift), region
   (shorting, margin), liquidity, open positions and the submit rate block outright;
   risk per trade, portfolio risk, per-asset, per-strategy, order notional and
   position-per-symbol limits shrink the order to the largest size that meets them
   all, or block it naming every one it breaks when nothing is left.

The rules engine decides every comparison (`rules`); this module builds the fact,
walks the hierarchy and does the sizing arithmetic. Nothing here raises: any
exception yields a denial with blocking system "error". Time comes in as `now`;
timings are measured only with an injected `clock_ns`, so by default the same inputs
give the same bytes.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import Any, Protocol

from bastion.engine.authority import rules as r
from bastion.engine.authority.book import HUNDRED, ZERO, AccountBook, book_of
from bastion.engine.authority.request import REDUCING, OrderRequest
from bastion.engine.decision import Check, Decision, Subject, render_value, shown, values_of
from bastion.engine.evaluation.compiled import AuthorityRules, CompiledPolicySet
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import AuthorityState, State

APPROVED, DOWNSIZED, DENIED = "approved", "downsized", "denied"
_VERB = {APPROVED: "approve", DOWNSIZED: "downsize", DENIED: "deny"}
NEVER_S = 10**12  # "no override yet": idle for longer than any cooldown
Detail = str | Callable[[], str]
RawCheck = tuple[str, bool, Detail, dict[str, Any] | None, int | None]
_PROTECTION_LABEL = {
    r.CORE: "core asset immunity",
    r.GRACE: "grace period",
    r.HOLDING: "holding period",
    r.WHIPSAW: "whipsaw protection",
}


class _Explanation(Protocol):
    """What an answer says beyond the outcome, worded when first asked: the audit record
    and the reasons' wording are not needed to decide, so a caller that only asks "may
    I?" does not pay for them. Asking twice (or from two threads) gives the same value."""

    def reasons(self) -> tuple[str, ...]: ...

    def audit(self) -> tuple[tuple[Check, ...], Decision]: ...


class _Fixed:
    """An explanation known in advance (the error path)."""

    __slots__ = ("_audit", "_reasons")

    def __init__(self, reasons: tuple[str, ...], audit: tuple[tuple[Check, ...], Decision]):
        self._reasons, self._audit = reasons, audit

    def reasons(self) -> tuple[str, ...]:
        return self._reasons

    def audit(self) -> tuple[tuple[Check, ...], Decision]:
        return self._audit


@dataclass(frozen=True, slots=True)
class ExecutionDecision:
    """The answer to one request. `decision` is the audit record (same shape as the
    engine's decisions, built when first read); `state` is what to pass with the next
    request."""

    request: OrderRequest
    approved: bool
    outcome: str  # approved | downsized | denied
    requested_size: Decimal | None  # the target size asked for (or sized from volatility)
    approved_size: Decimal | None  # the target size the order may go to; None when denied
    blocking: tuple[str, ...]  # what blocks: protections, "limit.*", "error", "data"
    override_applied: bool
    override_reason: str | None
    state: State
    latency_us: int = 0
    explanation: _Explanation = field(repr=False, compare=False, kw_only=True)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why, in words a risk officer reads: worded on first read (never raises)."""
        return self.explanation.reasons()

    @property
    def checks(self) -> tuple[Check, ...]:
        """Every check, in order, with its timing when clocked."""
        return self.explanation.audit()[0]

    @property
    def decision(self) -> Decision:
        decision = self.explanation.audit()[1]
        return replace(decision, latency_us=self.latency_us) if self.latency_us else decision

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "outcome": self.outcome,
            "requested_size": _text(self.requested_size),
            "approved_size": _text(self.approved_size),
            "blocking": list(self.blocking),
            "override_applied": self.override_applied,
            "override_reason": self.override_reason,
            "reasons": list(self.reasons),
            "decision": self.decision.to_dict(),
        }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else render_value(value)


class _Clock:
    """Per-check timings, only when the caller injects a clock."""

    __slots__ = ("clock", "last")

    def __init__(self, clock: Callable[[], int] | None) -> None:
        self.clock = clock
        self.last = clock() if clock else 0

    def lap(self) -> int | None:
        if self.clock is None:
            return None
        now = self.clock()
        elapsed, self.last = (now - self.last) // 1000, now
        return int(elapsed)


@dataclass(slots=True)
class _Context:
    """Everything one request's checks read, computed once."""

    request: OrderRequest
    account_id: str
    book: AccountBook
    price: Decimal | None
    atr: Decimal | None
    current: Decimal
    target: Decimal
    requested: Decimal | None
    sized_from_volatility: bool
    trading_state: str
    grace_since: datetime | None
    entry_at: datetime | None
    round_trips: int
    override_idle_s: Decimal | int
    submits: int
    key: str  # "account/symbol"
    now: datetime


_NO_CLOCK = _Clock(None)  # stateless without a clock: shared


def can_execute(
    policies: CompiledPolicySet,
    request: OrderRequest,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    *,
    clock_ns: Callable[[], int] | None = None,
    sent: bool = False,
) -> ExecutionDecision:
    """May this order be sent? Approve, downsize or deny, with every reason. Never raises.

    The state returned remembers the order (its submit, open / close, override) when it
    is approved — a caller that sends what is approved — or, with `sent`, whatever the
    answer: the order was sent (reported after the fact), so it counts."""
    clock = _Clock(clock_ns) if clock_ns is not None else _NO_CLOCK
    started = clock.last
    try:
        result = _decide(policies, request, snapshot, state, now, clock, sent)
    except Exception as error:  # fail safe: an error is a denial, never an approval
        result = _error(policies, request, state, now, error)
    if clock_ns is not None:
        result = replace(result, latency_us=(clock_ns() - started) // 1000)
    return result


def _decide(
    policies: CompiledPolicySet,
    request: OrderRequest,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    clock: _Clock,
    sent: bool = False,
) -> ExecutionDecision:
    books = book_of(snapshot).accounts
    named = request.account_id
    book = books.get(named) if named is not None else None
    account_id = named if book is not None and named is not None else ""
    if book is None:  # no account named, or an unknown one: the rule and its errors
        account_id = resolve_account(snapshot, named)
        book = books[account_id]
    governing = policies.governing_order_rules(
        book.account.type, request.symbol, request.strategy_id
    )
    protection = governing.protection.spec if governing.protection else None
    limits = governing.limits.spec if governing.limits else None
    ctx = _context(request, snapshot, state, now, account_id, book, governing)
    fact = _fact(ctx, snapshot, protection, limits)
    # Without a clock nothing is timed, so the trace is not recorded now: the audit
    # record replays the same walk (same inputs, same result) when it is first read.
    record = clock.clock is not None
    facts_lap = clock.lap() if record else None
    fired = governing.rules.match_one(fact)
    walk = _Walk(ctx, fired, governing, snapshot, clock, fact, record=record)
    if record:
        walk.start(facts_lap, clock.lap())
    walk.run(protection, limits)
    return walk.finish(policies, state, now, limits, protection, sent=sent)


def resolve_account(snapshot: Snapshot, account_id: str | None) -> str:
    """The account an order or plan is for: the one named, or the snapshot's only one."""
    known = [account.id for account in snapshot.accounts]
    if account_id is None:
        if len(known) != 1:
            raise LookupError(
                f"account_id: required when the snapshot has {len(known)} accounts "
                f"({', '.join(known) or 'none'})"
            )
        return known[0]
    if account_id not in known:
        raise LookupError(
            f"account_id: {account_id!r} is not in the snapshot (accounts: {', '.join(known)})"
        )
    return account_id


def _context(
    request: OrderRequest,
    snapshot: Snapshot,
    state: State,
    now: datetime,
    account_id: str,
    book: AccountBook,
    governing: AuthorityRules,
) -> _Context:
    protection = governing.protection.spec if governing.protection else None
    limits = governing.limits.spec if governing.limits else None
    symbol = request.symbol
    key = f"{account_id}/{symbol}"
    market = snapshot.market.get(symbol)
    held = book.symbols.get(symbol)
    if request.current_size is not None:
        current = request.current_size
    elif held is None:
        current = ZERO
    else:
        current = held.short_units if request.side == "short" else held.long_units
    requested = request.target_size
    sized = False
    action = request.action
    if action == "close":
        requested = ZERO
    elif action == "cancel":
        requested = current
    elif requested is None and request.increasing and limits is not None:
        requested = _volatility_size(
            book, market.atr_usd if market else None, limits, current, request.size_increment
        )
        sized = requested is not None
    target = requested if requested is not None else current
    memory = state.authority
    grace_since = request.position.score_below_since or memory.grace.get(key)
    if grace_since is None and protection is not None and _below_floor(request, protection):
        grace_since = now
    last_override = memory.overrides.get(key)
    return _Context(  # positional, in field order: the order hot path
        request,
        account_id,
        book,
        market.price_usd if market else None,
        market.atr_usd if market else None,
        current,
        target,
        requested,
        sized,
        _trading_state(state, account_id, symbol),
        grace_since,
        request.position.entry_at or (held.first_entry_at if held else None),
        # Only whipsaw protection reads round trips, and only for an open.
        _round_trips(memory, key, now, governing.whipsaw_window) if action == "open" else 0,
        NEVER_S if last_override is None else _seconds(last_override, now),
        # The submit rate applies to every order but a cancel.
        _submits(memory, account_id, now, governing.submit_window) if action != "cancel" else 0,
        key,
        now,
    )


def _below_floor(request: OrderRequest, protection: ProtectionSpec) -> bool:
    score = request.current_score
    return score is not None and score < protection.grace_min_score


def _volatility_size(
    book: AccountBook, atr: Decimal | None, limits: LimitSpec, current: Decimal, increment: Decimal
) -> Decimal | None:
    """Units to add so that ATR × atr_multiple of adverse move loses at most
    max_risk_per_trade_pct of equity; None when there is no ATR to size from."""
    if atr is None or atr <= 0:
        return None
    budget = book.account.equity_usd * limits.max_risk_per_trade_pct / HUNDRED
    return current + _floor(budget / (atr * limits.atr_multiple), increment)


def _floor(units: Decimal, increment: Decimal) -> Decimal:
    """Rounded down to a multiple of the venue's size increment (never below 0)."""
    if units <= 0:
        return ZERO
    return (units / increment).to_integral_value(rounding=ROUND_DOWN) * increment


def _trading_state(state: State, account_id: str, symbol: str) -> str:
    """The strictest of the account's and the symbol's trading state."""
    account = state.trading_state(account_id)
    if account == "HALTED" or symbol in state.halted_symbols:
        return "HALTED"
    if symbol in state.reducing_symbols:
        return "REDUCING"
    return account


def _round_trips(memory: AuthorityState, key: str, now: datetime, window: timedelta | None) -> int:
    if window is None:  # no ProtectionPolicy
        return 0
    since = now - window
    trips, opened = 0, False
    for what, at in memory.trades.get(key, ()):
        if at <= since:  # a rolling window (now - window, now], like the submit rate
            continue
        if what == "open":
            opened = True
        elif opened:
            trips, opened = trips + 1, False
    return trips


def _submits(
    memory: AuthorityState, account_id: str, now: datetime, window: timedelta | None
) -> int:
    if window is None:  # no LimitPolicy
        return 0
    times = memory.submits.get(account_id, ())  # kept sorted by _remember
    if not times:
        return 0
    return len(times) - bisect_right(times, now - window)


def _fact(
    ctx: _Context, snapshot: Snapshot, protection: ProtectionSpec | None, limits: LimitSpec | None
) -> dict[str, Any]:
    """Every value the rules compare, exact (Decimal; the fact encoder sends the nearest
    float, and thresholds go through the same conversion, so equal values stay equal)."""
    request = ctx.request
    book = ctx.book
    increasing = request.increasing
    include_manual = limits.include_manual_positions if limits else True
    strategy = request.strategy_id or ""
    score = request.current_score
    reducing = request.action in REDUCING
    fact: dict[str, Any] = {
        "action": request.action,
        "increasing": increasing,
        "reducing": reducing,
        "core": protection is not None and request.symbol in protection.core_assets,
        "has_score": score is not None,
        "score": score if score is not None else ZERO,
        # Only the grace and holding periods read these, and only for a reduction.
        "grace_days": _days(ctx.grace_since, ctx.now) if reducing else ZERO,
        "has_entry": ctx.entry_at is not None,
        "held_days": _days(ctx.entry_at, ctx.now) if reducing else ZERO,
        "round_trips": ctx.round_trips,
        "severity": r.SEVERITY_RANK.get(snapshot.regime.severity, 0),
        "override_idle_s": ctx.override_idle_s,
        "trading_state": ctx.trading_state,
        "drawdown_pct": book.drawdown_pct,
        "drift": book.account.drift_flag,
        "opens_short": request.side == "short" and increasing,
        "open_positions": book.open_positions(include_manual=include_manual),
        "submits": ctx.submits,
        "strategy": strategy,
    }
    if not increasing:  # only limits on orders that add exposure read the rest
        return fact
    equity = book.account.equity_usd
    delta = ctx.target - ctx.current
    price = ctx.price if ctx.price is not None else ZERO
    atr = ctx.atr if ctx.atr is not None else ZERO
    multiple = limits.atr_multiple if limits else ZERO
    added_value = delta * price
    added_risk = delta * atr * multiple
    held = book.symbols.get(request.symbol)
    exposure = held.exposure_usd if held else ZERO
    strategy_exposure = book.strategy_exposure(strategy, include_manual=include_manual)
    market = snapshot.market.get(request.symbol)

    def pct(value: Decimal) -> Decimal:
        return value / equity * HUNDRED if equity > 0 else (ZERO if value <= 0 else HUNDRED * 1000)

    fact["cash_shortfall_usd"] = max(ZERO, added_value - book.account.cash_usd)
    fact["liquidity_usd"] = market.liquidity_usd if market else ZERO
    fact["trade_risk_pct"] = pct(added_risk)
    fact["portfolio_risk_pct"] = pct(book.risk_usd(multiple) + added_risk)
    fact["asset_pct"] = pct(exposure + added_value)
    fact["strategy_pct"] = pct(strategy_exposure + added_value)
    fact["order_notional_usd"] = added_value
    fact["position_usd"] = exposure + added_value
    return fact


def _days(since: datetime | None, now: datetime) -> Decimal:
    if since is None:
        return ZERO
    return Decimal((now - since) // _MICROSECOND) / _DAY_US  # exact: whole microseconds


def _seconds(since: datetime, now: datetime) -> Decimal:
    return Decimal((now - since) // _MICROSECOND).scaleb(-6)  # exact: whole microseconds


_MICROSECOND = timedelta(microseconds=1)
_DAY_US = Decimal(86_400_000_000)


class _Walk:
    """Walks the protections and limits in order over what the rules engine found."""

    __slots__ = (
        "answer",
        "audited",
        "blocking",
        "bypassed",
        "checks",
        "clock",
        "ctx",
        "fact",
        "fired",
        "governing",
        "override_reason",
        "record",
        "shadow",
        "size_limits",
        "snapshot",
        "why",
        "worded",
    )

    def __init__(
        self,
        ctx: _Context,
        fired: frozenset[str],
        governing: AuthorityRules,
        snapshot: Snapshot,
        clock: _Clock,
        fact: dict[str, Any],
        *,
        record: bool,
    ) -> None:
        self.ctx = ctx
        self.fired = fired
        self.governing = governing
        self.snapshot = snapshot
        self.clock = clock
        self.record = record
        self.checks: list[RawCheck] = []
        self.blocking: list[str] = []  # enforced blocks, in check order
        self.why: list[Detail] = []  # rendered when first read (`reasons()`)
        self.answer: tuple[Any, ...] | None = None  # what `finish` decided, for `audit`
        self.worded: tuple[str, ...] | None = None
        self.audited: tuple[tuple[Check, ...], Decision] | None = None
        self.shadow: list[str] = []  # what a shadow-mode policy would have blocked
        self.bypassed: list[str] = []  # protections a regime override bypassed
        self.override_reason: str | None = None
        self.size_limits: list[tuple[str, Decimal, Detail]] = []  # (limit, max units to add, why)
        self.fact = fact

    def start(self, facts_lap: int | None = None, rules_lap: int | None = None) -> None:
        if self.record:
            self.checks.append(("facts", True, partial(_facts_detail, self.ctx), None, facts_lap))
            fired = f"{len(self.fired)} rule(s) fired"
            self.checks.append(("rules engine", True, fired, None, rules_lap))

    def run(self, protection: ProtectionSpec | None, limits: LimitSpec | None) -> None:
        self.request_sizes()
        self.protections(protection)
        self.limits(limits)

    # -- recording -------------------------------------------------------------------

    def _check(
        self, name: str, passed: bool, detail: Detail, values: dict[str, Any] | None = None
    ) -> None:
        """Record a check; `detail` may be a callable, rendered only when the trace is
        read (most checks pass, and their wording is not needed to decide)."""
        if self.record:
            self.checks.append((name, passed, detail, values, self.clock.lap()))

    def _block(
        self, name: str, detail: Detail, *, shadow: bool, values: dict[str, Any] | None = None
    ) -> None:
        """An enforced block: its name, and its wording as a reason (rendered when read)."""
        if shadow:
            self.shadow.append(name)
            if self.record:
                shadowed = _then(detail, " (shadow mode: recorded, not enforced)")
                self._check(name, True, shadowed, values)
            return
        self.blocking.append(name)
        self.why.append(detail)
        self._check(name, False, detail, values)

    def request_sizes(self) -> None:
        """The sizes must mean what the action says, against the size actually held
        (the request's current_size, or the snapshot's): a "decrease" to more than is
        held adds exposure and must not slip past the limits as a reduction."""
        ctx, action = self.ctx, self.ctx.request.action
        current, target = ctx.current, ctx.target
        problem = ""
        if action == "open" and current > 0:
            problem = f"open while {shown(current)} units are held: send an increase"
        elif action == "increase" and ctx.requested is not None and target <= current:
            problem = f"increase to {shown(target)} units is not above the {shown(current)} held"
        elif action == "decrease" and target >= current:
            problem = f"decrease to {shown(target)} units is not below the {shown(current)} held"
        elif action == "close" and current == 0:
            problem = "close with no units held: nothing to close"
        if problem:
            self._block(
                "request", problem + " (denied: the request contradicts itself)", shadow=False
            )
        elif self.record:
            self._check("request", True, "sizes agree with the action")

    # -- protections -----------------------------------------------------------------

    def protections(self, spec: ProtectionSpec | None) -> None:
        if spec is None or self.governing.protection is None:
            self._check("protections", True, "no ProtectionPolicy governs this order")
            return
        fired, record = self.fired, self.record
        if not record and fired.isdisjoint(r.BLOCKING_PROTECTIONS):
            return  # nothing blocks (an available override alone changes nothing)
        shadow = self.governing.protection.mode == "shadow"
        override_available = r.OVERRIDE in fired
        final = False
        for name in spec.hierarchy:
            if not record and name not in fired:
                continue  # a protection that did not fire only records a passing check
            if name == r.OVERRIDE:
                if record:
                    self._override_check(spec, override_available)
                continue
            if name not in spec.enabled:
                self._check(name, True, "disabled in the policy")
                continue
            if final:
                self._check(name, True, "not reached: core asset immunity already blocks")
                continue
            if name not in self.fired:
                self._check(name, True, partial(self._protection_detail, name, spec))
                continue
            detail = partial(self._protection_detail, name, spec)
            if name == r.CORE:
                why = " (core asset immunity cannot be overridden)"
                self._block(name, _then(detail, why), shadow=shadow)
                final = not shadow
            elif override_available and name in spec.override_may_bypass:
                self.bypassed.append(name)
                self._check(name, True, _then(detail, "; bypassed by the regime override"))
            else:
                why = ""
                if override_available:
                    why = f"; the regime override may not bypass {_PROTECTION_LABEL[name]}"
                self._block(name, _then(detail, why), shadow=shadow)
        if self.bypassed:
            regime = self.snapshot.regime
            self.override_reason = (
                f"regime override bypassed {', '.join(self.bypassed)}: {regime.severity} severity "
                f"{regime.name} regime (since {render_value(regime.changed_at)})"
            )

    def _override_check(self, spec: ProtectionSpec, available: bool) -> None:
        if r.OVERRIDE not in spec.enabled:
            self._check(r.OVERRIDE, True, "disabled in the policy")
            return
        regime = self.snapshot.regime
        values = {
            "regime": regime.name,
            "severity": regime.severity,
            "min_severity": spec.override_min_severity,
            "cooldown_s": spec.override_cooldown_s,
        }
        self._check(r.OVERRIDE, True, partial(self._override_detail, spec, available), values)

    def _override_detail(self, spec: ProtectionSpec, available: bool) -> str:
        regime = self.snapshot.regime
        idle = self.ctx.override_idle_s
        last = (
            "no override yet" if idle == NEVER_S else f"last override {shown(Decimal(idle))} s ago"
        )
        if available:
            return (
                f"available: {regime.name} regime, severity {regime.severity} ≥ "
                f"{spec.override_min_severity}; {last} "
                f"(cooldown {shown(spec.override_cooldown_s)} s)"
            )
        if r.SEVERITY_RANK[regime.severity] < r.SEVERITY_RANK[spec.override_min_severity]:
            return (
                f"not available: {regime.name} regime severity {regime.severity} < "
                f"{spec.override_min_severity}"
            )
        return f"not available: cooling down, {last} < {shown(spec.override_cooldown_s)} s"

    def _protection_detail(self, name: str, spec: ProtectionSpec) -> str:
        request, ctx = self.ctx.request, self.ctx
        symbol, action = request.symbol, request.action
        if name == r.CORE:
            if symbol not in spec.core_assets:
                return f"{symbol} is not a core asset"
            blocked = ", ".join(sorted(spec.core_blocked_actions))
            if action in spec.core_blocked_actions:
                return f"{symbol} is a core asset: {action} is blocked (immune to {blocked})"
            return f"{symbol} is a core asset; {action} is allowed (immune to {blocked} only)"
        if name == r.GRACE:
            if action not in REDUCING:
                return f"{action} does not sell: grace period does not apply"
            score = request.current_score
            if score is None:
                return "no current_score given: grace period does not apply"
            if score >= spec.grace_min_score:
                return f"score {shown(score)} ≥ floor {shown(spec.grace_min_score)}"
            days = _days(ctx.grace_since, ctx.now)
            if days >= spec.grace_duration_days:
                return (
                    f"score {shown(score)} < floor {shown(spec.grace_min_score)} for "
                    f"{shown(days)} days: the {shown(spec.grace_duration_days)}-day grace is over"
                )
            return (
                f"score {shown(score)} < floor {shown(spec.grace_min_score)} for only "
                f"{shown(days)} of {shown(spec.grace_duration_days)} grace days: {action} is held"
            )
        if name == r.HOLDING:
            if action not in REDUCING:
                return f"{action} does not sell: holding period does not apply"
            if ctx.entry_at is None:
                return "entry time unknown: holding period does not apply"
            days = _days(ctx.entry_at, ctx.now)
            relation = "<" if days < spec.min_holding_days else "≥"
            return (
                f"held {shown(days)} days {relation} the {shown(spec.min_holding_days)}-day "
                "minimum holding period"
            )
        # whipsaw
        if action != "open":
            return f"{action} is not a re-entry: whipsaw protection does not apply"
        relation = "≥" if ctx.round_trips >= spec.whipsaw_max_round_trips else "<"
        return (
            f"{ctx.round_trips} round trip(s) in {shown(spec.whipsaw_window_days)} days "
            f"{relation} {spec.whipsaw_max_round_trips} allowed"
        )

    # -- limits ----------------------------------------------------------------------

    def limits(self, spec: LimitSpec | None) -> None:
        ctx, request = self.ctx, self.ctx.request
        shadow = self.governing.limits is not None and self.governing.limits.mode == "shadow"
        self._trading_state(spec)
        fired, record = self.fired, self.record
        if not request.increasing:
            if r.SUBMIT_RATE in fired and spec is not None:  # every order but a cancel
                excess = partial(self._limit_detail, r.SUBMIT_RATE, spec)
                self._block(r.SUBMIT_RATE, excess, shadow=shadow)
            if record:
                self._check(
                    "limits", True, f"{request.action} adds no exposure: risk limits do not apply"
                )
            return
        if spec is None:
            self._check("limits", True, "no LimitPolicy governs this order")
            if request.target_size is None:
                self._block(
                    "sizing",
                    "no target_size and no LimitPolicy to size the order from",
                    shadow=False,
                )
            return
        if ctx.price is None:
            self._block(
                "data",
                f"no market data for {request.symbol} in the snapshot: the order cannot be valued",
                shadow=False,
            )
            return
        if ctx.requested is None:
            self._block(
                "sizing",
                f"no target_size given and no ATR for {request.symbol} to size it from",
                shadow=False,
            )
            return
        if ctx.sized_from_volatility and record:
            self._check("sizing", True, partial(self._sizing_detail, spec))
        if not record and fired.isdisjoint(self.governing.rules.limit_ids):
            return  # no limit fired: every one passes
        configured = self.governing.rules.rule_ids
        strategy_rule = f"{r.PER_STRATEGY}.{request.strategy_id}"
        for name in r.LIMIT_ORDER:
            rule = strategy_rule if name == r.PER_STRATEGY else name
            if rule not in fired:  # passed, or not configured for this order
                if record and rule in configured:
                    self._check(name, True, partial(self._limit_pass_detail, name, spec))
                continue
            if name in r.HARD_LIMITS:
                self._block(name, partial(self._limit_detail, name, spec), shadow=shadow)
            else:
                detail, cap = self._size_limit(rule, spec)
                if shadow:
                    self._block(name, detail, shadow=True)
                else:
                    self.size_limits.append((name, cap, detail))
                    self._check(name, False, detail)

    def _sizing_detail(self, spec: LimitSpec) -> str:
        ctx = self.ctx
        return (
            f"sized from volatility: {shown(ctx.target - ctx.current)} units risk "
            f"{shown(spec.max_risk_per_trade_pct)} % of equity over "
            f"{shown(spec.atr_multiple)} × ATR {shown(ctx.atr or ZERO)}"
        )

    def _limit_pass_detail(self, name: str, spec: LimitSpec) -> str:
        fact = self.fact
        strategy = self.ctx.request.strategy_id or ""
        limit: Any = {
            r.KILL_DRAWDOWN: spec.max_daily_drawdown_pct,
            r.KILL_DRIFT: False,
            r.SHORTING: False,
            r.MARGIN: ZERO,
            r.LIQUIDITY: spec.min_liquidity_24h_usd,
            r.OPEN_POSITIONS: spec.max_open_positions,
            r.SUBMIT_RATE: spec.submit_rate.count,
            r.TRADE_RISK: spec.max_risk_per_trade_pct,
            r.PORTFOLIO_RISK: spec.max_portfolio_risk_pct,
            r.PER_ASSET: spec.max_per_asset_pct,
            r.PER_STRATEGY: dict(spec.max_per_strategy_pct).get(strategy, ZERO),
            r.ORDER_NOTIONAL: spec.max_notional_per_order_usd,
            r.SYMBOL_POSITION: spec.max_position_per_symbol_usd,
        }[name]
        field_, relation = r.LIMIT_FIELDS[name]
        value = fact[field_]
        if name == r.OPEN_POSITIONS and self.ctx.request.action != "open":
            return f"{value} open positions; only an open adds one"
        shown_value = shown(value) if isinstance(value, Decimal) else render_value(value)
        shown_limit = shown(limit) if isinstance(limit, Decimal) else render_value(limit)
        return f"{field_} {shown_value} {relation} {shown_limit}"

    def _trading_state(self, spec: LimitSpec | None) -> None:
        state, action = self.ctx.trading_state, self.ctx.request.action
        name = f"{r.TRADING_STATE}.{state}"
        if name in self.fired:
            detail = partial(_trading_state_detail, spec, state, action)
            self._block(r.TRADING_STATE, detail, shadow=False)  # breakers set it: always enforced
        elif self.record:
            self._check(r.TRADING_STATE, True, f"trading state {state} allows {action}")

    def _limit_detail(self, name: str, spec: LimitSpec) -> str:
        ctx, book = self.ctx, self.ctx.book
        if name == r.KILL_DRAWDOWN:
            return (
                f"kill switch: daily drawdown {shown(book.drawdown_pct)} % ≥ "
                f"{shown(spec.max_daily_drawdown_pct)} %; only reduce / close pass"
            )
        if name == r.KILL_DRIFT:
            return (
                "kill switch: the account's drift flag is set (books disagree); "
                "only reduce / close pass"
            )
        if name == r.SHORTING:
            return f"region {spec.region_code or '(unnamed)'} does not allow short selling"
        if name == r.LIQUIDITY:
            market = self.snapshot.market[ctx.request.symbol]
            return (
                f"{ctx.request.symbol} liquidity {shown(market.liquidity_usd)} USD < minimum "
                f"{shown(spec.min_liquidity_24h_usd)} USD"
            )
        if name == r.OPEN_POSITIONS:
            count = book.open_positions(include_manual=spec.include_manual_positions)
            return f"{count} open positions ≥ max_open_positions {spec.max_open_positions}"
        # submit rate
        return (
            f"{ctx.submits} orders in the last {shown(spec.submit_rate.window_s)} s ≥ "
            f"submit rate {spec.submit_rate.count}: this order is the excess"
        )

    def _size_limit(self, name: str, spec: LimitSpec) -> tuple[Detail, Decimal]:
        """What the limit says (worded when read) and how many units the order may add
        under it."""
        ctx, book = self.ctx, self.ctx.book
        equity, price = book.account.equity_usd, ctx.price or ZERO
        unit_risk = (ctx.atr or ZERO) * spec.atr_multiple
        held = book.symbols.get(ctx.request.symbol)
        exposure = held.exposure_usd if held else ZERO
        delta = ctx.target - ctx.current
        symbol = ctx.request.symbol
        if name == r.TRADE_RISK:
            budget = equity * spec.max_risk_per_trade_pct / HUNDRED
            return (
                partial(
                    _worded,
                    "order risk {} USD > max_risk_per_trade {} % of equity ({} USD)",
                    delta * unit_risk,
                    spec.max_risk_per_trade_pct,
                    budget,
                ),
                _units(budget, unit_risk),
            )
        if name == r.PORTFOLIO_RISK:
            budget = equity * spec.max_portfolio_risk_pct / HUNDRED
            now_risk = book.risk_usd(spec.atr_multiple)
            return (
                partial(
                    _worded,
                    "portfolio risk {} USD > max_portfolio_risk {} % ({} USD)",
                    now_risk + delta * unit_risk,
                    spec.max_portfolio_risk_pct,
                    budget,
                ),
                _units(budget - now_risk, unit_risk),
            )
        if name == r.PER_ASSET:
            budget = equity * spec.max_per_asset_pct / HUNDRED
            return (
                partial(
                    _worded,
                    "{} exposure {} USD > max_per_asset {} % ({} USD)",
                    symbol,
                    exposure + delta * price,
                    spec.max_per_asset_pct,
                    budget,
                ),
                _units(budget - exposure, price),
            )
        if name.startswith(r.PER_STRATEGY):
            strategy = ctx.request.strategy_id or ""
            cap = dict(spec.max_per_strategy_pct)[strategy]
            budget = equity * cap / HUNDRED
            used = book.strategy_exposure(strategy, include_manual=spec.include_manual_positions)
            return (
                partial(
                    _worded,
                    "strategy {} exposure {} USD > max_per_strategy {} % ({} USD)",
                    strategy,
                    used + delta * price,
                    cap,
                    budget,
                ),
                _units(budget - used, price),
            )
        if name == r.ORDER_NOTIONAL:
            limit = spec.max_notional_per_order_usd or ZERO
            return (
                partial(
                    _worded,
                    "order value {} USD > max_notional_per_order {} USD",
                    delta * price,
                    limit,
                ),
                _units(limit, price),
            )
        if name == r.SYMBOL_POSITION:
            limit = spec.max_position_per_symbol_usd or ZERO
            return (
                partial(
                    _worded,
                    "{} position {} USD > max_position_per_symbol {} USD",
                    symbol,
                    exposure + delta * price,
                    limit,
                ),
                _units(limit - exposure, price),
            )
        # margin
        cash = book.account.cash_usd
        return (
            partial(
                _worded,
                "order value {} USD > cash {} USD and region {} allows no margin",
                delta * price,
                cash,
                spec.region_code or "(unnamed)",
            ),
            _units(cash, price),
        )

    # -- the answer ------------------------------------------------------------------

    def finish(
        self,
        policies: CompiledPolicySet,
        state: State,
        now: datetime,
        limits: LimitSpec | None,
        protection: ProtectionSpec | None,
        *,
        sent: bool = False,
    ) -> ExecutionDecision:
        ctx, request = self.ctx, self.ctx.request
        approved_size: Decimal | None = ctx.target
        outcome = APPROVED
        if self.size_limits and not self.blocking:
            room = min(cap for _, cap, _ in self.size_limits)
            room = _floor(room, request.size_increment)
            if room <= 0:
                for name, _, detail in self.size_limits:
                    self.blocking.append(name)
                    self.why.append(detail)
            else:
                approved_size = ctx.current + room
                outcome = DOWNSIZED
                met = tuple(detail for _, _, detail in self.size_limits)
                self.why.append(partial(_downsized, ctx.target, approved_size, met))
        elif self.size_limits:  # blocked anyway: name every limit the order breaks
            for name, _, detail in self.size_limits:
                self.blocking.append(name)
                self.why.append(detail)
        approved = not self.blocking
        if not approved:
            outcome, approved_size = DENIED, None
        override = bool(self.bypassed) and approved
        if self.record:
            self._closing_checks(approved)
        if approved and not self.why:
            self.why.append(
                f"{request.action} {request.symbol} passes every protection and limit"
                + (f" (with {self.override_reason})" if override else "")
            )
        elif approved and override:
            self.why.append(f"with {self.override_reason}")
        new_state = _remember(state, ctx, now, approved or sent, override, self.governing)
        self.answer = (policies, outcome, approved_size, override, now, protection, limits)
        return ExecutionDecision(  # positional: the order hot path
            request,
            approved,
            outcome,
            ctx.requested,
            approved_size,
            tuple(self.blocking),
            override,
            self.override_reason if override else None,
            new_state,
            explanation=self,
        )

    # -- the explanation, worded when first read (_Explanation) ------------------------

    def reasons(self) -> tuple[str, ...]:
        if self.worded is None:
            self.worded = _rendered(self.why)
        return self.worded

    def audit(self) -> tuple[tuple[Check, ...], Decision]:
        if self.audited is None:
            assert self.answer is not None, "finish() first"
            self.audited = self._record(*self.answer)
        return self.audited

    def _closing_checks(self, approved: bool) -> None:
        if self.bypassed and not approved:
            self._check(
                r.OVERRIDE,
                True,
                "eligible, but the order is denied anyway: the override is not used and its "
                "cooldown not started",
            )

    def _trace(
        self, approved: bool, protection: ProtectionSpec | None, limits: LimitSpec | None
    ) -> list[RawCheck]:
        """The checks as recorded, or — when nothing was timed — replayed now."""
        if self.record:
            return self.checks
        replay = _Walk(
            self.ctx,
            self.fired,
            self.governing,
            self.snapshot,
            _Clock(None),
            self.fact,
            record=True,
        )
        replay.start()
        replay.run(protection, limits)
        replay._closing_checks(approved)
        return replay.checks

    def _record(
        self,
        policies: CompiledPolicySet,
        outcome: str,
        approved_size: Decimal | None,
        override: bool,
        now: datetime,
        protection: ProtectionSpec | None,
        limits: LimitSpec | None,
    ) -> tuple[tuple[Check, ...], Decision]:
        ctx, request = self.ctx, self.ctx.request
        raw = self._trace(outcome != DENIED, protection, limits)
        checks = tuple(
            Check(
                name,
                passed,
                detail if isinstance(detail, str) else _render(detail),
                values_of(values) if values else (),
                elapsed_us=elapsed,
            )
            for name, passed, detail, values, elapsed in raw
        )
        names = [p.name for p in (self.governing.protection, self.governing.limits) if p]
        details: list[tuple[str, Any]] = [
            ("request", request.to_dict()),
            ("requested_size", ctx.requested),
            ("approved_size", approved_size),
            ("blocking", list(self.blocking)),
            ("override_applied", override),
        ]
        if override:
            details.append(("override_reason", self.override_reason))
        if self.shadow:
            details.append(("shadow_blocks", list(self.shadow)))
        if request.metadata:
            details.append(("metadata", dict(request.metadata)))
        return checks, Decision(
            time=now,
            kind="check",
            policy="+".join(names) or "bastion",
            policy_version=policies.version,
            rule=self.blocking[0] if self.blocking else outcome,
            subject=Subject(
                "order",
                request.id or f"{request.action}:{request.symbol}",
                account_id=ctx.account_id,
                symbol=request.symbol,
                strategy_id=request.strategy_id,
            ),
            outcome=outcome,
            actions=(_VERB[outcome],),
            reasons=self.reasons(),
            inputs=_inputs(ctx),
            trace=checks,
            details=tuple(details),
        )


def _rendered(details: Sequence[Detail]) -> tuple[str, ...]:
    return tuple(detail if isinstance(detail, str) else _render(detail) for detail in details)


def _downsized(target: Decimal, approved: Decimal, met: tuple[Detail, ...]) -> str:
    wording = ", ".join(_rendered(met))
    return f"downsized from {shown(target)} to {shown(approved)} units to meet {wording}"


def _then(detail: Detail, suffix: str) -> Detail:
    """`detail` followed by `suffix`, still rendered only when read."""
    if not suffix:
        return detail
    if isinstance(detail, str):
        return detail + suffix
    return partial(_joined, detail, suffix)


def _joined(detail: Callable[[], str], suffix: str) -> str:
    return detail() + suffix


def _worded(template: str, *values: Decimal | str) -> str:
    """A template filled with values as reasons show them (`shown` for numbers)."""
    return template.format(*(shown(v) if isinstance(v, Decimal) else v for v in values))


def _trading_state_detail(spec: LimitSpec | None, state: str, action: str) -> str:
    allowed = dict(spec.allowed_actions if spec else r.DEFAULT_ALLOWED.items())[state]
    only = ", ".join(allowed) or "nothing"
    return f"trading state {state} allows only {only}: {action} is denied"


def _render(detail: Callable[[], str]) -> str:
    """A passing check's wording, rendered when the record is read; reading the record
    never raises into the caller (the decision itself is already made)."""
    try:
        return detail()
    except Exception as error:  # wording only: the outcome does not depend on it
        return f"(wording unavailable: {type(error).__name__}: {error})"


def _units(money: Decimal, per_unit: Decimal) -> Decimal:
    if per_unit <= 0:
        return Decimal("Infinity")
    return money / per_unit


def _inputs(ctx: _Context) -> tuple[tuple[str, str], ...]:
    account = ctx.book.account
    values: dict[str, Any] = {
        "account_id": ctx.account_id,
        "trading_state": ctx.trading_state,
        "equity_usd": account.equity_usd,
        "cash_usd": account.cash_usd,
        "daily_drawdown_pct": ctx.book.drawdown_pct.quantize(Decimal("0.0001")),
        "drift_flag": account.drift_flag,
        "current_size": ctx.current,
        "target_size": ctx.target,
    }
    if ctx.price is not None:
        values["price_usd"] = ctx.price
    if ctx.atr is not None:
        values["atr_usd"] = ctx.atr
    return values_of(values)


def _remember(
    state: State,
    ctx: _Context,
    now: datetime,
    counts: bool,
    override: bool,
    governing: AuthorityRules,
) -> State:
    """The state after this request: grace clocks always; submits, trades and the
    override cooldown only for an order that counts (approved, or reported sent)."""
    protection = governing.protection.spec if governing.protection else None
    memory = state.authority
    request, key = ctx.request, ctx.key
    grace = memory.grace
    if protection is not None and request.current_score is not None:
        below = request.current_score < protection.grace_min_score
        if below and grace.get(key) != ctx.grace_since and ctx.grace_since is not None:
            grace = {**grace, key: ctx.grace_since}
        elif not below and key in grace:
            grace = dict(grace)
            del grace[key]
    submits, trades, overrides = memory.submits, memory.trades, memory.overrides
    if counts and request.action != "cancel":
        if governing.submit_window is not None:
            times = submits.get(ctx.account_id, ())
            kept = list(times[bisect_right(times, now - governing.submit_window) :])
            insort(kept, now)
            submits = {**submits, ctx.account_id: tuple(kept)}
        if request.action in ("open", "close") and governing.whipsaw_window is not None:
            horizon = now - governing.whipsaw_window
            recent = tuple(t for t in trades.get(key, ()) if t[1] > horizon)
            trades = {**trades, key: (*recent, (request.action, now))}
        if override:
            overrides = {**overrides, key: now}
    if (
        grace is memory.grace
        and submits is memory.submits
        and trades is memory.trades
        and overrides is memory.overrides
    ):
        return state
    return state.with_authority(AuthorityState(submits, trades, overrides, grace))


def _facts_detail(ctx: _Context) -> str:
    return (
        f"{ctx.request.action} {ctx.request.symbol} in {ctx.account_id}: "
        f"{shown(ctx.current)} → {shown(ctx.target)} units"
    )


def _error(
    policies: CompiledPolicySet,
    request: OrderRequest,
    state: State,
    now: datetime,
    error: BaseException,
) -> ExecutionDecision:
    reason = (
        f"error: the check failed ({type(error).__name__}: {error}); denied (Bastion fails safe)"
    )
    symbol = str(getattr(request, "symbol", "?"))
    action = str(getattr(request, "action", "?"))
    described = (
        request.to_dict()
        if isinstance(request, OrderRequest)
        else {"unreadable": repr(request)[:200]}
    )
    check = Check("check completed", False, type(error).__name__)
    decision = Decision(
        time=now,
        kind="check",
        policy="bastion",
        policy_version=policies.version,
        rule="error",
        subject=Subject(
            "order",
            str(getattr(request, "id", "") or f"{action}:{symbol}"),
            account_id=getattr(request, "account_id", None),
            symbol=symbol,
            strategy_id=getattr(request, "strategy_id", None),
        ),
        outcome=DENIED,
        actions=("deny",),
        reasons=(reason,),
        trace=(check,),
        details=(("request", described), ("blocking", ["error"])),
    )
    return ExecutionDecision(
        request=request,
        approved=False,
        outcome=DENIED,
        requested_size=getattr(request, "target_size", None),
        approved_size=None,
        blocking=("error",),
        override_applied=False,
        override_reason=None,
        state=state,
        explanation=_Fixed((reason,), ((check,), decision)),
    )
