"""The walk over one request's controls: protections in the policy's hierarchy, then the
trading state and the limits in the registry's order (`controls`), over what the rules
engine found; then the answer, with its reasons and audit record worded when first read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any

from bastion.engine.authority import controls, instrument_rules
from bastion.engine.authority import rules as r
from bastion.engine.authority.answer import APPROVED, DENIED, DOWNSIZED, VERB, ExecutionDecision
from bastion.engine.authority.book import ZERO
from bastion.engine.authority.controls import history_locks
from bastion.engine.authority.controls.base import Context, Detail, Limit, floor_to
from bastion.engine.authority.controls.breaker_size import SizeCut
from bastion.engine.authority.history.lock import HistoryLock
from bastion.engine.authority.memory import remember
from bastion.engine.authority.slotted import constructor
from bastion.engine.decision import Check, Decision, Subject, render_value, shown, values_of
from bastion.engine.evaluation.compiled import AuthorityRules, CompiledPolicySet
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import State

RawCheck = tuple[str, bool, Detail, dict[str, Any] | None, int | None]
_decision = constructor(ExecutionDecision)  # ExecutionDecision(...), built for less


class Clock:
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


class Walk:
    """Walks the protections and limits in order over what the rules engine found."""

    __slots__ = (
        "answer",
        "audited",
        "blocking",
        "bypassed",
        "checks",
        "clock",
        "ctx",
        "cuts",
        "fact",
        "fired",
        "governing",
        "locks",
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
        ctx: Context,
        fired: frozenset[str],
        governing: AuthorityRules,
        snapshot: Snapshot,
        clock: Clock,
        fact: dict[str, Any],
        record: bool,  # positional too: `can_execute` calls it so (the hot path)
        locks: Mapping[str, HistoryLock] | None = None,
        cuts: tuple[SizeCut, ...] = (),
    ) -> None:
        self.ctx = ctx
        self.cuts = cuts  # the tripped reduce_size breakers covering the order
        self.locks = locks or {}  # the state's history-protection locks
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
        locks = history_locks.held(self.locks, self.governing.protection, self.ctx)
        if not record and not locks and fired.isdisjoint(r.BLOCKING_PROTECTIONS):
            return  # nothing blocks (an available override alone changes nothing)
        shadow = self.governing.protection.mode == "shadow"
        override = controls.OVERRIDE
        override_available = override.id in fired
        ctx, registry = self.ctx, controls.PROTECTIONS
        final = False
        for name in spec.hierarchy:
            if not record and name not in fired:
                continue  # a protection that did not fire only records a passing check
            if name == override.id:
                if record:
                    self._override_check(spec, override_available)
                continue
            if name not in spec.enabled:
                self._check(name, True, "disabled in the policy")
                continue
            if final:
                self._check(name, True, "not reached: core asset immunity already blocks")
                continue
            control = registry[name]
            detail = partial(control.detail, ctx, spec)
            if name not in fired:
                self._check(name, True, detail)
                continue
            if control.final:
                why = f" ({control.label} cannot be overridden)"
                self._block(name, _then(detail, why), shadow=shadow)
                final = not shadow
            elif override_available and name in spec.override_may_bypass:
                self.bypassed.append(name)
                self._check(name, True, _then(detail, "; bypassed by the regime override"))
            else:
                why = ""
                if override_available:
                    why = f"; the regime override may not bypass {control.label}"
                self._block(name, _then(detail, why), shadow=shadow)
        self._history_locks(spec, locks, shadow=shadow, override_available=override_available)
        if self.bypassed:
            regime = self.snapshot.regime
            self.override_reason = _override_reason(
                tuple(self.bypassed), regime.severity, regime.name, regime.changed_at
            )

    def _history_locks(
        self,
        spec: ProtectionSpec,
        locks: tuple[HistoryLock, ...],
        *,
        shadow: bool,
        override_available: bool,
    ) -> None:
        """After the hierarchy: the history-protection locks covering the order
        (`controls.history_locks`); an available override lifts those `may_bypass` lists."""
        if not locks:
            if self.record and spec.history:  # no line for a policy without any
                self._check("history", True, history_locks.passed(spec, self.ctx))
            return
        for lock in locks:
            name = history_locks.name(lock)
            detail = partial(history_locks.detail, lock, self.ctx)
            if override_available and history_locks.bypassable(lock, spec):
                self.bypassed.append(name)
                self._check(name, True, _then(detail, "; bypassed by the regime override"))
                continue
            why = ""
            if override_available:
                why = f"; the regime override may not bypass {lock.protection}"
            self._block(name, _then(detail, why), shadow=shadow)

    def _override_check(self, spec: ProtectionSpec, available: bool) -> None:
        override = controls.OVERRIDE
        if override.id not in spec.enabled:
            self._check(override.id, True, "disabled in the policy")
            return
        values = override.values(self.ctx, spec)
        self._check(override.id, True, partial(override.detail, self.ctx, spec, available), values)

    # -- limits ----------------------------------------------------------------------

    def limits(self, spec: LimitSpec | None) -> None:
        ctx, request = self.ctx, self.ctx.request
        shadow = self.governing.limits is not None and self.governing.limits.mode == "shadow"
        self._trading_state(spec)
        fired, record = self.fired, self.record
        if not request.increasing:
            if spec is not None and not fired.isdisjoint(self.governing.rules.limit_ids):
                for control in self.governing.rules.limits:  # every order but a cancel
                    if control.any_action and control.fired(fired, ctx) is not None:
                        self._breach(control, spec, shadow)
            if record:
                self._check(
                    "limits", True, f"{request.action} adds no exposure: risk limits do not apply"
                )
            return
        self._breaker_cuts()
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
            self._check("sizing", True, partial(_sizing_detail, ctx, spec))
        if not record and fired.isdisjoint(self.governing.rules.limit_ids):
            return  # no limit fired: every one passes
        configured = self.governing.rules.rule_ids
        for control in self.governing.rules.limits:
            if control.fired(fired, ctx) is None:  # passed, or not configured for this order
                if record and control.records_pass and control.configured_for(configured, ctx):
                    self._check(control.id, True, partial(control.passed, ctx, spec, self.fact))
                continue
            self._breach(control, spec, shadow)

    def _breach(self, control: Limit, spec: LimitSpec, shadow: bool) -> None:
        """A limit the order breaks: a block, or a size it must be cut to."""
        detail = partial(control.blocked, self.ctx, spec)
        if control.blocking or shadow:
            self._block(control.id, detail, shadow=shadow)
            return
        cap = control.allows(self.ctx, spec)
        assert cap is not None, f"{control.id}: a size limit says how many units it allows"
        self.size_limits.append((control.id, cap, detail))
        self._check(control.id, False, detail)

    def _breaker_cuts(self) -> None:
        """The tripped reduce_size breakers covering the order: size limits, always
        enforced (`controls.breaker_size`); none for an order that asks for no units."""
        ctx, control = self.ctx, controls.BREAKER_SIZE
        if not self.cuts or ctx.target <= ctx.current:
            return
        for cut in self.cuts:
            detail = partial(control.detail, ctx, cut)
            self.size_limits.append((control.name(cut), control.allows(ctx, cut), detail))
            self._check(control.name(cut), False, detail)

    def _trading_state(self, spec: LimitSpec | None) -> None:
        ctx, state_control = self.ctx, controls.TRADING_STATE
        if state_control.fired(self.fired, ctx) is not None:
            detail = partial(state_control.blocked, ctx, spec)
            self._block(r.TRADING_STATE, detail, shadow=False)  # breakers set it: always enforced
        elif self.record:
            state, action = ctx.trading_state, ctx.request.action
            self._check(r.TRADING_STATE, True, f"trading state {state} allows {action}")

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
        outcome, approved_size = self._sized(limits)
        approved = not self.blocking
        if not approved:
            outcome, approved_size = DENIED, None
        override = bool(self.bypassed) and approved
        if self.record:
            self._closing_checks(approved)
        # Approved with nothing to say: `reasons` words "passes every ..." when read.
        if approved and override and self.why:
            self.why.append(f"with {self.override_reason}")
        new_state = remember(state, ctx, now, approved or sent, override, self.governing)
        self.answer = (policies, outcome, approved_size, override, now, protection, limits)
        return _decision(  # every field, positionally (authority/slotted.py): the hot path
            request,
            approved,
            outcome,
            ctx.requested,
            approved_size,
            tuple(self.blocking) if self.blocking else (),
            override,
            self.override_reason if override else None,
            new_state,
            0,  # latency_us
            self,  # explanation
            ctx.current,  # held_size
        )

    def _sized(self, limits: LimitSpec | None) -> tuple[str, Decimal | None]:
        """The outcome and target size the size limits leave: the largest size every one
        allows (floored to the size increment), or their blocks when nothing is left, the
        order is blocked anyway, or the policy says `on_breach: deny`."""
        ctx = self.ctx
        if not self.size_limits:
            return APPROVED, ctx.target
        # A shadow-mode LimitPolicy enforces nothing, its on_breach neither (what is left
        # here then is a breaker's size cut, which the breakers enforce).
        enforced = self.governing.limits is not None and self.governing.limits.mode == "enforce"
        deny = limits is not None and limits.on_breach == "deny" and enforced
        if self.blocking or deny:  # denied whatever the cut leaves: every size limit named
            refused = deny and not self.blocking  # where it may have been downsized
            for name, _, detail in self.size_limits:
                self.blocking.append(name)
                self.why.append(detail)
            if refused and limits is not None:  # what the cut was, "" when none is left
                cap = min(cap for _, cap, _ in self.size_limits)
                self.why.append(partial(_refused, ctx, limits, cap))
            return DENIED, None
        # Floored to the size increment and the instrument's lot; an order cut below the
        # instrument's minimum quantity or value is denied (authority/instrument_rules.py):
        # instrument rules, like every limit, only where an enforced LimitPolicy governs.
        request = ctx.request
        rules = (
            instrument_rules.rules_of(ctx, limits)
            if enforced
            else instrument_rules.Rules(request.symbol)
        )
        increment = instrument_rules.order_increment(request.size_increment, rules)
        room = floor_to(min(cap for _, cap, _ in self.size_limits), increment)
        small = None  # what the cut leaves is too small to send
        if room > 0:
            price = instrument_rules.order_price(request.price, request.trigger_price, ctx.price)
            small = instrument_rules.too_small(rules, room, price)
        if room <= 0 or small is not None:  # name every size limit it breaks
            for name, _, detail in self.size_limits:
                self.blocking.append(name)
                self.why.append(detail)
            if small is not None:  # cut below the instrument's minimum: cannot be sent
                self.blocking.append(small[0])
                self.why.append(partial(_too_small, ctx, room, small[1]))
            return DENIED, None
        met = tuple(detail for _, _, detail in self.size_limits)
        if not ctx.request.increasing:  # a decrease cut to the size increment
            self.why.append(partial(_decrease_cut, ctx, room, met))
            return DOWNSIZED, ctx.current - room
        approved_size = ctx.current + room
        self.why.append(partial(_downsized, ctx.target, approved_size, met))
        return DOWNSIZED, approved_size

    # -- the explanation, worded when first read (answer.Explanation) -----------------

    def reasons(self) -> tuple[str, ...]:
        if self.worded is None:
            self.worded = _rendered(self.why) if self.why else self._passed()
        return self.worded

    def _passed(self) -> tuple[str, ...]:
        """The reason of an order approved with nothing else to say (nothing blocked
        or cut it: `finish` left `why` empty), worded when read."""
        request = self.ctx.request
        override = self.answer is not None and self.answer[3]
        with_override = f" (with {self.override_reason})" if override else ""
        return (
            f"{request.action} {request.symbol} passes every protection and limit{with_override}",
        )

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
        replay = Walk(
            self.ctx,
            self.fired,
            self.governing,
            self.snapshot,
            Clock(None),
            self.fact,
            record=True,
            locks=self.locks,
            cuts=self.cuts,
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
            actions=(VERB[outcome],),
            reasons=self.reasons(),
            inputs=_inputs(ctx),
            trace=checks,
            details=tuple(details),
        )


@lru_cache(maxsize=256)
def _override_reason(bypassed: tuple[str, ...], severity: str, name: str, since: datetime) -> str:
    """The regime override's wording: the same few per snapshot, worded once."""
    return (
        f"regime override bypassed {', '.join(bypassed)}: {severity} severity "
        f"{name} regime (since {render_value(since)})"
    )


