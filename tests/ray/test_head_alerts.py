"""The head's alerts and a partition's operator actions, without starting Ray: one alert
per condition however many partitions raise it, silences saved in the head's file and
restored, the reload's alerts the head's only; a history lock found and released by
the partition that holds it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "ray", reason="ray is not installed: the bastion-risk[ray] extra (the dev extra has it)"
)

from bastion.engine.authority.history.lock import HistoryLock
from bastion.service.alerts import AlertRaised, AlertResolved
from bastion.service.metrics import ServiceMetrics
from bastion.service.ray.accounts import PartitionMap
from bastion.service.ray.head_alerts import HeadAlerts, head_state_path
from bastion.service.ray.partition import Partition, PartitionSpec
from bastion.service.ray.slots import read_policies

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
AT = datetime(2026, 12, 2, 9, tzinfo=UTC)


class _Told:
    """A sink that keeps what it is told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str, str]] = []

    def send(self, alert: AlertRaised) -> None:
        self.told.append(("raised", alert.kind, alert.details.get("subject", "")))

    def resolve(self, resolved: AlertResolved) -> None:
        self.told.append(("resolved", resolved.kind, resolved.details.get("subject", "")))


def _head_alerts(**kwargs: Any) -> tuple[HeadAlerts, _Told]:
    head = HeadAlerts(ServiceMetrics(), environ={}, **kwargs)
    told = _Told()
    head.alerts.sinks = (told,)
    return head, told


def _trip(event: type[AlertRaised | AlertResolved], summary: str) -> Any:
    details = {"breaker": "volume_anomaly", "subject": "symbol:SPY", "policy": "p"}
    return event(AT, "breaker_tripped", "warning", summary, details)


def test_forward_when_partitions_raise_the_same_condition_then_one_alert_resolved_by_the_last() -> (
    None
):
    """A symbol's breaker trips in both partitions holding the symbol: told once, and
    resolved only when neither holds it any more."""
    head, told = _head_alerts()
    head.forward(0, _trip(AlertRaised, "volume 5.6x"))
    head.forward(1, _trip(AlertRaised, "volume 5.5x"))
    assert told.told == [("raised", "breaker_tripped", "symbol:SPY")]
    head.forward(0, _trip(AlertResolved, "re-armed"))
    assert len(told.told) == 1
    head.forward(1, _trip(AlertResolved, "re-armed"))
    assert told.told[-1] == ("resolved", "breaker_tripped", "symbol:SPY")


def test_forward_when_alert_names_no_subject_then_each_partition_is_its_own_condition() -> None:
    """Two partitions' state saves failing are two alerts, each named by its partition;
    the head's own kinds (a reload) are not taken from the partitions."""
    head, told = _head_alerts()
    for partition in (0, 1):
        head.forward(
            partition, AlertRaised(AT, "persist_failed", "critical", "disk", {"what": "state"})
        )
    head.forward(1, AlertRaised(AT, "protection_removed", "warning", "accepted", {}))
    assert told.told == [
        ("raised", "persist_failed", "system:partition-0"),
        ("raised", "persist_failed", "system:partition-1"),
    ]
    head.reload_rejected("lint", ["bad.yaml: no"])
    assert told.told[-1] == ("raised", "reload_rejected", "")


def test_silence_when_created_at_the_head_then_saved_and_restored_and_it_silences(
    tmp_path: Path,
) -> None:
    """A silence is kept in the head's file beside --state; a head started again holds
    it, and the alerts it matches are told to no sink."""
    path = head_state_path(tmp_path / "bastion.json")
    assert path.name == "bastion.head.json"
    head, _told = _head_alerts(state_path=path)
    body = {"matchers": {"breaker": "volume_anomaly"}, "reason": "drill", "duration_s": 600}
    status, answer = head.silence(json.dumps(body).encode())
    assert status == 200 and answer["saved"] is True, answer
    again, told = _head_alerts(state_path=path)
    assert [s["id"] for s in again.listed()["silences"]] == [answer["silence"]["id"]]
    again.forward(0, _trip(AlertRaised, "volume 5.6x"))
    assert told.told == []


def test_alerts_file_when_given_then_the_head_delivers_through_it_and_status_shows_it() -> None:
    """--alerts FILE under --ray: the head's one delivery (routes, groups), shown in
    its status as a single service shows it; the partitions send it what they raise."""
    head = HeadAlerts(
        ServiceMetrics(), alerts_file=ROOT / "examples/alerts/alerts.yaml", environ={}
    )
    assert head.dispatcher is not None
    head.forward(0, _trip(AlertRaised, "volume 5.6x"))
    delivery = head.status()["delivery"]
    assert delivery["queued"] == 1
    assert [a["partition"] for a in head.status()["firing"]] == ["0"]


def test_lock_when_a_partition_holds_it_then_found_there_and_released_as_single_service(
    tmp_path: Path,
) -> None:
    """`holds` finds a history lock in the partition's state (the head routes there);
    another id is not found and the active ones are listed; the release is the single
    service's answer, audited in the partition's chain."""
    partition_map = PartitionMap.dealt(1, ["gen-01", "rev-01", "com-01"])
    spec = PartitionSpec(0, partition_map, speed=3000.0, audit_dir=str(tmp_path / "audit"))
    partition = Partition(spec, read_policies(POLICIES))
    service = partition.service
    now = service.feed.now()
    lock = HistoryLock(
        "default-protection", "stoploss-guard", "stoploss_guard", "rev-01", "account", "", "",
        now + timedelta(hours=1), "3 stop losses", ("t-1",), now,
    )  # fmt: skip
    service.state = replace(service.state, locks={lock.id: lock})
    assert partition.holds("lock", lock.id) == {"found": True, "known": []}
    assert partition.holds("lock", "other") == {"found": False, "known": [lock.id]}
    body = {"lock": lock.id, "by": "officer-1", "reason": "reviewed"}
    status, answer = partition.release_lock(json.dumps(body).encode())
    assert status == 200 and answer["released"] is True, answer
    assert partition.holds("lock", "other") == {"found": False, "known": []}
    partition.stop()
