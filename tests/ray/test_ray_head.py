"""`bastion serve --ray` on a local Ray instance (2 CPUs, started once for the module):
routing by account, merged status and /metrics, the reload barrier (no cycle anywhere
evaluates a mix of versions; one partition that cannot prepare aborts everywhere), a
partition actor killed mid-run (its accounts REDUCING, restarted from its saved state,
nothing acknowledged lost), operator actions routed to the partition holding their
target, alerts delivered and silenced at the head, one snapshot per account's partition,
and --once."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip(
    "ray", reason="ray is not installed: the bastion-risk[ray] extra (the dev extra has it)"
)

from bastion.service.audit import AuditTrail  # noqa: E402
from bastion.service.audit_read import read_records  # noqa: E402
from bastion.service.auditor import Auditor  # noqa: E402
from bastion.service.ray.accounts import PartitionMap  # noqa: E402
from bastion.service.ray.audit_chains import verify_chains  # noqa: E402
from bastion.service.ray.head import REDUCING, RayHead  # noqa: E402
from bastion.service.ray.partition import PartitionSpec  # noqa: E402

POLICIES = Path(__file__).resolve().parents[2] / "policies"
SIM_ACCOUNTS = ("gen-01", "rev-01", "com-01")
SPEED = 3000.0  # a calm level's 300 market seconds: 0.1 s of wall time


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray instance for the module (a start costs seconds), shut down after."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def served(local_ray: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two partitions over the sim's three accounts, looping at their own cadence, each
    with its state file and audit chain; the policies in a directory of their own."""
    root = tmp_path_factory.mktemp("ray")
    policies = root / "policies"
    shutil.copytree(POLICIES, policies, ignore=shutil.ignore_patterns("tests"))
    partition_map = PartitionMap.dealt(2, SIM_ACCOUNTS)
    specs = [
        PartitionSpec(
            k,
            partition_map,
            speed=SPEED,
            state_path=str(root / f"bastion.partition-{k}.json"),
            audit_dir=str(root / "audit" / f"partition-{k}"),
        )
        for k in range(2)
    ]
    (root / "audit" / "head").mkdir(parents=True)
    trail = AuditTrail.open(root / "audit" / "head", clock=_now)
    head = RayHead(specs, policies, auditor=Auditor(trail), health_interval_s=None)
    head.start()
    try:
        yield {"head": head, "root": root, "policies": policies, "map": partition_map}
    finally:
        head.stop()
        trail.close()


def _now() -> Any:
    from datetime import UTC, datetime  # noqa: PLC0415

    return datetime.now(UTC)


def _order(account: str, **extra: Any) -> bytes:
    body = {"account_id": account, "symbol": "SPY", "action": "increase", "target_size": 1}
    return json.dumps({**body, **extra}).encode()


def _tighten(policies: Path) -> None:
    """A new version that removes nothing: one fewer open position allowed."""
    limits = policies / "limits.yaml"
    text = limits.read_text()
    current = int(text.split("max_open_positions: ")[1].split()[0])
    limits.write_text(
        text.replace(f"max_open_positions: {current}", f"max_open_positions: {current - 1}")
    )


def _wait_for_cycles(head: RayHead, each: int, version: str | None = None) -> None:
    """Until every partition ran `each` cycles (under `version`, when given)."""
    counts: dict[int, int] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        counts = dict.fromkeys(range(len(head.slots)), 0)
        for record in head.cycles():
            if version is None or record["version"] == version:
                counts[record["partition"]] += 1
        if min(counts.values()) >= each:
            return
        time.sleep(0.05)
    raise AssertionError(f"partitions did not cycle: {counts}")


def _kill(actor: Any) -> None:
    """`ray.kill` returns before the process is gone: wait until a call says it died."""
    ray.kill(actor)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            ray.get(actor.ping.remote(), timeout=5)
        except ray.exceptions.RayActorError:
            return
        time.sleep(0.05)
    raise AssertionError("the actor did not die")