def _rendered(details: Sequence[Detail]) -> tuple[str, ...]:
    """The reasons' words; a detail worded "" says nothing (`_refused` with no cut)."""
    words = (detail if isinstance(detail, str) else _render(detail) for detail in details)
    return tuple(word for word in words if word)


def _downsized(target: Decimal, approved: Decimal, met: tuple[Detail, ...]) -> str:
    wording = ", ".join(_rendered(met))
    return f"downsized from {shown(target)} to {shown(approved)} units to meet {wording}"


def _decrease_cut(ctx: Context, room: Decimal, met: tuple[Detail, ...]) -> str:
    wording = ", ".join(_rendered(met))
    return (
        f"decrease cut from {render_value(ctx.current - ctx.target)} to {render_value(room)} "
        f"units (leaving {render_value(ctx.current - room)} held, not "
        f"{render_value(ctx.target)}) to meet {wording}"
    )


def _too_small(ctx: Context, room: Decimal, why: str) -> str:
    return f"what the limits leave ({_cut(ctx, room)}) is {why}: denied"


def _refused(ctx: Context, limits: LimitSpec, cap: Decimal) -> str:
    """What `on_breach: deny` refused, worded when read: the cut the size limits would
    have left (floored as `Walk._sized` floors it); "" (no reason) when none is left."""
    rules = instrument_rules.rules_of(ctx, limits)
    room = floor_to(cap, instrument_rules.order_increment(ctx.request.size_increment, rules))
    if room <= 0:
        return ""
    return f"on_breach is deny: denied rather than {_cut(ctx, room)}"


