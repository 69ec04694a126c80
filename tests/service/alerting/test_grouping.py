"""Grouping, dedup, repeat, resolved and silences, driven by a fake clock."""

from __future__ import annotations

from bastion.service.alerting.grouping import Grouper
from bastion.service.alerting.model import labelled
from bastion.service.alerts import AlertRaised
from tests.service.alerting.support import T0, log_policy, policy, rearm, trip


def _grouper(**route: object) -> Grouper:
    return Grouper(log_policy(**route), {})


def test_grouper_when_a_burst_arrives_then_one_message_per_group_per_receiver() -> None:
    """Fifty trips of one breaker on one account within the wait: one message each."""
    grouper = _grouper(group_by=["kind", "breaker"], group_wait_s=30)
    for account in range(50):
        grouper.add(labelled(trip(account=f"gen-{account:02d}", severity="warning")), 100.0)
    assert grouper.due(129.0) == []
    sent = grouper.due(130.0)
    assert sorted(n.receiver for n in sent) == ["a", "b"]
    assert all(len(n.firing) == 50 for n in sent)


def test_grouper_when_critical_then_first_message_within_one_second() -> None:
    """A critical alert's group waits critical_group_wait_s (1 s), not group_wait_s."""
    grouper = _grouper(group_wait_s=30)
    grouper.add(labelled(trip(severity="critical")), 100.0)
    assert grouper.next_due_s() == 101.0
    assert len(grouper.due(101.0)) == 2


def test_grouper_when_the_same_alert_repeats_then_deduplicated() -> None:
    """The same trip raised every cycle: one message, the rest counted as duplicates."""
    grouper = _grouper()
    for second in range(10):
        grouper.add(labelled(trip()), 100.0 + second * 0.1)
    sent = grouper.due(102.0)
    assert [len(n.firing) for n in sent] == [1, 1]
    assert grouper.stats.deduplicated == 18  # 9 repeats x 2 receivers
    grouper.add(labelled(trip()), 103.0)
    assert grouper.due(10_000.0) == []  # nothing new, repeat not due (4 h)


def test_grouper_when_still_firing_after_repeat_interval_then_sent_again() -> None:
    """An unchanged group is sent again after repeat_interval_s, not before."""
    grouper = _grouper(repeat_interval_s=3600)
    grouper.add(labelled(trip()), 100.0)
    assert len(grouper.due(101.0)) == 2
    assert grouper.due(101.0 + 3599) == []
    assert len(grouper.due(101.0 + 3600)) == 2


def test_grouper_when_condition_clears_then_one_resolved_message() -> None:
    """A resolved alert is announced once (with its end), then the group goes."""
    grouper = _grouper(group_interval_s=60)
    alert = labelled(trip())
    grouper.add(alert, 100.0)
    grouper.due(101.0)
    grouper.resolve(alert.fingerprint, rearm().at, 130.0)
    assert grouper.due(150.0) == []  # group_interval after the last message
    sent = grouper.due(161.0)
    assert [(n.status, len(n.resolved), n.resolved[0].ends_at) for n in sent] == [
        ("resolved", 1, rearm().at)
    ] * 2
    assert grouper.groups == {}


def test_grouper_when_silenced_at_flush_then_left_out() -> None:
    """Alerts silenced since they were raised are not sent (nor repeated)."""
    grouper = _grouper()
    grouper.add(labelled(trip()), 100.0)
    assert grouper.due(101.0, silenced=lambda labels: "sil_1") == []


def test_grouper_when_routes_match_then_first_match_unless_continue() -> None:
    """Routes are tried in order; `continue: true` lets the next ones take it too."""
    routes = [
        {"match": {"severity": ["critical"]}, "receivers": ["a"], "continue": True},
        {"match": {"breaker": ["daily_*"]}, "receivers": ["b"]},
        {"receivers": ["c"]},
    ]
    receivers = [{"name": n, "type": "log"} for n in "abc"]
    grouper = Grouper(policy(receivers, routes), {})
    grouper.add(labelled(trip(severity="critical")), 0.0)
    grouper.add(labelled(trip(breaker="stale_data", severity="warning")), 0.0)
    sent = grouper.due(100.0)
    assert sorted((n.receiver, n.firing[0].labels["breaker"]) for n in sent) == [
        ("a", "daily_loss_usd"),
        ("b", "daily_loss_usd"),
        ("c", "stale_data"),
    ]


def test_grouper_when_event_kinds_then_told_once_and_forgotten() -> None:
    """An event (an order sent though denied) is one message, never repeated; its group
    goes, so that events do not pile up in memory."""
    grouper = _grouper(repeat_interval_s=60)
    for index in range(3):
        event = AlertRaised(T0, "order_sent_denied", "warning", f"order A-{index} sent",
                            {"order_id": f"A-{index}", "account": "gen-01"})  # fmt: skip
        grouper.add(labelled(event), 100.0)
    sent = grouper.due(200.0)
    assert [len(n.firing) for n in sent] == [3, 3]
    assert grouper.groups == {} and grouper.due(100_000.0) == []
