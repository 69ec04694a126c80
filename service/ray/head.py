"""The head of `bastion serve --ray`: N partition actors behind one HTTP front.

- **Routing.** POST /api/v1/check and /api/v1/orders go to the partition that owns the
  body's `account_id` (`accounts.PartitionMap.owner`); an account no partition has seen
  is refused 422 (the accounts known are named). An order list must name one account.
  A reset goes to the account's partition (`account:ID`), else to every partition.
  A manual escalation or lock release goes to the partition holding its position or
  lock (`operator_routes`); GET /api/v1/snapshot?account=ID to the account's.
- **Alerts** are raised by the partitions and delivered once here, with the silences
  (`head_alerts`); --once is `run_once` (cli/serve_ray.py).
- **Merging.** /api/v1/status has each partition's status under `partitions` and the
  trading states of all accounts at the top; /metrics is one exposition, every sample
  labelled `partition` (`metrics_merge`); /readyz is ready when every partition is
  (`head_views`).
- **Reload with a version barrier** (`reload_policies`, `barrier`): the head reads and lints the
  directory and applies the protection guard, then (1) every partition compiles the new
  set aside (`prepare`; serving goes on), (2) every partition closes its gate (`fence`:
  the running cycle ends, nothing new starts), (3) every partition swaps (`commit`) and
  opens its gate. A partition that cannot prepare or fence aborts the reload on all of
  them: refused (422), audited in the head's chain and in every partition's, the old
  version serving on. Each cycle records its version and epoch (`Partition.cycles`).
- **A partition that dies** (its actor killed, its node lost) is noticed by the call
  that fails or by the health check (`check_health`, every `health_interval_s`): its
  accounts are REDUCING at once — checks and reports for them answer 503 with
  `trading_state: REDUCING`, never an approval — and a new actor is started from the
  partition's --state file and audit chain (what it acknowledged was saved before the
  answer); it serves the version the others serve. Audited (`partition_died`,
  `partition_restarted`) and counted (`bastion_ray_partition_up`, `..._restarts_total`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray
import structlog
from ray.exceptions import GetTimeoutError, RayError

from bastion.engine.policy.model import PolicySet
from bastion.service.auditor import Auditor
from bastion.service.auth import LOCAL, Principal, Role
from bastion.service.policy_watch import DirectoryWatcher
from bastion.service.ray import barrier, head_views, operator_routes
from bastion.service.ray.accounts import PartitionMap
from bastion.service.ray.head_alerts import HeadAlerts
from bastion.service.ray.metrics_merge import HeadMetrics
from bastion.service.ray.partition import Partition, PartitionSpec
from bastion.service.ray.slots import (
    CALL_TIMEOUT_S,
    DOWN,
    PLAYBOOK,
    REDUCING,
    SERVING,
    START_TIMEOUT_S,
    Slot,
    policy_versions,
    read_policies,
)

log = structlog.get_logger("bastion.service")


class RayHead:
    def __init__(
        self,
        specs: Sequence[PartitionSpec],
        policies: Path,
        *,
        auditor: Auditor | None = None,
        metrics: HeadMetrics | None = None,
        actor_options: dict[str, Any] | None = None,
        loops: bool = True,
        health_interval_s: float | None = 1.0,
        alerts: HeadAlerts | None = None,
    ) -> None:
        self.slots = [Slot(spec) for spec in specs]
        self.partition_map: PartitionMap = specs[0].partition_map
        self.policy_dir = Path(policies)
        self.auditor = auditor or Auditor(None)
        self.metrics = metrics or HeadMetrics()
        self.metrics.partition_texts = self._partition_metrics
        self.alerts = alerts or HeadAlerts(self.metrics)
        self.alerts.auditor = self.auditor  # silences are audited in the head's chain
        self.actor_options = {"num_cpus": 1, "max_concurrency": 16, **(actor_options or {})}
        self.loops = loops  # False: cycles only when asked (`run_cycles`), for benchmarks
        self.health_interval_s = health_interval_s
        self.policy_set: PolicySet | None = None
        self.epoch = 0
        self.loaded_at: datetime | None = None
        self.lock = threading.RLock()  # one reload or restart at a time
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._watcher: DirectoryWatcher | None = None
        self._remote: Any = ray.remote(Partition)

    # -- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        """Read the policies (PolicySetError: exit 2), start every partition, watch."""
        self.policy_set = read_policies(self.policy_dir)
        self.loaded_at = datetime.now(UTC)
        self.metrics.reload_succeeded(
            self.loaded_at, self.policy_set.version, policy_versions(self.policy_set)
        )
        for slot in self.slots:
            self._spawn(slot)
        self.metrics.reload_epoch.set(self.epoch)
        self.alerts.start()
        self.auditor.lifecycle(
            "service_started",
            ray=True,
            partitions=len(self.slots),
            policy_version=self.policy_set.version,
            accounts={str(s.index): s.accounts for s in self.slots},
        )
        if self.health_interval_s:
            self._monitor = threading.Thread(target=self._watch_health, daemon=True)
            self._monitor.start()

    def watch_policies(self) -> None:
        """Reload on every change of the policy directory (as `bastion serve` does)."""
        self._watcher = DirectoryWatcher(
            self.policy_dir, on_change=lambda: self.reload_policies("watch")
        )
        self._watcher.start()

    def stop(self) -> list[dict[str, Any] | None]:
        """Stop watching and every partition (each saves its state and closes its
        chain); the heads of their chains."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.stop()
        if self._monitor is not None:
            self._monitor.join(10)
        self.collect_alerts()  # what the last cycles raised, delivered before stopping
        self.alerts.stop()
        heads: list[dict[str, Any] | None] = []
        for slot in self.slots:
            if slot.actor is None:
                continue
            try:
                heads.append(ray.get(slot.actor.stop.remote(), timeout=CALL_TIMEOUT_S))
            except RayError as error:
                log.error("partition_stop_failed", partition=slot.index, error=repr(error))
                heads.append(None)
            ray.kill(slot.actor)
            slot.actor, slot.state = None, DOWN
        self.auditor.lifecycle("service_stopped")
        return heads

    def _spawn(self, slot: Slot) -> None:
        """A new actor for `slot`, from its saved state, on the serving version."""
        assert self.policy_set is not None
        actor = self._remote.options(**self.actor_options).remote(
            slot.spec, self.policy_set, self.epoch
        )
        ray.get(actor.ping.remote(), timeout=START_TIMEOUT_S)
        if self.loops:
            ray.get(actor.start.remote(), timeout=START_TIMEOUT_S)
        slot.actor, slot.state, slot.error, slot.down_since = actor, SERVING, None, None
        slot.accounts = self.partition_map.accounts_of(slot.index)
        self.metrics.partition_up.labels(str(slot.index)).set(1)

    # -- health: a partition that died ----------------------------------------------------

    def _watch_health(self) -> None:
        assert self.health_interval_s
        while not self._stop.wait(self.health_interval_s):
            try:
                self.check_health()
                self.collect_alerts()
            except Exception:  # counted and logged; the next round tries again, and a
                # call routed to a dead partition still answers 503 (never an approval)
                log.exception("partition_health_check_failed")
                self.metrics.health_check_failures.inc()

    def check_health(self) -> list[int]:
        """Ping every partition; one that does not answer is down (its accounts
        REDUCING) and is started again from its saved state. The partitions restarted."""
        restarted = []
        for slot in self.slots:
            if slot.state == SERVING:
                try:
                    ray.get(slot.actor.ping.remote(), timeout=CALL_TIMEOUT_S)
                except RayError as error:
                    self.mark_down(slot, error)
            if slot.state == DOWN and not self._stop.is_set() and self._restart(slot):
                restarted.append(slot.index)
        return restarted

    def mark_down(self, slot: Slot, error: BaseException) -> None:
        with self.lock:
            if slot.state == DOWN:
                return
            slot.state, slot.down_since = DOWN, datetime.now(UTC)
            slot.error = f"{type(error).__name__}: {str(error)[:300]}"
        self.metrics.partition_up.labels(str(slot.index)).set(0)
        self.alerts.partition_down(slot)
        log.error(
            "partition_died",
            partition=slot.index,
            accounts=slot.accounts,
            error=slot.error,
            playbook=PLAYBOOK,
        )
        self.auditor.record(
            "partition_died",
            principal=None,
            subject=f"system:partition-{slot.index}",
            accounts=slot.accounts,
            trading_state=REDUCING,
            error=slot.error,
        )

    def _restart(self, slot: Slot) -> bool:
        with self.lock:
            if slot.state != DOWN:
                return False
            if slot.actor is not None:
                ray.kill(slot.actor)  # a hung actor: make sure it is gone first
                slot.actor = None
            try:
                self._spawn(slot)
            except Exception as error:  # stays down (REDUCING); the next check tries again
                slot.error = f"restart failed: {type(error).__name__}: {str(error)[:300]}"
                log.error("partition_restart_failed", partition=slot.index, error=slot.error)
                return False
            slot.restarts += 1
        self.metrics.partition_restarts.labels(str(slot.index)).inc()
        log.warning("partition_restarted", partition=slot.index, restarts=slot.restarts)
        self.auditor.record(
            "partition_restarted",
            principal=None,
            subject=f"system:partition-{slot.index}",
            accounts=slot.accounts,
            restarts=slot.restarts,
            policy_version=self.version,
            epoch=self.epoch,
        )
        return True

    # -- routing ------------------------------------------------------------------------

    def check(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/check: answered by the account's partition."""
        return self._routed("check", body, principal, "approved")

    def report_order(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/orders: remembered (and saved) by the account's partition."""
        return self._routed("report_order", body, principal, "recorded")

    def reset_breaker(
        self, body: bytes, principal: Principal = LOCAL
    ) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/breakers/reset: to the account's partition (`account:ID`), else
        to every partition; 202 when one queued it."""
        subject = _field(body, "subject")
        if isinstance(subject, str) and subject.startswith("account:"):
            return self._call(
                self._owner(subject.partition(":")[2]), "reset_breaker", body, principal, "queued"
            )
        answers = [self._call(s, "reset_breaker", body, principal, "queued") for s in self.slots]
        return next((a for a in answers if a[0] < 300), answers[-1])

    def _routed(
        self, method: str, body: bytes, principal: Principal, flag: str
    ) -> tuple[int, dict[str, Any]]:
        accounts = _accounts_named(body)
        if not accounts:
            # No account to route by: the first partition answers why (422, as usual).
            return self._call(self.slots[0], method, body, principal, flag)
        if len(accounts) > 1:
            return 422, {
                flag: False,
                "error": f"body: an order list names accounts {sorted(accounts)}; with --ray "
                "a list is answered by one partition: send one list per account",
            }
        account = accounts.pop()
        known = self.known_accounts()
        if account not in known:
            return 422, {
                flag: False,
                "error": f"body: account_id: {account!r} is not an account of this service "
                f"(accounts: {', '.join(sorted(known)) or 'none yet'})",
                "errors": [{"path": "account_id", "message": "unknown account"}],
            }
        return self._call(self._owner(account), method, body, principal, flag)

    def _owner(self, account: str) -> Slot:
        return self.slots[self.partition_map.owner(account)]

    def known_accounts(self) -> set[str]:
        return {a for slot in self.slots for a in slot.accounts}

    def _call(
        self, slot: Slot, method: str, body: bytes, principal: Principal, flag: str
    ) -> tuple[int, dict[str, Any]]:
        if slot.state != SERVING:
            return self._reducing(slot, flag)
        try:
            status, answer = ray.get(
                getattr(slot.actor, method).remote(body, principal), timeout=CALL_TIMEOUT_S
            )
        except GetTimeoutError:
            return 503, {
                flag: False,
                "partition": slot.index,
                "error": f"partition {slot.index} did not answer within {CALL_TIMEOUT_S:.0f} s; "
                "ask again (a report: send the same order_id)",
            }
        except RayError as error:
            self.mark_down(slot, error)
            return self._reducing(slot, flag)
        return int(status), {**answer, "partition": slot.index}

    def _reducing(self, slot: Slot, flag: str) -> tuple[int, dict[str, Any]]:
        """Fail safe while a partition is down: no approval, nothing recorded."""
        return 503, {
            flag: False,
            "partition": slot.index,
            "trading_state": REDUCING,
            "error": f"partition {slot.index} is down ({slot.error}) and restarting from its "
            f"saved state: its accounts are {REDUCING} and no order is approved or recorded "
            f"until it serves again; ask again in a few seconds ({PLAYBOOK})",
        }

    # -- the reload barrier ---------------------------------------------------------------

    @property
    def version(self) -> str:
        return "" if self.policy_set is None else self.policy_set.version

    def reload_policies(
        self, trigger: str, principal: str | None = None, accept_removal: Sequence[str] = ()
    ) -> tuple[int, dict[str, Any]]:
        """Read, lint and guard the directory, then prepare / fence / commit everywhere
        (`barrier.reload_everywhere`)."""
        return barrier.reload_everywhere(self, trigger, principal, accept_removal)

    # -- what the HTTP front reads (service.http.ServiceView) -----------------------------

    def live(self) -> bool:
        return True

    def ready(self) -> tuple[bool, list[str]]:
        """Ready when every partition is (`head_views.ready`)."""
        return head_views.ready(self)

    def policies(self) -> dict[str, Any]:
        return head_views.policies(self)

    def status(self) -> dict[str, Any]:
        """Every partition's status and all accounts' trading states (`head_views.status`)."""
        return head_views.status(self)

    def overview(self, principal: Principal = LOCAL) -> dict[str, Any]:
        """GET /api/v1/overview: with --ray, the merged status (the status page's panels
        per partition are not drawn yet: read /api/v1/status)."""
        return self.status()

    def snapshot(self, account: str | None = None) -> tuple[int, dict[str, Any]]:
        """GET /api/v1/snapshot?account=ID: the account's partition's (`head_views.snapshot`)."""
        return head_views.snapshot(self, account)

    def reload(
        self, principal: Principal = LOCAL, accept_removal: Sequence[str] = ()
    ) -> tuple[int, dict[str, Any]]:
        """POST /-/reload: the barrier reload; accepting a removal is an officer's."""
        if accept_removal and not principal.allows(Role.OFFICER):
            return 403, {
                "reloaded": False,
                "error": f"{principal.name} ({principal.role.label}) may not accept removing "
                "protection: only an officer may; reload without accept_removal",
            }
        return self.reload_policies("http", principal.name, accept_removal)

    def release_lock(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/locks/release: by the partition holding the lock (`operator_routes`)."""
        return operator_routes.route(self, operator_routes.RELEASE, body, principal)

    def escalate(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/escalations: by the partition holding the position."""
        return operator_routes.route(self, operator_routes.ESCALATE, body, principal)

    def clear_escalation(
        self, body: bytes, principal: Principal = LOCAL
    ) -> tuple[int, dict[str, Any]]:
        """DELETE /api/v1/escalations: by the partition holding the manual escalation."""
        return operator_routes.route(self, operator_routes.CLEAR, body, principal)

    def promote(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        return head_views.not_served("POST /-/promote")

    def rollback(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        return head_views.not_served("POST /-/rollback")

    def silences(self) -> dict[str, Any]:
        """GET /api/v1/silences: the head's (they apply to every partition's alerts)."""
        return self.alerts.listed()

    def silence(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/silences: at the head, audited in its chain, saved in its file."""
        return self.alerts.silence(body, principal)

    def expire_silence(
        self, body: bytes, principal: Principal = LOCAL
    ) -> tuple[int, dict[str, Any]]:
        return self.alerts.expire_silence(body, principal)

    def collect_alerts(self) -> int:
        """Deliver what the partitions raised since the last call (`head_alerts`)."""
        return self.alerts.collect(self.slots)

    def auth_refused(
        self, *, principal: str | None, method: str, path: str, status: int, reason: str
    ) -> None:
        self.auditor.auth_refused(
            principal=principal, method=method, path=path, status=status, reason=reason
        )

    # -- gathering from every partition ---------------------------------------------------

    def _each(self, method: str, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> dict[int, Any]:
        """`method` on every serving partition at once; their answers by index (a
        partition that fails is marked down and left out)."""
        refs = [
            (s, getattr(s.actor, method).remote(*args)) for s in self.slots if s.state == SERVING
        ]
        answers = {}
        for slot, ref in refs:
            try:
                answers[slot.index] = ray.get(ref, timeout=timeout_s)
            except GetTimeoutError:
                continue
            except RayError as error:
                self.mark_down(slot, error)
        return answers

    def _partition_metrics(self) -> list[tuple[str, bytes]]:
        answers = self._each("metrics_text")
        return [(str(index), text) for index, text in sorted(answers.items())]

    def cycles(self, after: int = 0) -> list[dict[str, Any]]:
        """Every partition's cycle records (tests, bench/scale): version and epoch each."""
        return [r for records in self._each("cycles", after).values() for r in records]

    def run_once(self) -> list[dict[str, Any]]:
        """--once: one cycle on every partition at once (loops off), through each
        partition's gate; what each printed (`Partition.once`), by partition. A
        partition that fails is left out (the caller exits 2 for it)."""
        answers = self._each("once", timeout_s=START_TIMEOUT_S)  # a first poll: slow
        return [answers[index] for index in sorted(answers)]

    def run_cycles(self, count: int) -> list[dict[str, Any]]:
        """`count` cycles on every partition at once (loops off: bench/scale)."""
        return [r for records in self._each("run_cycles", count).values() for r in records]

    def actor(self, partition: int) -> Any:
        """The actor handle of one partition (tests and drills: `ray.kill` it)."""
        return self.slots[partition].actor


def _accounts_named(body: bytes) -> set[str]:
    """The account ids a check / report (or an order list's legs) names."""
    try:
        data = json.loads(body)
    except ValueError:
        return set()
    if not isinstance(data, dict):
        return set()
    orders = data.get("orders")
    legs: list[Any] = orders if isinstance(orders, list) else [data]
    return {
        str(leg["account_id"])
        for leg in legs
        if isinstance(leg, dict) and isinstance(leg.get("account_id"), str)
    }


def _field(body: bytes, name: str) -> Any:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get(name) if isinstance(data, dict) else None
