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

Orders (`check`, POST /api/v1/check; `report_order`, POST /api/v1/orders — answered by
`service.desk.Desk`): one DecisionAuthority answers every request
against the latest snapshot, at the feed's time, on the live policy set. It adopts
the evaluator's state after every cycle (breakers' trading states apply to orders)
and keeps its own memory (submit times, overrides, grace clocks) across requests;
that memory is saved with the engine state. No fresh data: no approval (503).

Manual resets (`reset_breaker`, POST /api/v1/breakers/reset, also `Desk`'s): what
`bastion eval --reset`
gives the engine, asked for over HTTP. Only a breaker tripped or cooling down for the
subject is taken; it waits in a queue (shown by `status`), the next cycle passes it to
`evaluate(..., resets=...)` and drops it, and the engine records the reset as a decision
with who and why. `on_reset_queued` (the scheduler's `run_soon`) runs that cycle at once.
"""

from __future__ import annotations

import gc
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
from bastion.engine.authority.history.evolve import longest_lookback_s
from bastion.engine.decision import Decision
from bastion.engine.errors import AdapterError, BastionError, TransientAdapterError
from bastion.engine.evaluation.breakers import key_of
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.evaluation.evaluate import evaluate, polling_interval_s
from bastion.engine.policy.kinds.breakers import Compare
from bastion.engine.policy.model import PolicySet
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import ARMED, State, StateError
from bastion.service import candidate as shadow
from bastion.service import escalations, locks
from bastion.service.alerting import api as alerting_api
from bastion.service.alerting.silences import Silences, silence_from_dict
from bastion.service.alerts import AlertRaised, AlertResolved, Alerts, LogAlerts, utc_now
from bastion.service.auditor import Auditor
from bastion.service.auth import LOCAL, Principal, Role
from bastion.service.candidate import Candidate
from bastion.service.desk import Desk
from bastion.service.feeds import Feed
from bastion.service.logs import new_correlation_id
from bastion.service.metrics import ServiceMetrics
from bastion.service.orders import (
    OrderAnswers,
)
from bastion.service.reloader import (
    PolicyReloader,
    ReloadRejected,
    accept_hint,
    policy_listing,
)
from bastion.service.resets import PendingReset, reset_fields
from bastion.service.state_store import StateSaveFailed, StateStore
from bastion.service.status_page import overview as status_overview
from bastion.service.status_page.activity import Activity
from bastion.service.versions import DEFAULT_KEEP, PolicyVersions

log = structlog.get_logger("bastion.service")

MIN_WALL_INTERVAL_S = 0.05
# The collector's thresholds once start-up is frozen (cli/serve.py; bench/eval/run.py
# measures them): a cycle allocates a snapshot's worth of objects that live until the next.
# Full collections become rare (x50, x1000); young ones stay short (10,000 objects beyond
# a tick's own turnover, gc_thresholds: 0.3-1.5 ms measured under load) and rare, because
# a check leaves no reference cycle behind (tests/service/test_no_cycles.py): with ~25
# cyclic objects a check, a collection of 10,000 garbage objects (2-7 ms) came every 0.4 s
# at 1,000 checks/s and set the HTTP p99. 100,000 young: no faster.
GC_THRESHOLDS = (10_000, 50, 1_000)
# The young threshold follows the book (gc_thresholds) while it fits under this: a young
# collection then walks at most this many live objects (~10 ms on the 2-core VM).
GC_YOUNG_MAX = 100_000


def gc_thresholds(positions: int) -> tuple[int, int, int]:
    """The collector's thresholds for a book of ``positions`` (`bastion serve` sets them
    after each cycle's snapshot). A tick makes about one tracked object per position (its
    Position; 10,196 at 10,000 positions) that lives until the next tick and is then
    freed by reference counting, not by the collector. At the base young threshold,
    every tick ran young collections that walked the new snapshot for nothing (one per
    tick at 10,000 positions: ~1 ms, ~7 % of the build). So the young threshold is the
    base plus twice the book — the turnover alone never reaches it — or GC_YOUNG_MAX
    while one and a half books still fit under it. A larger book keeps the base: one
    collection walking a whole 100,000-position snapshot measured slower than ten of
    10,000 (bench/eval/run.py --gc 100000: 0.92-0.94x the defaults against 0.89-0.90x)."""
    base, book = GC_THRESHOLDS[0], max(0, positions)
    if base + 2 * book <= GC_YOUNG_MAX:
        young = base + 2 * book
    elif base + book * 3 // 2 <= GC_YOUNG_MAX:
        young = GC_YOUNG_MAX
    else:
        young = base
    return (young, GC_THRESHOLDS[1], GC_THRESHOLDS[2])


def follow_book(positions: int) -> None:
    """Set :func:`gc_thresholds` for ``positions`` when they differ from the current."""
    wanted = gc_thresholds(positions)
    if gc.get_threshold() != wanted:
        gc.set_threshold(*wanted)


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
    # What it evaluated, for GET /api/v1/snapshot and `serve --record` (None: no data yet),
    # the state it started from, and its number since the process started (1, 2, ...).
    snapshot: Snapshot | None = None
    state_before: State | None = None
    number: int = 0


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
    on_reload: Callable[[Any, Mapping[str, str]], None] | None = None  # the console's line
    _fallbacks_said: set[str] = field(default_factory=set)  # logged, and still in force
    builder: SnapshotBuilder = field(init=False)
    authority: DecisionAuthority = field(init=False)  # answers orders; see `check`
    desk: Desk = field(init=False)  # answers checks, sent orders and resets
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
    # What failed to be written ("state", "audit") and why, until a write works again.
    _persist_failures: dict[str, str] = field(default_factory=dict)
    _persist_lock: threading.Lock = field(default_factory=threading.Lock)
    _stale_after: tuple[PolicySet, float] | None = None  # (the policy set, threshold)
    # The audit trail (bastion serve --audit); Auditor(None) writes nothing.
    auditor: Auditor = field(default_factory=lambda: Auditor(None))
    # The shadow candidate (--candidate DIR: service.candidate), and the versions served,
    # the last `keep_versions` kept in memory for POST /-/rollback (service.versions).
    candidate: Candidate | None = None
    keep_versions: int = DEFAULT_KEEP
    versions: PolicyVersions = field(init=False)
    # The recent past the status page shows (decisions, trips, alerts, reloads; bounded).
    activity: Activity = field(default_factory=Activity)
    cycles: int = 0  # cycles run since the process started
    # `bastion serve` (not a test or an embedding program): the collector's young
    # threshold follows the book, set after each snapshot (gc_thresholds).
    tune_gc: bool = False
    # The --alerts delivery (service.alerting.dispatcher.AlertDispatcher), for status.
    alert_dispatcher: Any = None

    def __post_init__(self) -> None:
        self.versions = PolicyVersions(self.keep_versions)
        self.versions.served(self.reloader.current, "start")
        self.reloader.on_swap = self.versions.served
        self.builder = SnapshotBuilder(self.feed.builder_config)
        # Starts from the state given (a --state file's memory included).
        self.authority = DecisionAuthority(self.reloader.current.compiled, state=self.state)
        self.desk = Desk(self)
        if self.alerts is None:
            self.alerts = Alerts([LogAlerts()], self.metrics.registry)
        if self.alerts.silences is None:  # POST /api/v1/silences (wall time: operators')
            self.alerts.silences = Silences(utc_now)
        self.activity.watch(self.alerts)  # the status page lists the alerts raised

    # -- one cycle --------------------------------------------------------------------

    def cycle(self) -> Cycle:
        """Poll, build, evaluate (with the policy set current at the start), record."""
        with self._lock, structlog.contextvars.bound_contextvars(cycle_id=new_correlation_id()):
            now = self.feed.cycle_now()  # sim / replay: the whole poll at this moment
            self.started_at = self.started_at or now
            loaded = self.reloader.current  # one read: this cycle sees one policy set
            self._fit_trade_lookback(loaded.compiled)
            snapshot, fresh = self._snapshot(now)
            if self.tune_gc and snapshot is not None:  # for the next cycles' builds
                follow_book(len(snapshot.positions))
            state_before = self.state
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
                if self.candidate is not None:  # the shadow set, after the serving one
                    self._shadow(snapshot, now, resets, loaded.version)
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
            self.cycles += 1
            self.last_cycle = Cycle(
                now, decisions, interval, loaded.version, fresh, snapshot, state_before, self.cycles
            )
            self.activity.cycle_done(self.last_cycle)  # the status page's recent past
            return self.last_cycle

    def _shadow(
        self, snapshot: Snapshot, now: datetime, resets: Sequence[Any], version: str
    ) -> None:
        """The candidate's cycle (service.candidate): never fails the serving one."""
        assert self.candidate is not None
        try:
            self.candidate.cycle(snapshot, now, resets, self.unevaluable, version)
        except Exception as error:  # counted and shown; promote refused until one succeeds
            log.exception("candidate_cycle_failed", candidate_version=self.candidate.version[:19])
            self.candidate.failed("cycle", error)
            self.auditor.record(
                "candidate_failed",
                subject="system:candidate",
                what="cycle",
                candidate_version=self.candidate.version,
                error=f"{type(error).__name__}: {error}"[:500],
            )
        else:
            self.candidate.cycle_succeeded()

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

    def _fit_trade_lookback(self, compiled: CompiledPolicySet) -> None:
        """The snapshot's closed trades reach back as far as the longest enabled history
        protection looks (never less than the feed's own setting): a lookback the
        snapshot does not cover would count too few trades — protection silently lost."""
        configured = self.feed.builder_config.trade_lookback_s
        longest = longest_lookback_s(compiled)
        wanted = configured if longest is None else max(configured, float(longest))
        if self.builder.config.trade_lookback_s != wanted:
            self.builder.config = replace(self.builder.config, trade_lookback_s=wanted)
            log.info("trade_lookback_set", lookback_s=wanted)

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
        said, self._fallbacks_said = self._fallbacks_said, {str(f) for f in built.fallbacks}
        for detail in sorted(self._fallbacks_said - said):  # once while it lasts, not per poll
            log.warning("snapshot_fallback", adapter=adapter, detail=detail)
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
                    f"{_counted(fresh)} cannot be evaluated and are left out of the "
                    f"snapshot (their accounts take no new risk); first: {fresh[0]}",
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
        every check: kept per policy set (the object: its version is a hash to compute)."""
        policy_set = self.reloader.current.policy_set
        cached = self._stale_after
        if cached is not None and cached[0] is policy_set:
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
        self._stale_after = (policy_set, stale_after)
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
            "policies": policy_listing(loaded.policy_set),
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
            "warnings": [
                f"{w.file}:{w.line}:{w.column}: {w.code} {w.message}" for w in event.warnings
            ],
        }

    # -- what the HTTP API asks (service.desk.Desk answers) -------------------------------

    def check(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/check: `Desk.check`."""
        return self.desk.check(body, principal)

    def report_order(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/orders: `Desk.report_order`."""
        return self.desk.report_order(body, principal)

    def reset_breaker(
        self, body: bytes, principal: Principal = LOCAL
    ) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/breakers/reset: `Desk.reset_breaker`."""
        return self.desk.reset_breaker(body, principal)

    def promote(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /-/promote (officer): `service.candidate.promote`."""
        return shadow.promote(self, body, principal)

    def rollback(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /-/rollback (officer): `service.candidate.rollback`."""
        return shadow.rollback(self, body, principal)

    def release_lock(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/locks/release (officer): `service.locks.release`."""
        return locks.release(self, body, principal)

    def escalate(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/escalations (operator): `service.escalations.escalate`."""
        return escalations.escalate(self, body, principal)

    def clear_escalation(
        self, body: bytes, principal: Principal = LOCAL
    ) -> tuple[int, dict[str, Any]]:
        """DELETE /api/v1/escalations (operator): `service.escalations.clear`."""
        return escalations.clear(self, body, principal)

    def overview(self, principal: Principal = LOCAL) -> dict[str, Any]:
        """GET /api/v1/overview (viewer): what the status page shows (`status_page`)."""
        return status_overview.overview(self, principal)

    def snapshot(self, account: str | None = None) -> tuple[int, dict[str, Any]]:
        """GET /api/v1/snapshot (viewer): the last cycle's snapshot (`status_page`);
        `?account=ID` (as with --ray): 404 unless the snapshot holds that account."""
        snapshot = self.last_snapshot
        if account and snapshot is not None and account not in {a.id for a in snapshot.accounts}:
            known = sorted(a.id for a in snapshot.accounts)
            return 404, {"error": f"account {account!r} is not in the snapshot (accounts: {known})"}
        return status_overview.last_snapshot(self)

    # -- silences (service.alerting.api): operator, audited ------------------------------

    def silence(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/silences: hold back matching alerts until a time, with a reason."""
        assert self.alerts is not None
        record = alerting_api.audit_recorder(self.auditor.record)
        status, answer = alerting_api.create_silence(
            self.alerts_silences(), record, body, principal
        )
        if status == 200:  # kept across a restart; a failed save is loud (persist_failed)
            answer["saved"] = self.store is not None and self.save_state()
        return status, answer

    def expire_silence(
        self, body: bytes, principal: Principal = LOCAL
    ) -> tuple[int, dict[str, Any]]:
        """DELETE /api/v1/silences: end a silence now."""
        record = alerting_api.audit_recorder(self.auditor.record)
        status, answer = alerting_api.expire_silence(
            self.alerts_silences(), record, body, principal
        )
        if status == 200:
            answer["saved"] = self.store is not None and self.save_state()
        return status, answer

    def silences(self) -> dict[str, Any]:
        """GET /api/v1/silences: active and recently expired silences."""
        return alerting_api.list_silences(self.alerts_silences())

    def alerts_silences(self) -> Silences | None:
        silences = None if self.alerts is None else self.alerts.silences
        return silences if isinstance(silences, Silences) else None

    @property
    def cycle_lock(self) -> threading.Lock:
        """Held by a cycle from its poll to its new state: a history-lock release takes it,
        so that a running cycle never writes back the lock it releases."""
        return self._lock

    def order_authority(self) -> DecisionAuthority:
        """The authority, on the policy set live now: a reload is swapped in at the next
        check. Under a lock so that a check holding an older set never swaps it back."""
        with self._authority_policies_lock:
            compiled = self.reloader.current.compiled
            if self.authority.policies is not compiled:
                self.authority.use_policies(compiled)  # the old set: freed by the GC
        return self.authority

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
            "silences": [] if (silences := self.alerts_silences()) is None else silences.to_list(),
            # A tripped breaker's alert, so that a restart keeps it firing and resolves it
            # when the breaker re-arms (restore); the other conditions are found afresh.
            "alerts_firing": [
                alert.to_dict()
                for alert in ([] if self.alerts is None else self.alerts.firing())
                if alert.kind == "breaker_tripped"
            ],
        }

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Start from a --state file's content (`StateStore.load().body`, or a legacy
        file's {"engine", "builder"}). Raises StateError when it is malformed."""
        try:
            state = State.from_dict(saved["engine"])
            builder_state = BuilderState.from_dict(saved["builder"])
            pending = [PendingReset.from_dict(p) for p in saved.get("pending_resets", [])]
            orders = OrderAnswers.from_list(saved.get("orders", []))
            kept = [silence_from_dict(s) for s in saved.get("silences", [])]
            firing = [AlertRaised.from_dict(a) for a in saved.get("alerts_firing", [])]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise StateError(f"not a `bastion serve` state file ({error!r})") from error
        self.state, self.builder_state, self.orders = state, builder_state, orders
        if (silences := self.alerts_silences()) is not None:
            silences.restore(kept)
        if self.alerts is not None:  # breakers still tripped: their alerts still fire
            self.alerts.restore_firing([a for a in firing if _still_tripped(state, a)])
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
            if self.alerts is not None:  # the persist_failed alert: resolved
                self.alerts.resolve(
                    AlertResolved(
                        self.feed.now(),
                        "persist_failed",
                        "critical",
                        f"{what} writes work again",
                        {"what": what},
                    )
                )

    def persist_failures(self) -> list[str]:
        """The /readyz reasons of the writes failing now, e.g. "state save failed: ..."."""
        return [
            f"{_PERSIST_LABELS.get(what, f'{what} write failed')}: {error}"
            for what, error in sorted(self._failed().items())
        ]

    def _failed(self) -> dict[str, str]:
        with self._persist_lock:
            return dict(self._persist_failures)

    def persist_reason(self, what: str) -> str | None:
        """Why writes of `what` ("state", "audit") fail now, or None when they work."""
        return self._failed().get(what)

    def auth_refused(
        self, *, principal: str | None, method: str, path: str, status: int, reason: str
    ) -> None:
        """A request the HTTP front refused (401 / 403 / 503), already counted and logged
        there: written to the audit trail (a failed write turns /readyz 503)."""
        self.auditor.auth_refused(
            principal=principal, method=method, path=path, status=status, reason=reason
        )

    def queue_reset(self, pending: PendingReset) -> PendingReset | None:
        """Queue a reset for the next cycle; returns the one it replaces (same breaker and
        subject), which goes, the new one at the end of the queue."""
        with self._resets_lock:
            replaced = self._pending_resets.pop(pending.key, None)
            self._pending_resets[pending.key] = pending
        return replaced

    def unqueue_reset(self, pending: PendingReset, replaced: PendingReset | None) -> None:
        """Take back a reset just queued (its save failed), restoring what it replaced."""
        with self._resets_lock:
            if self._pending_resets.get(pending.key) is pending:
                del self._pending_resets[pending.key]
                if replaced is not None:
                    self._pending_resets[pending.key] = replaced

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
            "locks": locks.locks_status(self),  # history locks blocking now (by id)
            "manual_escalations": escalations.active(self),  # operators' floors, by position
            # Orders reported since the snapshot, counted as exposure until one shows them.
            "pending_orders": self.authority.state.authority.pending.summary(
                self.feed.now(), self.last_snapshot.as_of if self.last_snapshot else None
            ),
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
            # The shadow candidate (--candidate) and the versions kept for a rollback.
            "candidate": None if self.candidate is None else self.candidate.status(),
            "policy_versions": self.versions.to_dict(),
            # Alerts firing, silences, and the --alerts delivery's queue and receivers.
            "alerts": self._alerts_status(),
        }

    def _alerts_status(self) -> dict[str, Any]:
        firing = [] if self.alerts is None else self.alerts.firing()
        return {
            "firing": [
                {
                    "at": a.at.isoformat(),
                    "kind": a.kind,
                    "severity": a.severity,
                    "summary": a.summary[:500],
                }
                for a in firing[-50:]
            ],
            "silences": self.silences()["silences"],
            "delivery": None if self.alert_dispatcher is None else self.alert_dispatcher.status(),
        }


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


def state_path_payload(service: Service) -> dict[str, Any]:
    """The --state file's content (`Service.state_payload`)."""
    return service.state_payload()


def _still_tripped(state: State, alert: AlertRaised) -> bool:
    """A saved breaker alert whose breaker the restored state holds tripped or cooling
    down (not armed): its condition still holds. Anything else is not restored."""
    if alert.kind != "breaker_tripped":
        return False
    policy, breaker_id, subject = (
        str(alert.details.get(k)) for k in ("policy", "breaker", "subject")
    )
    breaker = state.breakers.get(key_of(policy, breaker_id, subject))
    return breaker is not None and breaker.status != ARMED


def _counted(left_out: Sequence[Unevaluable]) -> str:
    """ "2 position(s) and 1 trade(s)": what was left out, by kind (the alert keeps its
    name, position_unevaluable, for the rules that route it)."""
    kinds: dict[str, int] = {}
    for item in left_out:
        kinds[item.kind] = kinds.get(item.kind, 0) + 1
    return " and ".join(f"{count} {kind}(s)" for kind, count in sorted(kinds.items()))
