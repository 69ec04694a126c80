"""A shadow candidate: a second policy set evaluated beside the serving one, never enforcing.

`bastion serve --candidate DIR` loads DIR as a reload would (lint, and the guard against
the serving set: a candidate that could never be promoted is refused at start, exit 2)
and watches it with its own `PolicyReloader` (an edit that the guard or the lint
refuses keeps the previous candidate). Every cycle evaluates the candidate on the same
snapshot, at the same time, with the same resets, into its own state (in memory, never
saved); every order check and reported order is decided again by its own authority.
It changes nothing the serving set owns: state, orders, alerts, breakers.

What the two sets decide differently is a disagreement of one kind:

    trading_state  an account's trading state (ACTIVE / REDUCING / HALTED)
    breaker        a breaker's status for a subject (armed / tripped / cooldown)
    escalation     a position's escalation level
    check          an order check's outcome or approved size

Each is counted (`bastion_candidate_disagreements_total{kind}`), logged
(`candidate_disagreed`, once when it starts or changes: a standing one does not
repeat; `candidate_agreed` when it ends; a check's once per order shape and minute),
kept (the last few, for /api/v1/status) and audited (one `candidate_disagreements`
record per cycle with the cycle's new ones and the checks' since the last cycle).

The candidate's order check runs after the serving answer, on a worker thread of its
own (`start`): the answer never waits for it. Without the worker (tests, --once) it
runs inline, after the answer is computed. When the worker falls behind (its queue is
full), a check is skipped and counted in the status (`checks_skipped`).

When its cycle or a check raises (a candidate set the engine cannot evaluate), the
serving set is untouched; the failure is logged, counted
(`bastion_candidate_failures_total{what}`), shown (`failures`, `last_failure` in the
status) and, for a cycle, audited (`candidate_failed`); `promote` is refused (409,
`candidate_failing`) until one of its cycles succeeds again.

`promote` swaps the candidate in through the reload guard (`PolicyReloader.install`);
`rollback` swaps back a kept version (service.versions). Both between cycles and
between checks: the serving reloader's lock and one reference, as a reload.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from bastion.adapters.builder import Unevaluable
from bastion.engine.authority.answer import ExecutionDecision
from bastion.engine.authority.authority import DecisionAuthority
from bastion.engine.authority.order_list import OrderList
from bastion.engine.authority.order_list_check import LegDecision, ListDecision
from bastion.engine.authority.request import OrderRequest
from bastion.engine.decision import render_value
from bastion.engine.errors import UsageError
from bastion.engine.evaluation.breakers import ManualReset
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.policy.guard import removed_protection
from bastion.engine.snapshot import Snapshot
from bastion.engine.state import ARMED, State
from bastion.service.auth import Principal, Role
from bastion.service.metrics import CANDIDATE_FAILURES, CANDIDATE_KINDS
from bastion.service.reloader import (
    PolicyReloaded,
    PolicyReloader,
    ReloadEvent,
    ReloadRejected,
    audit_record,
)
from bastion.service.versions import ROLLBACK

if TYPE_CHECKING:
    from bastion.service.runner import Service

log = structlog.get_logger("bastion.service")

KINDS = CANDIDATE_KINDS
FAILURES = CANDIDATE_FAILURES  # what of its work can raise: counted, shown
RECENT = 10  # disagreements shown in /api/v1/status
AUDIT_CHECKS_PER_CYCLE = 100  # check disagreements written per cycle record (the rest counted)
CHECK_LOG_EVERY_S = 60.0  # a disagreeing order shape is logged again after this
QUEUE_SIZE = 1024  # checks waiting for the candidate; beyond: skipped, counted


@dataclass(frozen=True, slots=True)
class Disagreement:
    """The serving set and the candidate decided `subject` differently."""

    kind: str  # one of KINDS
    subject: str  # account:ID, a breaker state key, a position id, account:ID/SYMBOL/action
    serving: str
    candidate: str
    at: datetime  # feed time

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "serving": self.serving,
            "candidate": self.candidate,
            "at": self.at.isoformat(),
        }


def state_views(state: State) -> dict[tuple[str, str], str]:
    """What a cycle decided that the two sets are compared on, by (kind, subject)."""
    views: dict[tuple[str, str], str] = {}
    for account, trading in state.trading_states.items():
        views["trading_state", f"account:{account}"] = trading
    for key, breaker in state.breakers.items():
        if breaker.status != ARMED:
            views["breaker", key] = breaker.status
    for position, escalation in state.escalations.items():
        views["escalation", position] = escalation.level_name
    return views


_DEFAULTS = {"trading_state": "ACTIVE", "breaker": ARMED, "escalation": "none"}


def compare_states(serving: State, candidate: State, at: datetime) -> list[Disagreement]:
    """Every (kind, subject) the two states hold differently, in a stable order."""
    left, right = state_views(serving), state_views(candidate)
    found = []
    for kind, subject in sorted(left.keys() | right.keys()):
        default = _DEFAULTS[kind]
        mine, theirs = left.get((kind, subject), default), right.get((kind, subject), default)
        if mine != theirs:
            found.append(Disagreement(kind, subject, mine, theirs, at))
    return found


def check_view(result: ExecutionDecision | LegDecision) -> str:
    """An order check's (or a list leg's) outcome and approved size, as compared:
    "downsized 5"."""
    size = result.approved_size
    return result.outcome if size is None else f"{result.outcome} {render_value(Decimal(size))}"


def list_views(result: ListDecision) -> dict[str, str]:
    """An order list's outcome and each leg's, by subject: `list:ID` and
    `list:ID/orders[i]:account:ACCOUNT/SYMBOL/action`."""
    listed = f"list:{result.order_list.id[:128]}"
    views = {listed: result.outcome}
    for leg in result.legs:
        request = leg.result.request
        order = f"account:{request.account_id}/{request.symbol[:128]}/{request.action}"
        views[f"{listed}/orders[{leg.index}]:{order}"] = check_view(leg)
    return views


class Candidate:
    """The shadow candidate of one `Service`: its policies, state, authority, findings."""

    def __init__(self, reloader: PolicyReloader, service: Service) -> None:
        self.reloader = reloader
        self.service = service
        self.state: State = service.state  # starts where the serving set is; then its own
        self.authority = DecisionAuthority(reloader.current.compiled, state=self.state)
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.checks_skipped = 0
        self.failures: dict[str, int] = dict.fromkeys(FAILURES, 0)
        self.last_failure: dict[str, str] | None = None  # what, at, error
        self.last_cycle_failed = False
        self._standing: dict[tuple[str, str], Disagreement] = {}
        self._checks_logged: dict[tuple[str, str], tuple[str, float]] = {}
        self._recent: deque[Disagreement] = deque(maxlen=RECENT)
        self._unaudited: list[Disagreement] = []  # checks since the last cycle's record
        self._unaudited_dropped = 0
        self._lock = threading.Lock()  # the findings: a cycle and the check worker
        self._queue: queue.Queue[Callable[[], None] | None] | None = None
        self._worker: threading.Thread | None = None

    @classmethod
    def open(cls, directory: Path, service: Service, now: Callable[[], datetime]) -> Candidate:
        """Load DIR as a reload of the serving set would be loaded; UsageError (exit 2)
        naming the directory when it is refused: lint errors, no policies, or protection
        the serving set has and the candidate would remove."""
        holder: list[Candidate] = []
        reloader = PolicyReloader(
            directory,
            now=now,
            on_event=lambda event: holder[0].reloaded(event) if holder else None,
            baseline=lambda: service.reloader.current.policy_set,
        )
        try:
            loaded = reloader.load_initial()
        except Exception as error:
            raise UsageError(f"--candidate {directory}: refused: {error}") from error
        removals = removed_protection(service.reloader.current.policy_set, loaded.policy_set)
        if removals:
            listed = "".join(f"\n  {r.key}: {r.message}" for r in removals[:10])
            if len(removals) > 10:
                listed += f"\n  ... and {len(removals) - 10} more"
            raise UsageError(
                f"--candidate {directory}: refused: it would remove protection the serving "
                f"set ({service.reloader.current.version[:19]}) has, so a reload of it would "
                f"be refused and it could never be promoted:{listed}\nrestore the "
                "protection in the candidate, or remove it from the serving set first"
            )
        candidate = cls(reloader, service)
        holder.append(candidate)
        return candidate

    @property
    def version(self) -> str:
        return self.reloader.current.version

    # -- one cycle -------------------------------------------------------------------------

    def cycle(
        self,
        snapshot: Snapshot,
        now: datetime,
        resets: Sequence[ManualReset],
        left_out: Sequence[Unevaluable],
        serving_version: str,
    ) -> list[Disagreement]:
        """Evaluate the candidate as the serving set was, compare, record. Returns the
        disagreements that started or changed in this cycle."""
        loaded = self.reloader.current  # one read: this cycle sees one candidate set
        _decisions, self.state = evaluate(
            loaded.compiled, snapshot, self.state, now, resets=resets, left_out=left_out
        )
        self.authority.adopt(self.state)
        found = compare_states(self.service.state, self.state, now)
        with self._lock:
            current = {(d.kind, d.subject): d for d in found}
            started = [
                d
                for key, d in current.items()
                if key not in self._standing
                or (self._standing[key].serving, self._standing[key].candidate)
                != (d.serving, d.candidate)
            ]
            ended = [d for key, d in self._standing.items() if key not in current]
            self._standing = current
            for disagreement in started:
                self._counted(disagreement)
            checks, dropped = self._unaudited, self._unaudited_dropped
            self._unaudited, self._unaudited_dropped = [], 0
        for disagreement in started:
            log.warning("candidate_disagreed", **self._fields(disagreement, serving_version))
        for disagreement in ended:
            log.info("candidate_agreed", kind=disagreement.kind, subject=disagreement.subject)
        if started or checks or dropped:
            self.service.auditor.candidate_disagreements(
                serving_version=serving_version,
                candidate_version=loaded.version,
                cycle=[d.to_dict() for d in started],
                checks=[d.to_dict() for d in checks],
                checks_not_listed=dropped,
                standing=len(current),
            )
        return started

    def _counted(self, disagreement: Disagreement) -> None:
        """Under the lock: counted, kept for the status."""
        self.counts[disagreement.kind] += 1
        self._recent.append(disagreement)
        self.service.metrics.candidate_disagreed(disagreement.kind)

    def _fields(self, disagreement: Disagreement, serving_version: str) -> dict[str, Any]:
        return {
            **disagreement.to_dict(),
            "serving_version": serving_version[:19],
            "candidate_version": self.version[:19],
        }

    # -- order checks ----------------------------------------------------------------------

    def checked(
        self, request: OrderRequest, snapshot: Snapshot, now: datetime, served: ExecutionDecision
    ) -> None:
        """A serving check was answered: decide it on the candidate (queued to the worker
        when it runs, else at once) and compare."""
        self._submit(lambda: self._check(request, snapshot, now, served, sent=False))

    def sent(
        self, request: OrderRequest, snapshot: Snapshot, now: datetime, served: ExecutionDecision
    ) -> None:
        """An order was reported sent: the candidate's authority remembers it too (its
        submit rate, overrides), and its answer is compared as a check's."""
        self._submit(lambda: self._check(request, snapshot, now, served, sent=True))

    def checked_list(
        self, order_list: OrderList, snapshot: Snapshot, now: datetime, served: ListDecision
    ) -> None:
        """A serving list check was answered: the candidate decides the list too and its
        outcome and every leg's are compared (kind "check")."""
        self._submit(lambda: self._check_list(order_list, snapshot, now, served, sent=False))

    def sent_list(
        self, order_list: OrderList, snapshot: Snapshot, now: datetime, served: ListDecision
    ) -> None:
        """An order list was reported sent: the candidate remembers every leg too."""
        self._submit(lambda: self._check_list(order_list, snapshot, now, served, sent=True))

    def _submit(self, job: Callable[[], None]) -> None:
        if self._queue is None:
            self._run(job)
            return
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            with self._lock:
                self.checks_skipped += 1

    def _run(self, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as error:  # the candidate never fails the serving path
            log.exception("candidate_check_failed", candidate_version=self.version[:19])
            self.failed("check", error)

    def failed(self, what: str, error: BaseException) -> None:
        """Its cycle or a check raised (`what`: FAILURES): counted, shown in the status
        and metrics; after a failed cycle it is not promoted until a cycle succeeds."""
        with self._lock:
            self.failures[what] += 1
            self.last_failure = {
                "what": what,
                "at": self.service.feed.now().isoformat(),
                "error": f"{type(error).__name__}: {error}"[:500],
            }
            if what == "cycle":
                self.last_cycle_failed = True
        self.service.metrics.candidate_failed(what)

    def cycle_succeeded(self) -> None:
        with self._lock:
            self.last_cycle_failed = False

    def _on_current_set(self) -> None:
        """The candidate's authority on its live set: a candidate edit lands between checks."""
        compiled = self.reloader.current.compiled
        if self.authority.policies is not compiled:
            self.authority.use_policies(compiled)

    def _check(
        self,
        request: OrderRequest,
        snapshot: Snapshot,
        now: datetime,
        served: ExecutionDecision,
        *,
        sent: bool,
    ) -> None:
        self._on_current_set()
        if sent:
            mine = self.authority.record_sent(request, snapshot, now)
        else:
            mine = self.authority.check(request, snapshot, now)
        serving, candidate = check_view(served), check_view(mine)
        if serving == candidate:
            return
        subject = f"account:{request.account_id}/{request.symbol[:128]}/{request.action}"
        self._disagreed(subject, serving, candidate, now, served.decision.policy_version, sent)

    def _check_list(
        self,
        order_list: OrderList,
        snapshot: Snapshot,
        now: datetime,
        served: ListDecision,
        *,
        sent: bool,
    ) -> None:
        self._on_current_set()
        if sent:
            mine = self.authority.record_list_sent(order_list, snapshot, now)
        else:
            mine = self.authority.check_list(order_list, snapshot, now)
        ours = list_views(mine)
        for subject, serving in list_views(served).items():
            candidate = ours.get(subject, "absent")
            if serving != candidate:
                self._disagreed(subject, serving, candidate, now, served.policy_version, sent)

    def _disagreed(
        self,
        subject: str,
        serving: str,
        candidate: str,
        now: datetime,
        serving_version: str,
        sent: bool,
    ) -> None:
        """A check (or list leg) decided differently: counted, kept for the cycle's audit
        record, logged once a minute per (subject, serving answer)."""
        disagreement = Disagreement("check", subject, serving, candidate, now)
        wall = time.monotonic()
        with self._lock:
            self._counted(disagreement)
            if len(self._unaudited) < AUDIT_CHECKS_PER_CYCLE:
                self._unaudited.append(disagreement)
            else:
                self._unaudited_dropped += 1
            last = self._checks_logged.get((subject, serving))
            quiet = last is not None and last[0] == candidate and wall - last[1] < CHECK_LOG_EVERY_S
            if not quiet:
                if len(self._checks_logged) > 10_000:  # bounded: client-chosen subjects
                    self._checks_logged.clear()
                self._checks_logged[subject, serving] = (candidate, wall)
        if not quiet:
            log.warning(
                "candidate_disagreed", **self._fields(disagreement, serving_version), sent=sent
            )

    # -- the worker and the watcher --------------------------------------------------------

    def start(self) -> None:
        """Watch the candidate directory and decide checks on a worker thread."""
        self.reloader.start_watching()
        if self._worker is None:
            self._queue = queue.Queue(QUEUE_SIZE)
            self._worker = threading.Thread(
                target=self._work, name="bastion-candidate", daemon=True
            )
            self._worker.start()

    def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._run(job)
            finally:
                self._queue.task_done()

    def drain(self) -> None:
        """Wait until every check queued so far is decided (tests, shutdown)."""
        if self._queue is not None:
            self._queue.join()

    def stop(self) -> None:
        self.reloader.stop()
        worker, self._worker = self._worker, None
        if worker is not None and self._queue is not None:
            self._queue.put(None)
            worker.join(timeout=5)
            self._queue = None

    # -- what it shows ---------------------------------------------------------------------

    def reloaded(self, event: ReloadEvent) -> None:
        """The candidate reloader's callback: logged and audited (never alerted: the
        candidate protects nothing)."""
        record = audit_record(event)
        data = {k: v for k, v in record.items() if k not in ("event", "principal", "at")}
        kind = "candidate_reloaded" if isinstance(event, PolicyReloaded) else "candidate_rejected"
        self.service.auditor.record(kind, subject="system:candidate", **data)
        if isinstance(event, PolicyReloaded):
            log.info("candidate_reloaded", version=event.version, changed=list(event.changed))
        else:
            log.error(
                "candidate_reload_rejected",
                kept_version=event.kept_version,
                reason=event.reason,
                errors=list(event.errors),
            )

    def status(self) -> dict[str, Any]:
        """The `candidate` block of /api/v1/status."""
        loaded = self.reloader.current
        stats = self.reloader.stats
        with self._lock:
            return {
                "directory": str(self.reloader.directory),
                "version": loaded.version,
                "loaded_at": loaded.loaded_at.isoformat(),
                "disagreements": dict(self.counts),
                "standing": [d.to_dict() for d in self._standing.values()][:RECENT],
                "standing_count": len(self._standing),
                "recent": [d.to_dict() for d in self._recent],
                "checks_skipped": self.checks_skipped,
                "failures": dict(self.failures),
                "last_failure": self.last_failure,
                "last_cycle_failed": self.last_cycle_failed,
                "last_reload_failed": stats.last_attempt_failed,
                "last_reload_errors": list(stats.last_errors) if stats.last_attempt_failed else [],
            }


# -- promote and rollback (POST /-/promote, POST /-/rollback; officer) ----------------------


def _body(body: bytes, allowed: frozenset[str]) -> Mapping[str, Any] | str:
    """The JSON object of a promote / rollback body (empty: {}), or what is wrong."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        return f"body: not JSON ({error})"
    if not isinstance(data, dict) or set(data) - allowed:
        return f"body: a JSON object with only {', '.join(sorted(allowed))} (all optional)"
    accept = data.get("accept_removal", [])
    if not isinstance(accept, list) or not all(isinstance(k, str) and k for k in accept):
        return "body: accept_removal: must be a list of removal keys"
    if not isinstance(data.get("version", ""), str):
        return "body: version: must be a policy-set version (sha256:..., a prefix will do)"
    return data


def _officer(
    service: Service, principal: Principal, action: str, field: str
) -> tuple[int, dict[str, Any]] | None:
    if principal.allows(Role.OFFICER):
        return None
    service.auditor.record(
        f"{action}_refused",
        principal=principal.name,
        subject="system:policies",
        reason="role_too_low",
    )
    return 403, {
        field: False,
        "error": f"{principal.name} ({principal.role.label}) may not {action}: only an officer may",
    }


def _swapped(
    service: Service, event: ReloadEvent, action: str, field: str
) -> tuple[int, dict[str, Any]]:
    """The answer to a promotion or rollback, from the serving reloader's event (already
    counted, logged, alerted and audited as every reload event is)."""
    if isinstance(event, ReloadRejected):
        keys = [removal.key for removal in event.removals]
        return 422, {
            field: False,
            "reason": event.reason,
            "kept_version": event.kept_version,
            "errors": list(event.errors),
            "removals": [{"key": r.key, "message": r.message} for r in event.removals],
            "hint": f"if the removal is intended, an officer accepts it with POST /-/{action} "
            f"and the body {json.dumps({'accept_removal': keys})} (exact keys)",
        }
    return 200, {
        field: True,
        "version": event.version,
        "previous_version": event.previous_version,
        "changed": list(event.changed),
        "accepted_removals": [removal.key for removal in event.accepted_removals],
    }


def promote(service: Service, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
    """POST /-/promote: the candidate serves from now on (between two cycles / checks),
    through the reload guard; 409 without a candidate, 422 refused (nothing changes)."""
    forbidden = _officer(service, principal, "promote", "promoted")
    if forbidden is not None:
        return forbidden
    data = _body(body, frozenset({"accept_removal"}))
    if isinstance(data, str):
        return 422, {"promoted": False, "error": data}
    candidate = service.candidate
    if candidate is None:
        service.auditor.record(
            "promote_refused", principal=principal.name, subject="system:policies", reason="none"
        )
        return 409, {
            "promoted": False,
            "error": "no shadow candidate: start the service with --candidate DIR",
        }
    if candidate.last_cycle_failed:  # fail closed: a set that cannot evaluate never serves
        failure = candidate.last_failure or {}
        service.auditor.record(
            "promote_refused",
            principal=principal.name,
            subject="system:policies",
            reason="candidate_failing",
            candidate_version=candidate.version,
            error=failure.get("error", ""),
        )
        return 409, {
            "promoted": False,
            "reason": "candidate_failing",
            "error": (
                f"the candidate's last cycle failed ({failure.get('error', 'unknown error')}): "
                "fix the candidate (it reloads when its files change) and promote once a "
                "cycle has succeeded; see candidate.last_failure in GET /api/v1/status"
            ),
        }
    loaded = candidate.reloader.current
    event = service.reloader.install(
        loaded,
        "promote",
        principal=principal.name,
        accept_removal=tuple(data.get("accept_removal", ())),
        warnings=candidate.reloader.warnings,
    )
    return _swapped(service, event, "promote", "promoted")


def rollback(service: Service, body: bytes, principal: Principal) -> tuple[int, dict[str, Any]]:
    """POST /-/rollback: the previous serving version (or `version`, one kept in memory)
    serves again, through the reload guard; 409 when it is not kept (the reason says
    how to restore it), 422 refused by the guard."""
    forbidden = _officer(service, principal, "rollback", "rolled_back")
    if forbidden is not None:
        return forbidden
    data = _body(body, frozenset({"accept_removal", "version"}))
    if isinstance(data, str):
        return 422, {"rolled_back": False, "error": data}
    wanted = data.get("version")
    target = service.versions.target(wanted)
    if isinstance(target, str):
        service.auditor.record(
            "rollback_refused",
            principal=principal.name,
            subject="system:policies",
            reason="not_kept",
            version_requested=wanted,
            version_serving=service.reloader.current.version,
            error=target,
        )
        log.error("rollback_refused", requested=wanted, error=target)
        return 409, {"rolled_back": False, "error": target}
    event = service.reloader.install(
        target, ROLLBACK, principal=principal.name, accept_removal=data.get("accept_removal", ())
    )
    return _swapped(service, event, "rollback", "rolled_back")
