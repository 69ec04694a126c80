"""One partition: a whole `Service` over the accounts one partition owns.

`Partition` is plain Python (tested without Ray); the head runs it as a Ray actor
(`ray.remote(Partition)`, threaded: checks are answered while a cycle runs). Its feed is
the venue adapter cut down to its accounts (`accounts.AccountFilter`), it polls and
evaluates them on its own thread at the cadence the engine asks for, saves its own
--state file after every cycle and before answering a reported order (as the
single-process service does), and appends to its own audit chain (audit/partition-K/).

Policies come from the head, parsed (`PolicySet`, a few KiB): the partition compiles
them itself. A reload is two-phase (`prepare`, then `fence` + `commit` or `abort`, see
`gate`): each cycle records the version and the reload epoch it ran under
(`CycleRecord`), so that a mix is visible and tested.

A partition started again after its actor died reads its --state file (the engine
state, the order memory, the queued resets) and resumes its audit chain: what it
acknowledged before is there.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from bastion.adapters.sources.clock import SystemClock
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.policy.guard import removed_protection, unaccepted
from bastion.engine.policy.model import PolicySet
from bastion.service.alerts import Alerts
from bastion.service.audit import AuditTrail, key_from_env
from bastion.service.auditor import Auditor
from bastion.service.auth import LOCAL, Principal
from bastion.service.feeds import Feed, make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.ray.accounts import AccountFilter, PartitionMap, owned_by
from bastion.service.ray.gate import Gate
from bastion.service.ray.outbox import AlertOutbox
from bastion.service.reload_events import record_reload
from bastion.service.reloader import LoadedPolicies, PolicyReloaded, PolicyReloader
from bastion.service.runner import Service
from bastion.service.runner import _decision_fields as decision_fields
from bastion.service.state_store import StateStore

log = structlog.get_logger("bastion.service")

CYCLES_KEPT = 100_000  # the cycle records a partition keeps for the head (and the tests)
FENCE_WAIT_S = 10.0  # how long a fence waits for a running cycle to end
FENCE_LEASE_S = 30.0  # a fence left closed this long (the head gone) reopens


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """What an actor needs to build its partition; sent by the head (picklable)."""

    index: int
    partition_map: PartitionMap
    adapter: str = "sim"
    config: Mapping[str, Any] = field(default_factory=dict)
    speed: float = 60.0
    seed: int = 7
    state_path: str | None = None  # this partition's --state file
    audit_dir: str | None = None  # this partition's audit chain (None: none)
    # "module:function", called with the spec, returning the whole venue's Feed: a feed
    # that `make_feed` does not know (bench/scale's synthetic book).
    feed_factory: str | None = None


@dataclass(frozen=True, slots=True)
class CycleRecord:
    """One cycle of one partition: when (wall time, inside the gate), under which policy
    version and reload epoch, what it evaluated and the CPU it and its save took (its
    thread's)."""

    partition: int
    number: int
    started: float
    ended: float
    version: str
    epoch: int
    fresh: bool
    decisions: int
    positions: int
    cpu_s: float  # the cycle's (poll, build, evaluate, audit)
    save_cpu_s: float  # the --state save after it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ShippedPolicies(PolicyReloader):
    """A reloader over a policy set the head sent: nothing is read from disk here; new
    versions arrive through `install` (a reload's commit)."""

    def __init__(self, policy_set: PolicySet, *, now: Any, on_event: Any) -> None:
        super().__init__(Path("<policies sent by the head>"), now=now, on_event=on_event)
        self._shipped = policy_set

    def load_initial(self) -> LoadedPolicies:
        with self._lock:
            loaded = LoadedPolicies(self._shipped, compile_policy_set(self._shipped), self._now())
            self._current = loaded
            return loaded


class Partition:
    def __init__(self, spec: PartitionSpec, policy_set: PolicySet, epoch: int = 0) -> None:
        self.spec = spec
        self.index = spec.index
        wall = SystemClock()
        self._wall = wall
        built: list[Service] = []
        reloader = ShippedPolicies(
            policy_set, now=wall.now, on_event=lambda event: record_reload(built[0], event)
        )
        loaded = reloader.load_initial()
        metrics = ServiceMetrics()
        metrics.reload_succeeded(loaded.loaded_at, loaded.version, loaded.versions())
        store = None if spec.state_path is None else StateStore(Path(spec.state_path))
        saved = None
        if store is not None:
            store.check_directory()
            saved = store.load()
        # Alerts go to the head, which delivers them (silences, --alerts, one count):
        # counted here in a registry of their own, never rendered.
        self.outbox = AlertOutbox()
        alerts = Alerts([self.outbox], CollectorRegistry(auto_describe=False))
        service = Service(partition_feed(spec, wall), reloader, metrics, alerts, store=store)
        built.append(service)
        service.auditor = _auditor(spec, service, wall)
        if saved is not None:
            service.restore(saved.body)  # the order memory and queued resets too
        service.auditor.lifecycle(
            "service_started",
            adapter=spec.adapter,
            partition=spec.index,
            partitions=spec.partition_map.partitions,
            accounts=spec.partition_map.accounts_of(spec.index),
            policy_version=loaded.version,
            restored=saved is not None,
            state=spec.state_path,
            pid=os.getpid(),
        )
        self.service = service
        self.gate = Gate()
        self.epoch = epoch  # the reload epoch whose version serves here
        self._prepared: dict[int, LoadedPolicies] = {}
        self._log: deque[CycleRecord] = deque(maxlen=CYCLES_KEPT)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._interval_s = 1.0
        self._fail_prepare: str | None = None
        self._cycle_lock = threading.Lock()  # the loop and `run_cycle` never overlap
        service.on_reset_queued = self._wake.set

    # -- the loop -----------------------------------------------------------------------

    def start(self) -> bool:
        """Poll and evaluate on a thread of its own, at the engine's cadence."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"bastion-partition-{self.index}", daemon=True
            )
            self._thread.start()
        return True

    def stop(self) -> dict[str, Any] | None:
        """Stop the loop, save the state a last time, close the audit chain; its head."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        self.service.save_state()
        auditor = self.service.auditor
        auditor.lifecycle("service_stopped", state_saved=not self.service.persist_failures())
        head = auditor.head()
        if auditor.trail is not None:
            auditor.trail.close()
        return head

    def run_cycle(self) -> CycleRecord:
        """One cycle now, through the gate; saved after it (the loop's step)."""
        with self._cycle_lock:
            with self.gate.passing():
                started, cpu = time.time(), time.thread_time()
                cycle = self.service.cycle()
                cycle_cpu, ended, epoch = time.thread_time() - cpu, time.time(), self.epoch
            self.service.save_state()  # never raises: a failure turns /readyz 503
            save_cpu = time.thread_time() - cpu - cycle_cpu
            snapshot = cycle.snapshot
            record = CycleRecord(
                self.index,
                cycle.number,
                started,
                ended,
                cycle.policy_version,
                epoch,
                cycle.fresh_data,
                len(cycle.decisions),
                0 if snapshot is None else len(snapshot.positions),
                cycle_cpu,
                save_cpu,
            )
            self._log.append(record)
            self._interval_s = self.service.wall_interval_s(cycle)
            return record

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait_s = 1.0
            try:
                self.run_cycle()
                wait_s = self._interval_s
            except Exception as error:  # logged; the cadence goes on (as CycleScheduler)
                log.exception("cycle_failed", partition=self.index, error=repr(error))
            self._wake.wait(wait_s)
            self._wake.clear()

    def run_cycles(self, count: int) -> list[dict[str, Any]]:
        """`count` cycles back to back (bench/scale; the loop is not started there)."""
        return [self.run_cycle().to_dict() for _ in range(count)]

    # -- what the head asks -------------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        return {
            "partition": self.index,
            "pid": os.getpid(),
            "cycles": self.service.cycles,
            "version": self.service.reloader.current.version,
            "epoch": self.epoch,
            "looping": self._thread is not None and self._thread.is_alive(),
        }

    def check(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        with self.gate.passing():
            return self.service.check(body, principal)

    def report_order(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        with self.gate.passing():
            return self.service.report_order(body, principal)

    def reset_breaker(
        self, body: bytes, principal: Principal = LOCAL
    ) -> tuple[int, dict[str, Any]]:
        with self.gate.passing():
            return self.service.reset_breaker(body, principal)

    # -- operator actions (the head routes them here: `operator_routes`) ---------------

    def holds(self, kind: str, key: str) -> dict[str, Any]:
        """Is the target of an operator action here (`kind`: "position" in the last
        snapshot, "escalation" a manual one, "lock" a history lock)? When not, the ones
        that are (the head lists them when no partition holds it)."""
        state = self.service.state
        known: Iterable[str]
        if kind == "lock":
            found = key in state.locks  # released or over too: its partition answers why
            now = self.service.feed.now()
            known = (k for k, lock in state.locks.items() if lock.active(now))
        elif kind == "escalation":
            found, known = key in state.manual_escalations, state.manual_escalations
        else:
            snapshot = self.service.last_snapshot
            known = [] if snapshot is None else [p.id for p in snapshot.positions]
            found = key in known
        return {"found": found, "known": [] if found else sorted(known)}

    def escalate(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        with self.gate.passing():
            return self.service.escalate(body, principal)

    def clear_escalation(
        self, body: bytes, principal: Principal = LOCAL
    ) -> tuple[int, dict[str, Any]]:
        with self.gate.passing():
            return self.service.clear_escalation(body, principal)

    def release_lock(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        with self.gate.passing():
            return self.service.release_lock(body, principal)

    def alerts_after(self, seq: int, incarnation: str | None = None) -> dict[str, Any]:
        """The alerts raised and resolved since the head last took them (`outbox`)."""
        return self.outbox.after(seq, incarnation)

    def snapshot(self, _body: bytes = b"", _principal: Principal = LOCAL) -> tuple[int, Any]:
        """GET /api/v1/snapshot?account=ID: this partition's last snapshot (called as
        the head calls a routed request)."""
        return self.service.snapshot()

    def once(self) -> dict[str, Any]:
        """`bastion serve --ray --once`: one cycle through the gate, saved, and what the
        single-process --once prints of it (`cli.serve_ray.run_once` prints it)."""
        from bastion.cli.eval import render_text  # noqa: PLC0415 - the text of --once
        from bastion.service.console import once_fields  # noqa: PLC0415

        self.run_cycle()
        service = self.service
        cycle = service.last_cycle
        assert cycle is not None
        return {
            "partition": self.index,
            "fresh": cycle.fresh_data,
            "error": service.last_adapter_error,
            "fatal": service.last_poll_fatal,
            "text": render_text(cycle.decisions, service.state, cycle.interval_s, False),
            "unevaluable": [f"unevaluable: {item}" for item in service.unevaluable],
            "fields": once_fields(service, cycle),
            "decisions": [decision_fields(d) for d in cycle.decisions],
            "save_failed": service.persist_reason("state"),
        }

    def status(self) -> dict[str, Any]:
        return {
            **self.service.status(),
            "partition": self.index,
            "accounts": self.accounts(),
            "policy_version": self.service.reloader.current.version,
            "epoch": self.epoch,
            "cycles": self.service.cycles,
        }

    def ready(self) -> tuple[bool, list[str]]:
        return self.service.ready()

    def metrics_text(self) -> bytes:
        return self.service.metrics.render()[0]

    def accounts(self) -> list[str]:
        """The accounts of the last snapshot (the venue's, this partition's share)."""
        snapshot = self.service.last_snapshot
        return [] if snapshot is None else sorted(a.id for a in snapshot.accounts)

    def cycles(self, after: int = 0) -> list[dict[str, Any]]:
        """The cycle records numbered above `after` (oldest first)."""
        return [r.to_dict() for r in self._log if r.number > after]

    def audit(self, kind: str, **data: Any) -> bool:
        """A record the head asks this partition's chain to hold (a reload aborted)."""
        return self.service.auditor.record(kind, principal=None, subject="system:policies", **data)

    # -- a reload, in two phases (see `gate` and head.RayHead.reload) -------------------

    def prepare(
        self, epoch: int, policy_set: PolicySet, accept_removal: Collection[str] = ()
    ) -> dict[str, Any]:
        """Compile `policy_set` aside (serving goes on); {"ok", "version" | "error"}."""
        started = time.perf_counter()
        if self._fail_prepare is not None:  # a drill (`fail_next_prepare`)
            reason, self._fail_prepare = self._fail_prepare, None
            return {"ok": False, "partition": self.index, "error": reason}
        try:
            current = self.service.reloader.current
            removals = removed_protection(current.policy_set, policy_set)
            refused = unaccepted(removals, frozenset(accept_removal))
            if refused:
                keys = ", ".join(r.key for r in refused)
                return {
                    "ok": False,
                    "partition": self.index,
                    "error": f"removes protection not accepted: {keys}",
                }
            compiled = compile_policy_set(policy_set)
        except Exception as error:
            log.exception("reload_prepare_failed", partition=self.index)
            return {
                "ok": False,
                "partition": self.index,
                "error": f"{type(error).__name__}: {error}",
            }
        self._prepared[epoch] = LoadedPolicies(policy_set, compiled, self._wall.now())
        return {
            "ok": True,
            "partition": self.index,
            "version": policy_set.version,
            "took_s": time.perf_counter() - started,
        }

    def fence(
        self, epoch: int, wait_s: float = FENCE_WAIT_S, lease_s: float = FENCE_LEASE_S
    ) -> bool:
        """Close the gate for `epoch`'s commit: no cycle or check runs here until
        `commit` or `abort` (or the lease ends)."""
        return self.gate.close(epoch, wait_s=wait_s, lease_s=lease_s)

    def commit(
        self,
        epoch: int,
        trigger: str = "ray",
        principal: str | None = None,
        accept_removal: Collection[str] = (),
    ) -> dict[str, Any]:
        """Swap in `epoch`'s prepared set (the gate closed for it), then open the gate."""
        loaded = self._prepared.pop(epoch, None)
        if loaded is None or not self.gate.held_by(epoch):
            why = "not prepared" if loaded is None else "not fenced (its lease ran out?)"
            return {"ok": False, "partition": self.index, "error": f"epoch {epoch}: {why}"}
        event = self.service.reloader.install(
            loaded, trigger, principal=principal, accept_removal=accept_removal
        )
        ok = isinstance(event, PolicyReloaded)
        if ok:
            self.epoch = epoch
        self.gate.open(epoch)
        return {
            "ok": ok,
            "partition": self.index,
            "version": self.service.reloader.current.version,
            "epoch": self.epoch,
        }

    def abort(self, epoch: int) -> bool:
        """Drop `epoch`'s prepared set and open the gate: the old version serves on."""
        self._prepared.pop(epoch, None)
        self.gate.open(epoch)
        return True

    def fail_next_prepare(self, reason: str) -> bool:
        """Drills and tests: the next `prepare` fails with `reason` (as a compile error
        or a partition out of memory would), which aborts that reload everywhere."""
        self._fail_prepare = reason
        return True


def partition_feed(spec: PartitionSpec, wall: SystemClock) -> Feed:
    """The venue's feed, seen through this partition's accounts."""
    if spec.feed_factory is not None:
        module, _, name = spec.feed_factory.partition(":")
        whole: Feed = getattr(importlib.import_module(module), name)(spec)
    else:
        whole = make_feed(
            spec.adapter,
            spec.config,
            wall=wall,
            speed=spec.speed,
            seed=spec.seed,
            environ=os.environ,
        )
    owns = owned_by(spec.partition_map, spec.index)
    # An adapter that can ask the venue for some accounts only (`restricted_to`) polls
    # just this partition's share; the filter stays, so nothing else ever gets through.
    restrict = getattr(whole.adapter, "restricted_to", None)
    venue = restrict(owns) if callable(restrict) else whole.adapter
    adapter = AccountFilter(venue, owns)
    return Feed(
        adapter,  # a VenueAdapter: its optional capabilities too (see AccountFilter)
        whole.builder_config,
        whole.market_clock,
        whole.speed,
        whole.regime_name,
        whole.regime_severity,
    )


def _auditor(spec: PartitionSpec, service: Service, wall: SystemClock) -> Auditor:
    """This partition's chain (resumed where it ended), keyed as the head's
    (BASTION_AUDIT_KEY in the actor's environment)."""
    if spec.audit_dir is None:
        return Auditor(None)
    directory = Path(spec.audit_dir)
    directory.mkdir(parents=True, exist_ok=True)
    trail = AuditTrail.open(directory, clock=wall.now, key=key_from_env(os.environ))
    return Auditor(trail, on_failed=service.persist_failed, on_recovered=service.persist_recovered)
