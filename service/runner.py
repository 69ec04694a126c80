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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from bastion.adapters.builder import SnapshotBuilder, Unevaluable
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
from bastion.engine.state import ARMED, State, StateError
from bastion.service.alerts import AlertRaised, Alerts, LogAlerts
from bastion.service.auditor import Auditor
from bastion.service.auth import LOCAL, Principal, Role
from bastion.service.feeds import Feed
from bastion.service.logs import new_correlation_id
from bastion.service.metrics import ServiceMetrics
from bastion.service.orders import (
    OrderAnswers,
    ReportedOrder,
    ReportInvalid,
    parse_report,
    report_answer,
)
from bastion.service.reloader import (
    PolicyReloaded,
    PolicyReloader,
    ReloadRejected,
    accept_hint,
    audit_record,
)
from bastion.service.resets import PendingReset, ResetInvalid, parse_reset, reset_fields
from bastion.service.safe_text import body_problems
from bastion.service.state_store import StateSaveFailed, StateStore

log = structlog.get_logger("bastion.service")

MIN_WALL_INTERVAL_S = 0.05
# How /readyz names a failing write (Service.persist_failed).
_PERSIST_LABELS = {"state": "state save failed", "audit": "audit write failed"}


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
    last_poll_fatal: bool = False  # the last poll failed and retrying will not help
    unevaluable: tuple[Unevaluable, ...] = ()  # positions left out of the last snapshot
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
    # The --state file (None: nothing is saved) and what it keeps beside the engine state.
    store: StateStore | None = None
    state_edited: bool = False  # started from a hand-edited file (--accept-edited-state)
    orders: OrderAnswers = field(default_factory=OrderAnswers)  # answers to reported orders
    _save_lock: threading.Lock = field(default_factory=threading.Lock)  # one save at a time
    _report_lock: threading.Lock = field(default_factory=threading.Lock)  # one report at a time
    # What failed to be written ("state", "audit") and why, until a write works again.
    _persist_failures: dict[str, str] = field(default_factory=dict)
    _persist_lock: threading.Lock = field(default_factory=threading.Lock)
    _stale_after: tuple[str, float] | None = None  # (policy set version, threshold)
    # The audit trail (bastion serve --audit); Auditor(None) writes nothing.
    auditor: Auditor = field(default_factory=lambda: Auditor(None))

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
                    loaded.compiled,
                    snapshot,
                    self.state,
                    now,
                    resets=resets,
                    left_out=self.unevaluable,  # their accounts: no new risk
                )
                self.authority.adopt(self.state)  # trading states now apply to orders
                self._resets_done(pending, decisions)
            latency_s = time.perf_counter() - started
            interval = polling_interval_s(loaded.compiled, self.state)
            self.metrics.evaluation_done(latency_s, decisions, self.state, float(interval))
            for decision in decisions:
                log.info("decision_made", **_decision_fields(decision))
            self.auditor.retry()  # while the trail fails: ready again once it writes
            self.auditor.flush()  # the checks answered since the last cycle, fsynced
            self.auditor.decisions(decisions)  # a failure turns /readyz 503 (persist_failed)
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
            self.last_poll_fatal = not _transient(error)  # a retry will not fix it
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
        self._record_unevaluable(now, built.unevaluable)
        self.builder_state = built.state
        self.last_snapshot, self.last_success_at = built.snapshot, now
        self.last_adapter_error, self.last_poll_fatal = None, False
        self.metrics.data_age(adapter, float(built.snapshot.system.data_age_s))
        return built.snapshot, True

    def _record_unevaluable(self, now: datetime, left_out: tuple[Unevaluable, ...]) -> None:
        """Positions the builder left out (one bad record, not a blank snapshot): logged
        every poll, alerted when a position first becomes unevaluable, kept for status."""
        known = {item.id for item in self.unevaluable}
        for item in left_out:
            log.error("position_unevaluable", adapter=self.feed.adapter.name, **item.to_dict())
        fresh = [item for item in left_out if item.id not in known]
        if fresh and self.alerts is not None:
            self.alerts.raise_alert(
                AlertRaised(
                    now,
                    "position_unevaluable",
                    "warning",
                    f"{len(fresh)} position(s) cannot be evaluated and are left out of the "
                    f"snapshot; first: {fresh[0]}",
                    {"positions": [item.to_dict() for item in fresh]},
                )
            )
        self.unevaluable = left_out

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
        system.data_age_s in the live set (600 s when no breaker watches it). Read on
        every check: kept per policy set version."""
        policy_set = self.reloader.current.policy_set
        cached = self._stale_after
        if cached is not None and cached[0] == policy_set.version:
            return cached[1]
        limits = [
            float(breaker.condition.value)
            for policy in policy_set.of_kind("BreakerPolicy")
            if policy.mode == "enforce"
            for breaker in policy.spec.breakers
            if breaker.enabled
            and isinstance(breaker.condition, Compare)
            and breaker.condition.metric == "system.data_age_s"
        ]
        stale_after = min(limits, default=self.default_stale_after_s)
        self._stale_after = (policy_set.version, stale_after)
        return stale_after

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
        reasons.extend(self.persist_failures())
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

    def reload(
        self, principal: Principal = LOCAL, accept_removal: Sequence[str] = ()
    ) -> tuple[int, dict[str, Any]]:
        """POST /-/reload: the HTTP status and JSON answer.

        200 reloaded (or nothing changed); 422 rejected, the old set still serving: lint
        errors, or `reason: removes_protection` with `removals: [{key, message}]` that
        an officer accepts by posting them back as `accept_removal`; 403 when a
        principal below officer sends `accept_removal` (nothing is reloaded).
        """
        if accept_removal and not principal.allows(Role.OFFICER):
            self.auditor.record(
                "reload_rejected",
                principal=principal.name,
                subject="system:policies",
                reason="accept_removal_forbidden",
                accept_removal=list(accept_removal),
                version_before=self.reloader.current.version,
            )
            return 403, {
                "reloaded": False,
                "error": f"{principal.name} ({principal.role.label}) may not accept removing "
                "protection: only an officer may; reload without accept_removal",
            }
        event = self.reloader.reload(
            "http", principal=principal.name, accept_removal=tuple(accept_removal)
        )
        if isinstance(event, ReloadRejected):
            body: dict[str, Any] = {
                "reloaded": False,
                "reason": event.reason,
                "kept_version": event.kept_version,
                "errors": list(event.errors),
            }
            if event.refused_by_guard:
                body["removals"] = [{"key": r.key, "message": r.message} for r in event.removals]
                body["hint"] = accept_hint(event)
            return 422, body
        return 200, {
            "reloaded": True,
            "version": event.version,
            "changed": list(event.changed),
            "accepted_removals": [r.key for r in event.accepted_removals],
        }

    def check(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/check: may this order be sent? The HTTP status and JSON answer.

        A question: it records nothing (no submit, no open / close, no override, no grace
        clock); an order sent is reported with `report_order`. 200 with the decision,
        approved, downsized or denied alike (a denial is an answer); 422 when the body is
        not a valid request (the field is named); 503 with `approved: false` while the
        service is not ready (no fresh data, or its state cannot be saved): never an
        approval.
        """
        started = time.perf_counter()
        if not body.strip():
            return self._refused(
                principal, started, 422, "body: empty; send one order request as JSON"
            )
        try:
            text = body.decode("utf-8")
            if problems := body_problems(text):
                errors = [{"path": path, "message": message} for path, message in problems]
                return self._refused(
                    principal, started, 422, "body: text that cannot be kept", errors=errors
                )
            request = parse_request(text, source="body")
        except UnicodeDecodeError as error:
            return self._refused(principal, started, 422, f"body: not UTF-8 text ({error.reason})")
        except RequestError as error:
            invalid = error.errors if isinstance(error, RequestInvalid) else ()
            errors = [{"path": e.path, "message": e.message} for e in invalid]
            return self._refused(principal, started, 422, str(error), errors=errors)
        ready, reasons = self.ready()
        snapshot = self.last_snapshot  # one read: the check sees one snapshot
        if not ready or snapshot is None:
            message = "service not ready: no order is approved without fresh data"
            if self.persist_failures():  # fail closed: a sent order could not be remembered
                message = "service not ready: no order is approved while its state cannot be saved"
            return self._refused(principal, started, 503, message, request, reasons=reasons)
        try:  # an account the snapshot does not know is a caller's mistake, not a denial
            account = resolve_account(snapshot, request.account_id)
        except LookupError as error:
            path, _, message = str(error).partition(": ")
            errors = [{"path": path, "message": message}]
            return self._refused(principal, started, 422, f"body: {error}", request, errors=errors)
        result = self._authority().check(request, snapshot, self.feed.now())
        # Written before anything else says it was answered: no trail, no answer.
        if not self.auditor.order_checked(
            principal.name, status=200, request=request, result=result
        ):
            message = "not answered: the audit trail cannot be written; see /readyz"
            return self._refused(principal, started, 503, message, request)
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
        principal: Principal,
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
        if status != 503 or "audit trail" not in error:  # that one could not be written
            self.auditor.order_checked(principal.name, status=status, request=request, error=error)
        return status, {"approved": False, "error": error, **details}

    def report_order(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/orders: an order was sent. The check's body plus "order_id".

        Decided again on the latest snapshot (the decision it was sent under) and
        remembered whatever the answer — its submit, open / close and override count,
        since it was sent — then saved with the state, then answered: 200 with
        `recorded: true`, the order id and the decision. A second report of the same
        order id changes nothing and answers the first answer (`duplicate: true`). 422
        when the body is not a report (nothing recorded); 503 without a snapshot yet
        (nothing recorded: report it again) or when the state cannot be saved (recorded
        in memory, `saved: false`; a retry of the same id answers 200 once saved).
        """
        try:
            order_id, request = parse_report(body)
        except RequestError as error:
            invalid = error.errors if isinstance(error, ReportInvalid) else ()
            errors = [{"path": path, "message": message} for path, message in invalid]
            return self._report_refused(principal, 422, str(error), errors=errors)
        with self._report_lock:
            first = self.orders.get(order_id)
            if first is not None:
                return self._reported_again(principal, first)
            snapshot = self.last_snapshot  # one read: the report sees one snapshot
            if snapshot is None:
                message = "no market data yet: the order cannot be decided; report it again"
                return self._report_refused(principal, 503, message, order_id=order_id)
            try:
                account = resolve_account(snapshot, request.account_id)
            except LookupError as error:
                path, _, message = str(error).partition(": ")
                errors = [{"path": path, "message": message}]
                return self._report_refused(principal, 422, f"body: {error}", errors=errors)
            now = self.feed.now()
            result = self._authority().record_sent(request, snapshot, now)
            answer = report_answer(order_id, principal.name, result)
            self.orders.add(ReportedOrder(order_id, answer, now))
            saved = self.save_state()  # before the answer: kill -9 loses nothing answered
        self.metrics.order_reported(result.outcome)
        (log.info if result.approved else log.warning)(
            "order_reported",
            **_order_fields(request, account),
            order_id=order_id[:128],
            outcome=result.outcome,
            blocking=list(result.blocking),
            decision_id=result.decision.id,
            by=principal.name,
            saved=saved,
        )
        if not result.approved and self.alerts is not None:
            self.alerts.raise_alert(
                AlertRaised(
                    now,
                    "order_sent_denied",
                    "warning",
                    f"order {order_id[:128]} was sent though Bastion denies it "
                    f"({', '.join(result.blocking)}); recorded",
                    {"order_id": order_id[:128], "account": account},
                )
            )
        audited = self.auditor.order_reported(
            principal.name,
            status=200 if saved else 503,
            order_id=order_id,
            request=request,
            result=result,
        )
        return self._saved_answer(answer, saved, audited)

    def _reported_again(
        self, principal: Principal, first: ReportedOrder
    ) -> tuple[int, dict[str, Any]]:
        """A report of an order id already reported: nothing changes; the first answer
        (and, if the first save failed, one more try at saving it)."""
        saved = "state" not in self._failed() or self.save_state()
        self.metrics.order_reported("duplicate")
        log.info("order_reported", order_id=first.order_id[:128], duplicate=True, saved=saved)
        audited = self.auditor.order_reported(
            principal.name,
            status=200 if saved else 503,
            order_id=first.order_id,
            request=None,
            duplicate=True,
        )
        return self._saved_answer({**first.answer, "duplicate": True}, saved, audited)

    def _saved_answer(
        self, answer: dict[str, Any], saved: bool, audited: bool = True
    ) -> tuple[int, dict[str, Any]]:
        if saved and not audited:  # fail closed: acknowledged only once the trail holds it
            error = "recorded and saved, but the audit trail cannot be written; report it again"
            return 503, {**answer, "audited": False, "error": error}
        if saved:
            return 200, answer
        reason = self._persist_reason("state")
        error = f"recorded in memory but not saved ({reason}); report it again to confirm"
        return 503, {**answer, "saved": False, "error": error}

    def _report_refused(
        self, principal: Principal, status: int, error: str, **details: Any
    ) -> tuple[int, dict[str, Any]]:
        """A report not recorded: counted, logged and audited as outcome "error"."""
        self.metrics.order_reported("error")
        log.warning("order_reported", outcome="error", status=status, error=error[:1000])
        order_id = details.get("order_id")
        self.auditor.order_reported(
            principal.name, status=status, order_id=order_id, request=None, error=error
        )
        return status, {"recorded": False, "error": error, **details}

    # -- the --state file and persistence failures --------------------------------------

    def state_payload(self) -> dict[str, Any]:
        """What the --state file keeps: the evaluator's state with the order authority's
        memory (submits, trades, overrides, grace clocks), the snapshot builder's state,
        the resets queued and the answers to reported orders."""
        engine = self.state.with_authority(self.authority.state.authority)
        return {
            "engine": engine.to_dict(),
            "builder": self.builder_state.to_dict(),
            "pending_resets": [pending.to_dict() for pending in self.pending_resets()],
            "orders": self.orders.to_list(),
        }

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Start from a --state file's content (`StateStore.load().body`, or a legacy
        file's {"engine", "builder"}). Raises StateError when it is malformed."""
        try:
            state = State.from_dict(saved["engine"])
            builder_state = BuilderState.from_dict(saved["builder"])
            pending = [PendingReset.from_dict(p) for p in saved.get("pending_resets", [])]
            orders = OrderAnswers.from_list(saved.get("orders", []))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise StateError(f"not a `bastion serve` state file ({error!r})") from error
        self.state, self.builder_state, self.orders = state, builder_state, orders
        self.authority = DecisionAuthority(self.reloader.current.compiled, state=state)
        with self._resets_lock:
            self._pending_resets = {p.key: p for p in pending}

    def save_state(self) -> bool:
        """Write the --state file now; True when saved (or there is none). Never raises:
        a failure is counted, alerted and shown by /readyz (`persist_failed`) and the
        service goes on with its memory; the next save that works clears it."""
        if self.store is None:
            return True
        with self._save_lock:  # the payload is built inside: the last write has it all
            try:
                self.store.save(self.state_payload())
            except StateSaveFailed as error:
                self.persist_failed("state", str(error))
                return False
            except Exception as error:  # never kill a cycle or a request over a save
                self.persist_failed("state", f"{type(error).__name__}: {error}")
                return False
        self.persist_recovered("state")
        return True

    def persist_failed(self, what: str, error: str) -> None:
        """A write failed (`what`: "state" or "audit"): /readyz 503 with the reason until
        `persist_recovered(what)`, bastion_persist_failures_total{what}, a critical alert
        when it starts failing."""
        with self._persist_lock:
            started = what not in self._persist_failures
            self._persist_failures[what] = error
        self.metrics.persist_failed(what)
        log.error("persist_failed", what=what, error=error[:1000], started=started)
        if started and self.alerts is not None:
            self.alerts.raise_alert(
                AlertRaised(
                    self.feed.now(),
                    "persist_failed",
                    "critical",
                    f"{_PERSIST_LABELS.get(what, f'{what} write failed')}: {error[:500]}; "
                    "the service runs on in memory, /readyz is 503 and no order is approved",
                    {"what": what},
                )
            )

    def persist_recovered(self, what: str) -> None:
        """A write of `what` worked: ready again if nothing else fails (logged once)."""
        with self._persist_lock:
            failed = self._persist_failures.pop(what, None)
        if failed is not None:
            log.warning("persist_recovered", what=what, failed_with=failed[:1000])

    def persist_failures(self) -> list[str]:
        """The /readyz reasons of the writes failing now, e.g. "state save failed: ..."."""
        return [
            f"{_PERSIST_LABELS.get(what, f'{what} write failed')}: {error}"
            for what, error in sorted(self._failed().items())
        ]

    def _failed(self) -> dict[str, str]:
        with self._persist_lock:
            return dict(self._persist_failures)

    def _persist_reason(self, what: str) -> str:
        return self._failed().get(what, "unknown error")

    def reset_breaker(
        self, body: bytes, principal: Principal = LOCAL
    ) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/breakers/reset: queue an operator's manual reset for the next cycle.

        202 `queued: true` with the state keys it applies to, once the queue is saved
        with the state; 422 when the body is not a reset (the fields are named; text
        that cannot be kept, a "by" that is not the caller); 409 when no breaker of that
        id is tripped or cooling down for the subject (the ones that are, listed); 503
        when the state cannot be saved (nothing queued). A later request for the same
        breaker and subject replaces a queued one. Who resets is the principal's name;
        for `LOCAL` (no --auth: no identity) the body's required "by".
        """
        try:
            reset = parse_reset(body, by=None if principal == LOCAL else principal.name)
        except ResetInvalid as error:
            errors = [{"path": path, "message": message} for path, message in error.errors]
            return self._reset_refused(principal, 422, str(error), errors=errors)
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
            return self._reset_refused(principal, 409, message, reset, breakers_not_armed=not_armed)
        if not self.auditor.reset_requested(principal.name, status=202, reset=reset):
            message = "not queued: the audit trail cannot be written; see /readyz"
            return self._reset_refused(principal, 503, message, reset)
        pending = PendingReset(reset, self.feed.now())
        with self._resets_lock:
            # A replaced one goes to the end of the list.
            replaced = self._pending_resets.pop(pending.key, None)
            self._pending_resets[pending.key] = pending
        if not self.save_state():  # fail closed: an unsaved reset is not taken
            with self._resets_lock:
                if self._pending_resets.get(pending.key) is pending:
                    del self._pending_resets[pending.key]
                    if replaced is not None:
                        self._pending_resets[pending.key] = replaced
            message = f"not queued: the state cannot be saved ({self._persist_reason('state')})"
            return self._reset_refused(principal, 503, message, reset)
        self.metrics.breaker_reset("queued")
        log.info("breaker_reset_requested", **reset_fields(reset), result="queued", status=202)
        if self.on_reset_queued is not None:
            self.on_reset_queued()
        return 202, {"queued": True, **pending.to_dict(), "applies_to": matching}

    def _reset_refused(
        self,
        principal: Principal,
        status: int,
        error: str,
        reset: ManualReset | None = None,
        **details: Any,
    ) -> tuple[int, dict[str, Any]]:
        """A reset not taken: counted, logged and audited as result "rejected"."""
        self.metrics.breaker_reset("rejected")
        log.warning(
            "breaker_reset_requested",
            **(reset_fields(reset) if reset is not None else {}),
            result="rejected",
            status=status,
            error=error[:1000],  # the client's own values may be in it: bounded
        )
        if "audit trail" not in error:  # that one could not be written
            self.auditor.reset_requested(principal.name, status=status, reset=reset, error=error)
        return status, {"queued": False, "error": error, **details}

    def auth_refused(
        self, *, principal: str | None, method: str, path: str, status: int, reason: str
    ) -> None:
        """A request the HTTP front refused (401 / 403 / 503), already counted and logged
        there: written to the audit trail (a failed write turns /readyz 503)."""
        self.auditor.auth_refused(
            principal=principal, method=method, path=path, status=status, reason=reason
        )

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
            # What /readyz and the console say too: did the last poll work, and if not, why.
            "last_poll": {
                "ok": self.last_adapter_error is None and self.last_success_at is not None,
                "error": self.last_adapter_error,
                "fatal": self.last_poll_fatal,
                "last_success_at": None
                if self.last_success_at is None
                else self.last_success_at.isoformat(),
            },
            "unevaluable": [item.to_dict() for item in self.unevaluable],
            # The newest audit record: an anchor to keep elsewhere (`audit verify --anchor`).
            "audit_head": self.auditor.head(),
        }


def record_reload(service: Service, event: PolicyReloaded | ReloadRejected) -> None:
    """The reloader's callback: metrics, logs and (when rejected, or when an officer
    accepted removing protection) an alert; critical when the guard refused.

    Every event goes to the audit trail as `reloader.audit_record(event)` (versions
    before / after, changed policies and their files, removals, principal)."""
    metrics, reloader = service.metrics, service.reloader
    service.auditor.reload(audit_record(event), files=_policy_files(service, event.changed))
    if isinstance(event, PolicyReloaded):
        metrics.reload_succeeded(event.at, event.version, reloader.current.versions())
        log.info(
            "policy_reloaded",
            version=event.version,
            previous=event.previous_version,
            changed=list(event.changed),
            took_s=round(event.took_s, 4),
            trigger=event.trigger,
            principal=event.principal,
            accepted_removals=[r.key for r in event.accepted_removals],
        )
        if event.accepted_removals and service.alerts is not None:
            keys = [r.key for r in event.accepted_removals]
            service.alerts.raise_alert(
                AlertRaised(
                    event.at,
                    "protection_removed",
                    "warning",
                    f"{event.principal} accepted removing {len(keys)} protection(s) "
                    f"({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}); "
                    f"now serving {event.version[:19]}",
                    {"accepted_removals": keys, "principal": event.principal},
                )
            )
    elif event.refused_by_guard:
        metrics.reload_failed(event.at, event.reason)
        hint = accept_hint(event)
        log.critical(
            "reload_refused_removes_protection",
            kept_version=event.kept_version,
            removals=[r.key for r in event.removals],
            trigger=event.trigger,
            principal=event.principal,
            hint=hint,
        )
        if service.alerts is not None:
            service.alerts.raise_alert(
                AlertRaised(
                    event.at,
                    "reload_rejected",
                    "critical",
                    f"policy reload refused: it would remove {len(event.removals)} "
                    f"protection(s), first: {event.errors[0]}; still serving "
                    f"{event.kept_version[:19]}. {hint}",
                    {"removals": [r.as_dict() for r in event.removals], "hint": hint},
                )
            )
    else:
        metrics.reload_failed(event.at, event.reason)
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


def _policy_files(service: Service, changed: Sequence[str]) -> dict[str, str]:
    """ "Kind/name" -> its file, for the changed policies the serving set holds (a
    removed policy's file is gone with it)."""
    sources = {
        f"{p.kind}/{p.name}": str(p.source) for p in service.reloader.current.policy_set.policies
    }
    return {name: sources[name] for name in changed if name in sources}


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
    """The --state file's content (`Service.state_payload`)."""
    return service.state_payload()
