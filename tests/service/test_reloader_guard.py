"""Policy-set guards at reload: removing protection is refused until an officer accepts.

Every guard case (empty file, deleted file, removed breaker, limit, protection or
escalation level, enforce -> shadow, only roll.yaml left) is refused with the old set
still serving, then accepted by an officer who posts the listed keys back.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bastion.adapters.sources import ManualClock
from bastion.service.alerts import AlertRaised, Alerts
from bastion.service.auth import Principal, Role
from bastion.service.feeds import make_feed
from bastion.service.metrics import ServiceMetrics
from bastion.service.reload_events import record_reload
from bastion.service.reloader import (
    PolicyReloaded,
    PolicyReloader,
    ReloadEvent,
    ReloadRejected,
    audit_record,
)
from bastion.service.runner import Service
from tests.conftest import POLICIES

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
DEADLINE_S = 5.0
ALL_KINDS = "EscalationPolicy, RollPolicy, BreakerPolicy, ProtectionPolicy, LimitPolicy"


class Clock:
    """A test clock: each call is one second after the previous one."""

    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


class Collect:
    def __init__(self) -> None:
        self.alerts: list[AlertRaised] = []

    def send(self, alert: AlertRaised) -> None:
        self.alerts.append(alert)


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(POLICIES, directory)
    return directory


@pytest.fixture
def reloader(policies: Path) -> Iterator[PolicyReloader]:
    made = PolicyReloader(policies, now=Clock(), debounce_s=0.05)
    made.load_initial()
    yield made
    made.stop()


def declare(policies: Path, kinds: str = ALL_KINDS) -> None:
    """What an officer writes to bastion.yaml before a removal: the kinds, no minimum."""
    (policies / "bastion.yaml").write_text(
        "apiVersion: bastion/v1\nkind: PolicySet\nmetadata: {name: bastion}\n"
        f"spec: {{required_kinds: [{kinds}]}}\n"
    )


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def refused_then_accepted(reloader: PolicyReloader) -> tuple[ReloadRejected, PolicyReloaded]:
    """Reload (refused by the guard, old set serving), then accept exactly what it listed."""
    before = reloader.current
    refused = reloader.reload("http", principal="olivia")
    assert isinstance(refused, ReloadRejected), refused
    assert refused.refused_by_guard and refused.reason == "removes_protection"
    assert refused.removals and reloader.current is before
    assert refused.errors == tuple(f"{r.key}: {r.message}" for r in refused.removals)
    keys = [removal.key for removal in refused.removals]
    accepted = reloader.reload("http", principal="olivia", accept_removal=keys)
    assert isinstance(accepted, PolicyReloaded), accepted
    assert [r.key for r in accepted.accepted_removals] == keys
    assert accepted.principal == "olivia" and reloader.current is not before
    return refused, accepted


def keys_of(event: ReloadRejected) -> list[str]:
    return [removal.key for removal in event.removals]


def test_reload_when_file_emptied_then_refused_and_officer_must_delete_it(
    policies: Path, reloader: PolicyReloader
) -> None:
    """`: > limits.yaml` is a lint error (BST017) no acceptance overrides; deleting the
    file and declaring the set without limits is refused, then accepted by an officer."""
    before = reloader.current
    (policies / "limits.yaml").write_text("")
    emptied = reloader.reload("http", principal="olivia")
    assert isinstance(emptied, ReloadRejected) and emptied.reason == "lint"
    assert any(" BST017 " in line for line in emptied.errors) and emptied.removals == ()
    forced = reloader.reload("http", principal="olivia", accept_removal=["kind/LimitPolicy"])
    assert isinstance(forced, ReloadRejected) and forced.reason == "lint"
    assert reloader.current is before
    (policies / "limits.yaml").unlink()
    declare(policies, "EscalationPolicy, RollPolicy, BreakerPolicy, ProtectionPolicy")
    refused, _ = refused_then_accepted(reloader)
    assert keys_of(refused)[:2] == ["kind/LimitPolicy", "LimitPolicy/default-limits"]
    assert reloader.current.policy_set.of_kind("LimitPolicy") == ()


def test_reload_when_file_deleted_then_lint_refuses_until_declared_then_guard(
    policies: Path, reloader: PolicyReloader
) -> None:
    """`rm protection.yaml`: the declaration requires the kind (BST606); once an officer
    drops it from bastion.yaml the guard refuses, then the officer accepts."""
    (policies / "protection.yaml").unlink()
    missing = reloader.reload()
    assert isinstance(missing, ReloadRejected) and missing.reason == "lint"
    assert any(" BST606 " in line and "ProtectionPolicy" in line for line in missing.errors)
    declare(policies, "EscalationPolicy, RollPolicy, BreakerPolicy, LimitPolicy")
    refused, _ = refused_then_accepted(reloader)
    assert "ProtectionPolicy/default-protection:protection/core_asset_immunity" in keys_of(refused)
    assert "ProtectionPolicy/default-protection:core_asset/SPY" in keys_of(refused)


def test_reload_when_breaker_removed_then_refused_then_accepted(
    policies: Path, reloader: PolicyReloader
) -> None:
    """A breaker deleted from the base is lost by the overlay too: two keys."""
    replace_in(
        policies / "breakers.yaml",
        "    - id: volume_anomaly\n      metric: market.volume_multiple\n",
        "    - id: volume_anomaly\n      enabled: false\n      metric: market.volume_multiple\n",
    )
    refused, accepted = refused_then_accepted(reloader)
    assert keys_of(refused) == [
        "BreakerPolicy/com-breakers:breaker/volume_anomaly",
        "BreakerPolicy/default-breakers:breaker/volume_anomaly",
    ]
    assert accepted.changed == ("BreakerPolicy/com-breakers", "BreakerPolicy/default-breakers")


def test_reload_when_limit_removed_then_refused_then_accepted(
    policies: Path, reloader: PolicyReloader
) -> None:
    """A per-strategy cap that disappears is a removed limit."""
    replace_in(policies / "limits.yaml", "      mean_reversion_v1: 30\n", "")
    refused, _ = refused_then_accepted(reloader)
    assert keys_of(refused) == [
        "LimitPolicy/default-limits:limit/risk.max_per_strategy_pct.mean_reversion_v1"
    ]


def test_reload_when_protection_disabled_then_refused_then_accepted(
    policies: Path, reloader: PolicyReloader
) -> None:
    """Switching a protection off removes it."""
    replace_in(
        policies / "protection.yaml",
        "  holding_period:\n    enabled: true",
        "  holding_period:\n    enabled: false",
    )
    refused, _ = refused_then_accepted(reloader)
    assert keys_of(refused) == ["ProtectionPolicy/default-protection:protection/holding_period"]


def test_reload_when_escalation_level_removed_then_refused_then_accepted(
    policies: Path, reloader: PolicyReloader
) -> None:
    """The preservation level dropped (and from the declaration's minimum)."""
    path = policies / "escalation.yaml"
    text = path.read_text()
    start, end = text.index("    - name: preservation"), text.index("  deescalation:")
    path.write_text(text[:start] + text[end:])
    declare(policies)
    refused, _ = refused_then_accepted(reloader)
    assert keys_of(refused) == ["EscalationPolicy/default-escalation:level/preservation"]


def test_reload_when_policy_goes_enforce_to_shadow_then_refused_then_accepted(
    policies: Path, reloader: PolicyReloader
) -> None:
    """A policy switched to shadow no longer blocks: refused until accepted."""
    replace_in(
        policies / "com-accounts.yaml",
        "extends: default-breakers\n",
        "extends: default-breakers\nmode: shadow\n",
    )
    refused, _ = refused_then_accepted(reloader)
    assert keys_of(refused) == ["BreakerPolicy/com-breakers:mode/enforce"]


def test_reload_when_only_roll_left_then_refused_then_accepted(
    policies: Path, reloader: PolicyReloader
) -> None:
    """Every file but roll.yaml deleted: lint refuses; declared, the guard refuses; then
    an officer accepts every listed key and only the roll policy serves."""
    for path in policies.glob("*.yaml"):
        if path.name != "roll.yaml":
            path.unlink()
    missing = reloader.reload()
    assert isinstance(missing, ReloadRejected) and missing.reason == "lint"
    declare(policies, "RollPolicy")
    refused, _ = refused_then_accepted(reloader)
    assert keys_of(refused)[:4] == [
        "kind/BreakerPolicy",
        "kind/EscalationPolicy",
        "kind/LimitPolicy",
        "kind/ProtectionPolicy",
    ]
    assert {p.kind for p in reloader.current.policy_set.policies} == {"RollPolicy"}


def test_reload_when_only_some_removals_accepted_then_refused_naming_the_rest(
    policies: Path, reloader: PolicyReloader
) -> None:
    """Acceptance is by exact key: what was not accepted is refused, "*" included."""
    replace_in(policies / "limits.yaml", "      mean_reversion_v1: 30\n", "")
    replace_in(
        policies / "protection.yaml",
        "  grace_period:\n    enabled: true",
        "  grace_period:\n    enabled: false",
    )
    before = reloader.current
    first = reloader.reload(accept_removal=["*"])
    assert isinstance(first, ReloadRejected) and len(first.removals) == 2
    partial = reloader.reload(accept_removal=[first.removals[0].key])
    assert isinstance(partial, ReloadRejected)
    assert keys_of(partial) == [first.removals[1].key]
    assert reloader.current is before and reloader.stats.refused == 2


def test_reload_when_file_half_written_then_refused_and_set_kept(
    policies: Path, reloader: PolicyReloader
) -> None:
    """A breakers.yaml cut short (a crash mid-write) never replaces the serving set,
    whether the cut leaves invalid YAML or a shorter, valid list."""
    before = reloader.current
    text = (policies / "breakers.yaml").read_text()
    for cut in (text.index("    - id: daily_loss_usd"), text.index("action: reduce_only") + 9):
        (policies / "breakers.yaml").write_text(text[:cut])
        event = reloader.reload("watch")
        assert isinstance(event, ReloadRejected), cut
        assert reloader.current is before


def test_watcher_when_breaker_removed_then_refused_never_accepted(
    policies: Path, reloader: PolicyReloader
) -> None:
    """The directory watcher's reloads never accept a removal."""
    events: list[ReloadEvent] = []
    watched = PolicyReloader(policies, now=Clock(), on_event=events.append, debounce_s=0.05)
    watched.load_initial()
    watched.start_watching()
    try:
        replace_in(policies / "protection.yaml", "[SPY, QQQ, BTC/USD]", "[QQQ, BTC/USD]")
        deadline = time.monotonic() + DEADLINE_S
        while not events and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        watched.stop()
    assert events, "the watcher never reloaded"
    assert all(isinstance(e, ReloadRejected) and e.refused_by_guard for e in events)
    assert events[0].trigger == "watch" and events[0].principal is None


def test_audit_record_when_refused_and_accepted_then_versions_removals_principal(
    policies: Path, reloader: PolicyReloader
) -> None:
    """The audit hook's record holds who, before/after versions, changes and removals."""
    serving = reloader.current.version
    replace_in(policies / "limits.yaml", "      mean_reversion_v1: 30\n", "")
    refused, accepted = refused_then_accepted(reloader)
    record = audit_record(refused)
    assert record["event"] == "reload_rejected" and record["reason"] == "removes_protection"
    assert record["principal"] == "olivia" and record["version_before"] == serving
    assert record["version_refused"] == accepted.version
    assert record["changed"] == ["LimitPolicy/default-limits"]
    assert [r["key"] for r in record["removals"]] == keys_of(refused)
    done = audit_record(accepted)
    assert done["version_before"] == serving and done["version_after"] == accepted.version
    assert [r["key"] for r in done["accepted_removals"]] == keys_of(refused)


# --- the service: POST /-/reload's answers, metrics and alerts ---------------------------


@pytest.fixture
def service(policies: Path) -> tuple[Service, Collect]:
    feed = make_feed("sim", {}, wall=ManualClock(), speed=60.0, seed=7, environ={})
    sink, metrics = Collect(), ServiceMetrics()
    holder: list[Service] = []
    reloader = PolicyReloader(
        policies, now=feed.now, on_event=lambda event: record_reload(holder[0], event)
    )
    reloader.load_initial()
    holder.append(Service(feed, reloader, metrics, alerts=Alerts([sink], metrics.registry)))
    return holder[0], sink


def _refusals(service: Service, reason: str) -> float:
    text = service.metrics.render()[0].decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "bastion_reload_refusals_total" and sample.labels == {
                "reason": reason
            }:
                return sample.value
    raise AssertionError("bastion_reload_refusals_total not exported")


def test_service_reload_when_removal_then_422_keys_hint_critical_alert_and_counted(
    policies: Path, service: tuple[Service, Collect]
) -> None:
    """422 lists each key and how an officer accepts; a critical alert; counted."""
    served, sink = service
    replace_in(policies / "limits.yaml", "      mean_reversion_v1: 30\n", "")
    status, body = served.reload(Principal("olivia", Role.OFFICER))
    key = "LimitPolicy/default-limits:limit/risk.max_per_strategy_pct.mean_reversion_v1"
    assert status == 422 and body["reloaded"] is False
    assert body["reason"] == "removes_protection"
    assert [r["key"] for r in body["removals"]] == [key]
    assert f'{{"accept_removal": ["{key}"]}}' in body["hint"]
    assert [(a.kind, a.severity) for a in sink.alerts] == [("reload_rejected", "critical")]
    assert _refusals(served, "removes_protection") == 1
    status, body = served.reload(Principal("olivia", Role.OFFICER), [key])
    assert status == 200 and body["accepted_removals"] == [key]
    assert sink.alerts[-1].kind == "protection_removed"


def test_service_reload_when_operator_accepts_removal_then_403_and_nothing_reloaded(
    policies: Path, service: tuple[Service, Collect]
) -> None:
    """Only an officer may accept: an operator's accept_removal is 403, no reload."""
    served, _ = service
    before = served.reloader.current
    replace_in(policies / "limits.yaml", "      mean_reversion_v1: 30\n", "")
    status, body = served.reload(Principal("otto", Role.OPERATOR), ["anything"])
    assert status == 403 and "only an officer" in body["error"]
    assert served.reloader.current is before and served.reloader.stats.failed == 0
    status, _ = served.reload(Principal("otto", Role.OPERATOR))
    assert status == 422  # an operator may reload, and is refused like anyone else


def test_service_reload_when_lint_error_then_422_reason_lint_counted(
    policies: Path, service: tuple[Service, Collect]
) -> None:
    """An emptied file: 422 with reason lint and the BST017 error, counted as lint."""
    served, sink = service
    (policies / "limits.yaml").write_text("")
    status, body = served.reload()
    assert status == 422 and body["reason"] == "lint" and "removals" not in body
    assert any(" BST017 " in line for line in body["errors"])
    assert _refusals(served, "lint") == 1 and sink.alerts[0].severity == "warning"
