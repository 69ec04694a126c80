"""Alerts and silences at the head of `bastion serve --ray`.

Where an alert is raised: by the partition that sees its condition. A breaker trip, a
failed evaluation, a history lock, a state file that cannot be saved belong to one
partition's accounts or files, so each is raised once, by one partition, from its own
decisions (as a single service raises them) and kept in its outbox (`outbox`). What
concerns the whole service is raised here: a reload refused by the barrier
(`reload_rejected`, resolved by the next reload that commits), protection removed with
an officer's consent, and a partition down (`partition_down`, critical, an event
told once per death). A partition's own reload alerts are not forwarded: the reload is the
head's, one alert for it. This is why the rules are not evaluated again over the merged
status: the partitions' decisions already say what happened, and only once.

Where it is delivered: here only. `collect` (every health round, at --once's end and
before stopping) takes what is new from every partition and raises or resolves it
through one `Alerts`: one `bastion_alerts_total`, one `alert_raised` log line, one set
of silences (POST /api/v1/silences, audited in the head's chain and saved in
`<state stem>.head<suffix>` as a single service saves them in its --state file), and
with --alerts FILE one dispatcher that routes, groups and deduplicates. A forwarded
alert carries `partition`, and `subject: system:partition-K` when it names none (two
partitions whose state saves fail are two conditions, resolved each on its own). A
condition several partitions raise alike (a symbol's breaker: each partition holding
the symbol evaluates it) is one alert, raised by the first, resolved by the last.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
import structlog
from ray.exceptions import GetTimeoutError, RayError

from bastion.service.alerting import api as alerting_api
from bastion.service.alerting.model import CONDITION_KINDS, fingerprint, labels_of
from bastion.service.alerting.silences import Silences, silence_from_dict
from bastion.service.alerting.wiring import open_alerts
from bastion.service.alerts import AlertRaised, AlertResolved, Alerts, utc_now
from bastion.service.auditor import Auditor
from bastion.service.auth import LOCAL, Principal
from bastion.service.metrics import ServiceMetrics
from bastion.service.ray.slots import CALL_TIMEOUT_S, PLAYBOOK, SERVING, Slot
from bastion.service.state_store import StateSaveFailed, StateStore

if TYPE_CHECKING:
    from bastion.service.alerting.dispatcher import AlertDispatcher

log = structlog.get_logger("bastion.alerts")

# Raised by the head for the whole service; the partitions' own are not forwarded.
HEAD_KINDS = frozenset({"reload_rejected", "protection_removed"})


def head_state_path(state: Path) -> Path:
    """The head's file beside the --state file: the silences."""
    return state.with_name(f"{state.stem}.head{state.suffix}")