def test_check_when_account_is_owned_then_its_partition_answers(served: dict[str, Any]) -> None:
    """Each account's check is answered by the partition that owns it; an account no
    partition has is refused 422, naming the accounts there are."""
    head, partition_map = served["head"], served["map"]
    _wait_for_cycles(head, 1)
    for account in SIM_ACCOUNTS:
        status, answer = head.check(_order(account))
        assert answer["partition"] == partition_map.owner(account)
        assert status in (200, 503), answer  # 503: not ready between two fast cycles
        assert answer.get("trading_state") != REDUCING
    status, answer = head.check(_order("nobody-01"))
    assert status == 422
    assert "gen-01" in answer["error"]


def test_reset_when_subject_is_an_account_then_its_partition_answers(
    served: dict[str, Any],
) -> None:
    """A reset of `account:ID` goes to that account's partition (which refuses it here:
    nothing is tripped), never to another."""
    head, partition_map = served["head"], served["map"]
    body = {"breaker": "daily_loss_usd", "subject": "account:rev-01", "by": "t", "reason": "r"}
    status, answer = head.reset_breaker(json.dumps(body).encode())
    assert answer["partition"] == partition_map.owner("rev-01")
    assert status in (202, 422), answer  # queued (a breaker tripped), or none is


def test_status_and_metrics_when_merged_then_every_partition_is_in_one_answer(
    served: dict[str, Any],
) -> None:
    """/api/v1/status: every account's trading state at the top, each partition's
    status below; /metrics: one exposition, each family once, labelled by partition."""
    head = served["head"]
    _wait_for_cycles(head, 1)
    status = head.status()
    assert set(status["trading_states"]) == set(SIM_ACCOUNTS)
    assert [p["state"] for p in status["partitions"]] == ["serving", "serving"]
    text = head.metrics.render()[0].decode()
    assert text.count("# TYPE bastion_evaluations_total counter") == 1
    for partition in ("0", "1"):
        assert f'bastion_evaluations_total{{partition="{partition}"}}' in text
    assert 'bastion_ray_partition_up{partition="head",partition_index="1"} 1.0' in text


def test_reload_when_partitions_cycle_then_no_cycle_evaluates_a_mix_of_versions(
    served: dict[str, Any],
) -> None:
    """The barrier: every cycle under the old version ended before any cycle under the
    new one began, on every partition; both serve the new version at one epoch."""
    head, policies = served["head"], served["policies"]
    before, epoch = head.version, head.epoch
    _wait_for_cycles(head, 2, before)
    _tighten(policies)
    status, answer = head.reload_policies("test")
    assert status == 200, answer
    _wait_for_cycles(head, 2, answer["version"])
    records = [r for r in head.cycles() if r["version"] in (before, answer["version"])]
    old = [r for r in records if r["version"] == before]
    new = [r for r in records if r["version"] == answer["version"]]
    assert old and new
    assert {r["partition"] for r in new} == {0, 1}
    assert max(r["ended"] for r in old) <= min(r["started"] for r in new)
    assert all(r["epoch"] == epoch for r in old)
    assert all(r["epoch"] == epoch + 1 for r in new)
    for slot in head.slots:  # within each partition, the versions never go back
        versions = [
            r["version"]
            for r in sorted(head.cycles(), key=lambda r: r["number"])
            if r["partition"] == slot.index
        ]
        assert versions == sorted(versions, key=lambda v: v == answer["version"])


def test_reload_when_one_partition_cannot_prepare_then_aborted_everywhere_and_audited(
    served: dict[str, Any],
) -> None:
    """One partition failing to compile refuses the whole reload: 422, the old version
    serving on every partition, the refusal in the head's chain and each partition's."""
    head, policies, root = served["head"], served["policies"], served["root"]
    before, epoch = head.version, head.epoch
    ray.get(head.actor(1).fail_next_prepare.remote("out of memory (drill)"))
    _tighten(policies)
    status, answer = head.reload_policies("test")
    assert status == 422
    assert answer["reason"] == "partition_not_prepared"
    assert "partition 1: out of memory (drill)" in answer["errors"]
    assert head.version == before and head.epoch == epoch
    served_now = {
        p["partition"]: p["status"]["policy_version"] for p in head.status()["partitions"]
    }
    assert served_now == {0: before, 1: before}
    for chain in ("head", "partition-0", "partition-1"):
        kinds = [r.kind for r in read_records(root / "audit" / chain)]
        assert "reload_rejected" in kinds, chain