def _cut(ctx: Context, room: Decimal) -> str:
    if ctx.request.increasing:
        return f"downsized to {shown(ctx.current + room)} units"
    return f"cut to a decrease of {shown(room)} units"


def _then(detail: Detail, suffix: str) -> Detail:
    """`detail` followed by `suffix`, still rendered only when read."""
    if not suffix:
        return detail
    if isinstance(detail, str):
        return detail + suffix
    return partial(_joined, detail, suffix)


def _joined(detail: Callable[[], str], suffix: str) -> str:
    return detail() + suffix


def _render(detail: Callable[[], str]) -> str:
    """A passing check's wording, rendered when the record is read; reading the record
    never raises into the caller (the decision itself is already made)."""
    try:
        return detail()
    except Exception as error:  # wording only: the outcome does not depend on it
        return f"(wording unavailable: {type(error).__name__}: {error})"


def _inputs(ctx: Context) -> tuple[tuple[str, str], ...]:
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


def _facts_detail(ctx: Context) -> str:
    return (
        f"{ctx.request.action} {ctx.request.symbol} in {ctx.account_id}: "
        f"{shown(ctx.current)} → {shown(ctx.target)} units"
    )


def _sizing_detail(ctx: Context, spec: LimitSpec) -> str:
    """The sizing check's words, when read (a function of the context, not a bound method
    of the walk: the walk keeps its checks, and a check keeping the walk would be a cycle
    that only the collector frees — see tests/service/test_no_cycles.py)."""
    return (
        f"sized from volatility: {shown(ctx.target - ctx.current)} units risk "
        f"{shown(spec.max_risk_per_trade_pct)} % of equity over "
        f"{shown(spec.atr_multiple)} × ATR {shown(ctx.atr or ZERO)}"
    )
