"""The evaluation service: poll the feed, build a snapshot, evaluate, record, repeat.

One job, `cycle`, polls the adapter and evaluates at once (with one adapter a
separate poll job would only add a queue between them); APScheduler runs it at
the interval the engine asks for — the interval of the most escalated position,
in market seconds, divided by the feed's speed — and `reschedule_job` applies a
new interval as soon as the cycle that changed it ends. max_instances=1 and
coalesce=True: a slow cycle is never overlapped, and missed runs collapse into
one; misfire_grace_time is one interval, so a late run still happens.

Failing safe: when the adapter fails, the last snapshot is evaluated again with
its data age advanced to now, so the `stale_data` breaker (and /readyz) react as
data ages; an evaluation error is the engine's own fail-safe decision.

Orders (`check`, POST /api/v1/check): one DecisionAuthority answers every request
against the latest snapshot, at the feed's time, on the live policy set. It adopts
the evaluator's state after every cycle (breakers' trading states apply to orders)
and keeps its own memory (submit times, overrides, grace clocks) across requests;
that memory is saved with the engine state. No fresh data: no approval (503).

Manual resets (`reset_breaker`, POST /api/v1/breakers/reset): what `bastion eval --reset`
gives the engine, asked for over HTTP. Only a breaker tripped or cooling down for the
subject is taken; it waits in a queue (shown by `status`), the next cycle passes it to
`evaluate(..., resets=...)` and drops it, and the engine records the reset as a decision
with who and why. `on_reset_queued` (the scheduler's `run_soon`) runs that cycle at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from bastion.adapters.builder import SnapshotBuilder
from bastion.adapters.builder_state import BuilderState
from bastion.engine.authority.authority import DecisionAuthority
from bastion.engine.authority.check import resolve_account
from bastion.engine.authority.request import (
    OrderRequest,
    RequestError,
    RequestInvalid,
    parse_request,
)
from bastion.engine.breakers import ManualReset
from bastion.engine.decision import Decision, render_value
from bastion.engine.errors import AdapterError, BastionError, TransientAdapterError
from bastion.engine.evaluate import evaluate, polling_interval_s
from bastion.engine.policy.kinds.breakers import Compare
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import ARMED, State
from bastion.service.alerts import AlertRaised, Alerts, LogAlerts
from bastion.service.feeds import Feed
from bastion.service.logs import new_correlation_id
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloaded, PolicyReloader, ReloadRejected
from bastion.service.resets import PendingReset, ResetInvalid, parse_reset, reset_fields

log = structlog.get_logger("bastion.service")

MIN_WALL_INTERVAL_S = 0.05


@dataclass(slots=True)
class Cycle:
    """What one cycle did."""

    at: datetime
    decisions: tuple[Decision, ...]
    interval_s: Decimal  # market seconds until the next cycle
    policy_version: str
    fresh_data: bool


@dataclass(slots=True)
class Service:
    feed: Feed
    reloader: PolicyReloader
    metrics: ServiceMetrics
    alerts: Alerts | None = None
    default_stale_after_s: float = 600.0  # when no policy compares system.data_age_s
    state: State = field(default_factory=State)
    builder_state: BuilderState = field(default_factory=BuilderState)
    last_snapshot: Snapshot | None = None
    last_success_at: datetime | None = None
    last_cycle: Cycle | None = None
    last_adapter_error: str | None = None
    started_at: datetime | None = None
    on_reset_queued: Callable[[], None] | None = None  # run the next cycle now (scheduler)
    builder: SnapshotBuilder = field(init=False)
    authority: DecisionAuthority = field(init=False)  # answers orders; see `check`
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _authority_policies_lock: threading.Lock = field(default_factory=threading.Lock)
    # Taken on HTTP threads, applied by the cycle: under a lock of their own, so that a
    # request never waits for a running cycle.
    _pending_resets: dict[tuple[str, str], PendingReset] = field(default_factory=dict)
    _resets_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.builder = SnapshotBuilder(self.feed.builder_config)
        # Starts from the state given (a --state file's memory included).
        self.authority = DecisionAuthority(self.reloader.current.compiled, state=self.state)
        if self.alerts is None:
            self.alerts = Alerts([LogAlerts()], self.metrics.registry)

    # -- one cycle --------------------------------------------------------------------

    def cycle(self) -> Cycle:
        """Poll, build, evaluate (with the policy set current at the start), record."""
        with self._lock, structlog.contextvars.bound_contextvars(cycle_id=new_correlation_id()):
            now = self.feed.now()
            self.started_at = self.started_at or now
            loaded = self.reloader.current  # one read: this cycle sees one policy set
            snapshot, fresh = self._snapshot(now)
            pending = self.pending_resets()  # what was asked for until now: this cycle's
            started = time.perf_counter()
            if snapshot is None:  # no data to evaluate: the resets wait for a cycle with some
                decisions: tuple[Decision, ...] = ()
            else:
                resets = [p.reset for p in pending]
                decisions, self.state = evaluate(
                    loaded.compiled, snapshot, self.state, now, resets=resets
                )
                self.authority.adopt(self.state)  # trading states now apply to orders
                self._resets_done(pending, decisions)
            latency_s = time.perf_counter() - started
            interval = polling_interval_s(loaded.compiled, self.state)
            self.metrics.evaluation_done(latency_s, decisions, self.state, float(interval))
            for decision in decisions:
                log.info("decision_made", **_decision_fields(decision))
            assert self.alerts is not None
            self.alerts.from_decisions(now, decisions)
            self.last_cycle = Cycle(now, decisions, interval, loaded.version, fresh)
            return self.last_cycle

    def _resets_done(self, applied: Sequence[PendingReset], decisions: Sequence[Decision]) -> None:
        """Drop the resets this cycle passed to the engine. Kept when the evaluation failed
        safe (the state did not move); a newer request for the same breaker stays."""
        if any(decision.kind == "evaluation" for decision in decisions):
            return
        with self._resets_lock:
            for pending in applied:
                if self._pending_resets.get(pending.key) is pending:
                    del self._pending_resets[pending.key]
        made = {(d.rule, d.subject.label()) for d in decisions if d.outcome == "reset"}
        for pending in applied:
            if pending.key not in made:  # armed meanwhile (auto), or the subject is gone
                log.warning("breaker_reset_not_applied", **reset_fields(pending.reset))

    def _snapshot(self, now: datetime) -> tuple[Snapshot | None, bool]:
        started = time.perf_counter()
        adapter = self.feed.adapter.name
        try:
            poll = self.builder.poll(self.feed.adapter, now=now, state=self.builder_state)
            built = self.builder.build(
                poll,
                now=now,
                state=self.builder_state,
                regime=self.feed.regime(self.started_at or now),
                health=_health(self.feed),
            )
        except BastionError as error:  # AdapterError, DataError, SnapshotError: fail safe
            self.metrics.adapter_call(adapter, "poll", False, time.perf_counter() - started)
            self.last_adapter_error = f"{type(error).__name__}: {error}"
            log.error(
                "poll_failed",
                adapter=adapter,
                error=self.last_adapter_error,
                fatal=isinstance(error, AdapterError) and not _transient(error),
            )
            return self._aged(now), False
        self.metrics.adapter_call(adapter, "poll", True, time.perf_counter() - started)
        for fallback in built.fallbacks:
            log.warning("snapshot_fallback", adapter=adapter, detail=str(fallback))
        self.builder_state = built.state
        self.last_snapshot, self.last_success_at = built.snapshot, now
        self.last_adapter_error = None
        self.metrics.data_age(adapter, float(built.snapshot.system.data_age_s))
        return built.snapshot, True

    def _aged(self, now: datetime) -> Snapshot | None:
        """The last snapshot, as old as it really is now: staleness breakers see it."""
        if self.last_snapshot is None or self.last_success_at is None:
            return None
        age = Decimal(str((now - self.last_success_at).total_seconds()))
        system = self.last_snapshot.system
        aged = replace(system, data_age_s=system.data_age_s + age)
        self.metrics.data_age(self.feed.adapter.name, float(aged.data_age_s))
        return replace(self.last_snapshot, as_of=now, system=aged)

    def wall_interval_s(self, cycle: Cycle) -> float:
        return max(MIN_WALL_INTERVAL_S, float(cycle.interval_s) / self.feed.speed)

    # -- the view the HTTP endpoints read (service.http.ServiceView) --------------------

    def live(self) -> bool:
        return True

    def stale_after_s(self) -> float:
        """The policy's staleness threshold: the lowest enforce-mode breaker threshold on
        system.data_age_s in the live set (600 s when no breaker watches it)."""
        limits = [
            float(breaker.condition.value)
            for policy in self.reloader.current.policy_set.of_kind("BreakerPolicy")
            if policy.mode == "enforce"
            for breaker in policy.spec.breakers
            if breaker.enabled
            and isinstance(breaker.condition, Compare)
            and breaker.condition.metric == "system.data_age_s"
        ]
        return min(limits, default=self.default_stale_after_s)

    def ready(self) -> tuple[bool, list[str]]:
        reasons = []
        if self.last_cycle is None:
            reasons.append("no evaluation yet")
        if self.last_snapshot is None or self.last_success_at is None:
            reasons.append("no market data yet")
        else:
            age = (self.feed.now() - self.last_success_at).total_seconds()
            age += float(self.last_snapshot.system.data_age_s)
            limit = self.stale_after_s()
            if age >= limit:
                reasons.append(f"data is {age:.0f} s old (stale from {limit:.0f} s)")
        if self.last_adapter_error:
            reasons.append(f"last poll failed: {self.last_adapter_error}")
        return not reasons, reasons

    def policies(self) -> dict[str, Any]:
        loaded = self.reloader.current
        return {
            "version": loaded.version,
            "loaded_at": loaded.loaded_at.isoformat(),
            "policies": [
                {
                    "kind": p.kind,
                    "name": p.name,
                    "version": p.version,
                    "mode": p.mode,
                    "source": str(p.source),
                }
                for p in loaded.policy_set.policies
            ],
        }

    def reload(self) -> tuple[bool, dict[str, Any]]:
        event = self.reloader.reload("http")
        if isinstance(event, ReloadRejected):
            return False, {"kept_version": event.kept_version, "errors": list(event.errors)}
        return True, {"version": event.version, "changed": list(event.changed)}

    def check(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/check: may this order be sent? The HTTP status and JSON answer.

        200 with the decision, approved, downsized or denied alike (a denial is an
        answer); 422 when the body is not a valid request (the field is named); 503 with
        `approved: false` while the service has no fresh data: never an approval.
        """
        started = time.perf_counter()
        if not body.strip():
            return self._refused(started, 422, "body: empty; send one order request as JSON")
        try:
            request = parse_request(body.decode("utf-8"), source="body")
        except UnicodeDecodeError as error:
            return self._refused(started, 422, f"body: not UTF-8 text ({error.reason})")
        except RequestError as error:
            invalid = error.errors if isinstance(error, RequestInvalid) else ()
            errors = [{"path": e.path, "message": e.message} for e in invalid]
            return self._refused(started, 422, str(error), errors=errors)
        ready, reasons = self.ready()
        snapshot = self.last_snapshot  # one read: the check sees one snapshot
        if not ready or snapshot is None:
            message = "service not ready: no order is approved without fresh data"
            return self._refused(started, 503, message, request, reasons=reasons)
        try:  # an account the snapshot does not know is a caller's mistake, not a denial
            account = resolve_account(snapshot, request.account_id)
        except LookupError as error:
            path, _, message = str(error).partition(": ")
            errors = [{"path": path, "message": message}]
            return self._refused(started, 422, f"body: {error}", request, errors=errors)
        result = self._authority().can_execute(request, snapshot, self.feed.now())
        policy_version = result.decision.policy_version  # the set that decided
        outcome = "error" if "error" in result.blocking else result.outcome
        self.metrics.order_checked(outcome, time.perf_counter() - started)
        (log.warning if outcome == "error" else log.info)(
            "order_checked",
            **_order_fields(result.request, account),
            outcome=result.outcome,
            status=200,
            blocking=list(result.blocking),
            requested_size=_text(result.requested_size),
            approved_size=_text(result.approved_size),
            override_applied=result.override_applied,
            decision_id=result.decision.id,
            policy_version=policy_version[:19],
        )
        return 200, {**result.to_dict(), "policy_version": policy_version}

    def _authority(self) -> DecisionAuthority:
        """The authority, on the policy set live now: a reload is swapped in at the next
        check. Under a lock so that a check holding an older set never swaps it back."""
        with self._authority_policies_lock:
            compiled = self.reloader.current.compiled
            if self.authority.policies is not compiled:
                self.authority.use_policies(compiled)  # the old set: freed by the GC
        return self.authority

    def _refused(
        self,
        started: float,
        status: int,
        error: str,
        request: OrderRequest | None = None,
        **details: Any,
    ) -> tuple[int, dict[str, Any]]:
        """A check that gave no decision: counted and logged as outcome "error"."""
        self.metrics.order_checked("error", time.perf_counter() - started)
        log.warning(
            "order_checked",
            **(_order_fields(request, request.account_id) if request is not None else {}),
            outcome="error",
            status=status,
            error=error[:1000],  # the client's own values may be in it: bounded
        )
        return status, {"approved": False, "error": error, **details}

    def reset_breaker(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/breakers/reset: queue an operator's manual reset for the next cycle.

        202 `queued: true` with the state keys it applies to; 422 when the body is not a
        reset (the fields are named); 409 when no breaker of that id is tripped or cooling
        down for the subject (the ones that are, listed). A later request for the same
        breaker and subject replaces a queued one.
        """
        try:
            reset = parse_reset(body)
        except ResetInvalid as error:
            errors = [{"path": path, "message": message} for path, message in error.errors]
            return self._reset_refused(422, str(error), errors=errors)
        not_armed = self.breakers_not_armed()  # one read of the live state
        label = f"{reset.breaker_id}@{reset.subject}"  # the state key after "policy:"
        matching = sorted(key for key in not_armed if key.partition(":")[2] == label)
        if not matching:
            listed = ", ".join(
                sorted({f"{key.partition(':')[2]} ({status})" for key, status in not_armed.items()})
            )
            message = (
                f"{reset.breaker_id} is not tripped or cooling down for {reset.subject}: "
                f"nothing to reset; not armed now: {listed or 'none'}"
            )
            return self._reset_refused(409, message, reset, breakers_not_armed=not_armed)
        pending = PendingReset(reset, self.feed.now())
        with self._resets_lock:
            self._pending_resets.pop(pending.key, None)  # a replaced one: to the end of the list
            self._pending_resets[pending.key] = pending
        self.metrics.breaker_reset("queued")
        log.info("breaker_reset_requested", **reset_fields(reset), result="queued", status=202)
        if self.on_reset_queued is not None:
            self.on_reset_queued()
        return 202, {"queued": True, **pending.to_dict(), "applies_to": matching}

    def _reset_refused(
        self, status: int, error: str, reset: ManualReset | None = None, **details: Any
    ) -> tuple[int, dict[str, Any]]:
        """A reset not taken: counted and logged as result "rejected"."""
        self.metrics.breaker_reset("rejected")
        log.warning(
            "breaker_reset_requested",
            **(reset_fields(reset) if reset is not None else {}),
            result="rejected",
            status=status,
            error=error[:1000],  # the client's own values may be in it: bounded
        )
        return status, {"queued": False, "error": error, **details}

    def pending_resets(self) -> list[PendingReset]:
        """The resets taken and not yet applied, in the order they were asked for."""
        with self._resets_lock:
            return list(self._pending_resets.values())

    def breakers_not_armed(self) -> dict[str, str]:
        """State key (`policy:breaker@scope:id`) to status, for every breaker not armed."""
        return {k: v.status for k, v in sorted(self.state.breakers.items()) if v.status != ARMED}

    def status(self) -> dict[str, Any]:
        cycle = self.last_cycle
        return {
            "trading_states": dict(self.state.trading_states),
            "escalations": {k: v.level_name for k, v in self.state.escalations.items()},
            "breakers_not_armed": self.breakers_not_armed(),
            "pending_resets": [pending.to_dict() for pending in self.pending_resets()],
            "last_evaluation": None
            if cycle is None
            else {
                "at": cycle.at.isoformat(),
                "decisions": len(cycle.decisions),
                "polling_interval_s": str(cycle.interval_s),
                "policy_version": cycle.policy_version,
                "fresh_data": cycle.fresh_data,
            },
        }


def record_reload(service: Service, event: PolicyReloaded | ReloadRejected) -> None:
    """The reloader's callback: metrics, logs and (when rejected) an alert."""
    metrics, reloader = service.metrics, service.reloader
    if isinstance(event, PolicyReloaded):
        metrics.reload_succeeded(event.at, event.version, reloader.current.versions())
        log.info(
            "policy_reloaded",
            version=event.version,
            previous=event.previous_version,
            changed=list(event.changed),
            took_s=round(event.took_s, 4),
            trigger=event.trigger,
        )
    else:
        metrics.reload_failed(event.at)
        log.error(
            "reload_rejected",
            kept_version=event.kept_version,
            errors=list(event.errors),
            trigger=event.trigger,
        )
        if service.alerts is not None:
            first = event.errors[0] if event.errors else "unknown error"
            service.alerts.raise_alert(
                AlertRaised(
                    event.at,
                    "reload_rejected",
                    "warning",
                    f"policy reload rejected ({len(event.errors)} error(s), first: {first}); "
                    f"still serving {event.kept_version[:19]}",
                    {"errors": list(event.errors)},
                )
            )


def _transient(error: BaseException) -> bool:
    return isinstance(error, TransientAdapterError)


def _health(feed: Feed) -> tuple[Any, ...]:
    health = getattr(feed.adapter, "health", None)
    return tuple(health()) if callable(health) else ()


def _decision_fields(decision: Decision) -> dict[str, Any]:
    return {
        "decision_id": decision.id,
        "kind": decision.kind,
        "policy": decision.policy,
        "policy_version": decision.policy_version[:19],
        "rule": decision.rule,
        "subject": decision.subject.label(),
        "outcome": decision.outcome,
        "actions": list(decision.actions),
        "mode": decision.mode,
        "reason": decision.reasons[0] if decision.reasons else "",
    }


def _order_fields(request: OrderRequest, account: str | None) -> dict[str, Any]:
    """What an `order_checked` event says about the order (client text: bounded)."""
    return {
        "symbol": request.symbol[:128],
        "action": request.action,
        "account": None if account is None else account[:128],
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else render_value(value)


def state_path_payload(service: Service) -> dict[str, Any]:
    """The --state file: the evaluator's state with the order authority's memory (submit
    times, overrides, grace clocks), which only the authority keeps up to date."""
    engine = service.state.with_authority(service.authority.state.authority)
    return {"engine": engine.to_dict(), "builder": service.builder_state.to_dict()}