class HeadAlerts:
    def __init__(
        self,
        metrics: ServiceMetrics,
        *,
        alerts_file: str | Path | None = None,
        state_path: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """AlertConfigError (exit 2) when `alerts_file` does not lint clean; the
        head's state file unreadable: StateStoreError (exit 2)."""
        self.alerts: Alerts
        self.dispatcher: AlertDispatcher | None
        self.alerts, self.dispatcher = open_alerts(
            alerts_file, metrics, utc_now, os.environ if environ is None else environ
        )
        self.auditor = Auditor(None)  # the head's chain, set by RayHead
        self.store = None if state_path is None else StateStore(state_path)
        self.save_error: str | None = None
        self._taken: dict[int, tuple[str, int]] = {}  # partition: (incarnation, last seq)
        self._holders: dict[str, set[int]] = {}  # a condition firing: the partitions raising it
        if self.store is not None:
            self.store.check_directory()
            saved = self.store.load()
            if saved is not None and self.silences is not None:
                self.silences.restore([silence_from_dict(s) for s in saved.body["silences"]])

    @property
    def silences(self) -> Silences | None:
        silences = self.alerts.silences
        return silences if isinstance(silences, Silences) else None

    def start(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.start()

    def stop(self) -> None:
        """Deliver what the --alerts groups hold, then stop."""
        if self.dispatcher is not None:
            self.dispatcher.stop()

    # -- what the partitions raised --------------------------------------------------------

    def collect(self, slots: list[Slot]) -> int:
        """Raise or resolve here what every serving partition raised or resolved since
        the last call; how many. A partition that does not answer is asked next time
        (its outbox keeps them; a new actor's alerts start over)."""
        asked = []
        for slot in slots:
            if slot.state != SERVING or slot.actor is None:
                continue
            incarnation, seq = self._taken.get(slot.index, (None, 0))
            ref = slot.actor.alerts_after.remote(seq, incarnation)
            asked.append((slot, incarnation, seq, ref))
        taken = 0
        for slot, incarnation, seq, ref in asked:
            try:
                answer = _get(ref)
            except (GetTimeoutError, RayError):
                continue  # down: the health check says so; the next round asks again
            events = answer["events"]
            if answer["incarnation"] != incarnation and answer["dropped"]:
                log.warning("partition_alerts_dropped", partition=slot.index, **answer)
            for _seq, event in events:
                self.forward(slot.index, event)
            same = answer["incarnation"] == incarnation
            last = events[-1][0] if events else (seq if same else 0)
            self._taken[slot.index] = (answer["incarnation"], last)
            taken += len(events)
        return taken

    def forward(self, partition: int, event: AlertRaised | AlertResolved) -> None:
        """One partition's alert, raised (or resolved) here with its partition named."""
        if event.kind in HEAD_KINDS:
            return
        details = {"subject": f"system:partition-{partition}", **event.details}
        details["partition"] = str(partition)
        moved = replace(event, details=details)
        key = fingerprint(labels_of(moved), moved.summary)
        if isinstance(moved, AlertRaised):
            if moved.kind in CONDITION_KINDS:  # a symbol's breaker trips in every
                # partition holding the symbol: one alert, held until all resolve it
                holders = self._holders.setdefault(key, set())
                told = bool(holders)
                holders.add(partition)
                if told:
                    return
            self.alerts.raise_alert(moved)
            return
        raising = self._holders.get(key)
        if raising is not None:
            raising.discard(partition)
            if raising:
                return  # still holds in another partition
            del self._holders[key]
        self.alerts.resolve(moved)

    # -- what the head raises itself -------------------------------------------------------

    def partition_down(self, slot: Slot) -> None:
        """An event (told once): `partition_restarted` in the head's chain says when it
        serves again."""
        self.alerts.raise_alert(
            AlertRaised(
                utc_now(),
                "partition_down",
                "critical",
                f"partition {slot.index} is down ({slot.error}): its accounts "
                f"{', '.join(slot.accounts) or '-'} are REDUCING until it is restarted "
                f"from its saved state ({PLAYBOOK})",
                {"subject": f"system:partition-{slot.index}", "partition": str(slot.index)},
            )
        )

    def reload_rejected(self, reason: str, errors: list[str]) -> None:
        severity = "critical" if reason == "removes_protection" else "warning"
        self.alerts.raise_alert(
            AlertRaised(
                utc_now(),
                "reload_rejected",
                severity,
                f"policy reload refused on every partition ({reason}): {'; '.join(errors)[:400]}",
                {"reason": reason},
            )
        )

    def reloaded(self, version: str, principal: str | None, accepted: list[str]) -> None:
        now = utc_now()
        self.alerts.resolve_kind("reload_rejected", now)
        if accepted:
            self.alerts.raise_alert(
                AlertRaised(
                    now,
                    "protection_removed",
                    "warning",
                    f"{principal} accepted removing {len(accepted)} protection(s) "
                    f"({', '.join(accepted[:3])}{', ...' if len(accepted) > 3 else ''}); "
                    f"now serving {version[:19]} on every partition",
                    {"accepted_removals": accepted, "principal": principal},
                )
            )

    # -- silences (service.alerting.api), as a single service serves them ------------------

    def silence(self, body: bytes, principal: Principal = LOCAL) -> tuple[int, dict[str, Any]]:
        record = alerting_api.audit_recorder(self.auditor.record)
        status, answer = alerting_api.create_silence(self.silences, record, body, principal)
        if status == 200:
            answer["saved"] = self.store is not None and self.save()
        return status, answer

    def expire_silence(
        self, body: bytes, principal: Principal = LOCAL
    ) -> tuple[int, dict[str, Any]]:
        record = alerting_api.audit_recorder(self.auditor.record)
        status, answer = alerting_api.expire_silence(self.silences, record, body, principal)
        if status == 200:
            answer["saved"] = self.store is not None and self.save()
        return status, answer

    def listed(self) -> dict[str, Any]:
        return alerting_api.list_silences(self.silences)

    def save(self) -> bool:
        """The silences into the head's state file; False (and /readyz 503) when it fails."""
        if self.store is None:
            return True
        silences = self.silences
        try:
            self.store.save({"silences": [] if silences is None else silences.to_list()})
        except StateSaveFailed as error:
            self.save_error = str(error)
            log.error("persist_failed", what="head_state", error=self.save_error)
            return False
        self.save_error = None
        return True

    def status(self) -> dict[str, Any]:
        """GET /api/v1/status `alerts`, as a single service shows it."""
        return {
            "firing": [
                {
                    "at": a.at.isoformat(),
                    "kind": a.kind,
                    "severity": a.severity,
                    "summary": a.summary[:500],
                    "partition": a.details.get("partition"),
                }
                for a in self.alerts.firing()[-50:]
            ],
            "silences": self.listed()["silences"],
            "delivery": None if self.dispatcher is None else self.dispatcher.status(),
        }


def _get(ref: Any) -> dict[str, Any]:
    answer: dict[str, Any] = ray.get(ref, timeout=CALL_TIMEOUT_S)
    return answer