def test_partition_when_killed_mid_run_then_reducing_restarted_and_nothing_acknowledged_lost(
    served: dict[str, Any],
) -> None:
    """An actor killed while cycling: its accounts answer 503 REDUCING (never an
    approval); restarted from its state file, it still holds the order it acknowledged
    (the same order id answers `duplicate`), serves the current version, and every
    audit chain is intact."""
    head, partition_map, root = served["head"], served["map"], served["root"]
    victim = partition_map.owner("gen-01")
    status, first = head.report_order(_order("gen-01", order_id="ACK-1"))
    assert status == 200 and first["recorded"] is not False
    _kill(head.actor(victim))
    status, answer = head.check(_order("gen-01"))
    assert status == 503
    assert answer["trading_state"] == REDUCING and answer["approved"] is False
    status, answer = head.report_order(_order("gen-01", order_id="ACK-2"))
    assert status == 503 and answer["recorded"] is False
    states = head.status()["trading_states"]
    assert all(states[a] == REDUCING for a in partition_map.accounts_of(victim))
    assert head.check_health() == [victim]
    status, again = head.report_order(_order("gen-01", order_id="ACK-1"))
    assert status == 200, again
    assert again["duplicate"] is True
    assert again["decision_id"] == first["decision_id"]
    pinged = ray.get(head.actor(victim).ping.remote())
    assert pinged["version"] == head.version and pinged["epoch"] == head.epoch
    assert all(chain.result.ok for chain in verify_chains(root / "audit", key=None))
    kinds = [r.kind for r in read_records(root / "audit" / "head")]
    assert "partition_died" in kinds and "partition_restarted" in kinds


def test_http_front_when_served_by_the_head_then_same_endpoints_answer(
    served: dict[str, Any],
) -> None:
    """The usual HTTP front over the head: /metrics merged, checks routed, status and
    /readyz answered, what --ray does not serve yet 501."""
    import httpx  # noqa: PLC0415

    from bastion.service.http import HttpServer  # noqa: PLC0415

    head = served["head"]
    server = HttpServer("127.0.0.1", 0, head, head.metrics)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            metrics = client.get("/metrics")
            assert metrics.status_code == 200
            assert 'bastion_evaluations_total{partition="0"}' in metrics.text
            check = client.post("/api/v1/check", content=_order("rev-01"))
            assert check.json()["partition"] == served["map"].owner("rev-01")
            status = client.get("/api/v1/status").json()
            assert set(status["trading_states"]) == set(SIM_ACCOUNTS)
            assert client.get("/readyz").status_code in (200, 503)
            policies = client.get("/api/v1/policies").json()
            assert (policies["version"], policies["epoch"]) == (head.version, head.epoch)
            assert client.get("/api/v1/snapshot").status_code == 400  # name an account
            owned = client.get("/api/v1/snapshot", params={"account": "rev-01"})
            assert owned.status_code == 200, owned.text
            assert "rev-01" in {a["id"] for a in owned.json()["accounts"]}
            assert owned.headers["X-Bastion-Partition"] == str(served["map"].owner("rev-01"))
            assert client.post("/-/promote", content=b"{}").status_code == 501
    finally:
        server.stop()


def test_health_watch_when_the_check_itself_raises_then_counted_and_watching_goes_on(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round of the health check that raises (not a partition down) is logged and
    counted, and the next round runs: the watch never stops silently."""
    head = served["head"]
    rounds: list[int] = []

    def failing() -> list[int]:
        rounds.append(1)
        if len(rounds) == 2:
            head._stop.set()  # the second round ends the watch
        raise RuntimeError("health check broke")

    monkeypatch.setattr(head, "check_health", failing)
    monkeypatch.setattr(head, "health_interval_s", 0.01)
    before = head.metrics.health_check_failures._value.get()
    try:
        head._watch_health()
    finally:
        head._stop.clear()
    assert len(rounds) == 2
    assert head.metrics.health_check_failures._value.get() == before + 2


def _kinds(chain: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(r.kind, r.data) for r in read_records(chain)]


def test_escalation_when_position_is_a_partitions_then_routed_audited_there_head_records_who(
    served: dict[str, Any],
) -> None:
    """A manual escalation and its clearing go to the partition holding the position
    (found in its snapshot, GET /api/v1/snapshot?account=ID); the answer and the audit
    records are a single service's, in that partition's chain; the head's chain says
    who asked and where it went. A position no partition holds: 409 listing every
    partition's positions, audited at the head; an unknown lock: 409 likewise."""
    head, partition_map, root = served["head"], served["map"], served["root"]
    _wait_for_cycles(head, 1)
    owner = partition_map.owner("rev-01")
    assert head.snapshot()[0] == 400
    assert head.snapshot("nobody-01")[0] == 404
    status, answer = head.snapshot("rev-01")
    assert status == 200 and answer["partition"] == owner
    position = next(
        p["id"]
        for p in answer["snapshot"]["positions"]
        if p["account_id"] == "rev-01" and not p.get("option")
    )
    asked = {"position_id": position, "level": "recovery", "by": "ops-1", "reason": "drill"}
    status, escalated = head.escalate(json.dumps(asked).encode())
    assert status == 200, escalated
    assert escalated["escalated"] is True and escalated["partition"] == owner
    cleared_body = {"position_id": position, "by": "ops-1", "reason": "drill over"}
    status, cleared = head.clear_escalation(json.dumps(cleared_body).encode())
    assert status == 200 and cleared["cleared"] is True, cleared
    status, missing = head.escalate(json.dumps({**asked, "position_id": "nope-1"}).encode())
    assert status == 409
    assert missing["error"] == "no position 'nope-1' in the last snapshot"
    listed = set(missing["positions"])
    for account in SIM_ACCOUNTS:  # every partition's positions, merged
        snapshot = head.snapshot(account)[1]["snapshot"]
        assert listed & {p["id"] for p in snapshot["positions"] if p["account_id"] == account}
    release = {"lock": "p/x/rev-01/account", "by": "officer-1", "reason": "drill"}
    status, refused = head.release_lock(json.dumps(release).encode())
    assert status == 409 and refused["released"] is False
    assert refused["error"].startswith("no active history lock 'p/x/rev-01/account'")
    partition_chain = _kinds(root / "audit" / f"partition-{owner}")
    assert any(k == "escalation_set" and d.get("status") == 200 for k, d in partition_chain)
    assert any(k == "escalation_cleared" and d.get("status") == 200 for k, d in partition_chain)
    head_chain = _kinds(root / "audit" / "head")
    routed = [d for k, d in head_chain if k == "operator_action_routed"]
    assert [(d["action"], d["partition"], d["status"]) for d in routed[-2:]] == [
        ("POST /api/v1/escalations", owner, 200),
        ("DELETE /api/v1/escalations", owner, 200),
    ]
    assert any(k == "escalation_set" and d.get("status") == 409 for k, d in head_chain)
    assert any(k == "lock_release_refused" and d.get("status") == 409 for k, d in head_chain)


def test_alert_when_a_partition_raises_one_then_delivered_once_at_the_head_and_silenced_there(
    served: dict[str, Any],
) -> None:
    """An order reported sent though denied raises an alert in its partition; the head
    collects it once (asked again: nothing new), counts it in its /metrics and holds it
    back when a silence at the head matches (audited in the head's chain)."""
    head, root = served["head"], served["root"]
    silence = {"matchers": {"account": "rev-01"}, "reason": "drill", "duration_s": 600}
    status, created = head.silence(json.dumps(silence).encode())
    assert status == 200 and created["created"] is True, created
    assert [s["id"] for s in head.silences()["silences"]] == [created["silence"]["id"]]
    head.collect_alerts()  # what came before: out of the way
    status, answer = head.report_order(_order("rev-01", order_id="DENIED-1", target_size=10**9))
    assert status == 200 and answer["approved"] is False, answer
    assert head.collect_alerts() == 1
    assert head.collect_alerts() == 0
    text = head.metrics.render()[0].decode()
    assert 'bastion_alerts_silenced_total{kind="order_sent_denied",partition="head"} 1.0' in text
    assert 'bastion_alerts_total{kind="order_sent_denied",partition="head",severity="warning"}' in (
        text
    )
    kinds = [k for k, _ in _kinds(root / "audit" / "head")]
    assert "silence_created" in kinds
