"""The shadow candidate (`bastion serve --candidate DIR`): evaluated beside the serving set
on the sim, never enforcing; disagreements counted, logged once, shown and audited; a
candidate refused at start; promote and rollback through the reload guard, by an officer
only, never in the middle of a cycle or a check."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from bastion.adapters.sources import ManualClock
from bastion.cli.main import main
from bastion.engine.errors import UsageError
from bastion.service.audit import AuditTrail
from bastion.service.audit_read import read_records
from bastion.service.auditor import Auditor
from bastion.service.auth import Authenticator, Principal, Role
from bastion.service.candidate import Candidate
from bastion.service.feeds import make_feed
from bastion.service.http import HttpServer
from bastion.service.metrics import ServiceMetrics
from bastion.service.reload_events import record_reload
from bastion.service.reloader import PolicyReloaded, PolicyReloader, ReloadRejected
from bastion.service.runner import Cycle, Service
from tests.conftest import POLICIES
from tests.service.http_support import bearer, call, default_logging, write_auth_file  # noqa: F401

START = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
OFFICER = Principal("oscar", Role.OFFICER)
TRADER = Principal("tom", Role.TRADER)
# In the sim's own book (gen-01 holds no QQQ): within every shipped limit.
SIM_OPEN = {"account_id": "gen-01", "symbol": "QQQ", "action": "open", "target_size": 10}
# A bracket on the sim's ETH-USD: ~$300 of entry, inside the shipped caps, over $100.
BRACKET = {
    "id": "B-7",
    "contingency": "bracket",
    "orders": [
        {"role": role, "account_id": "gen-01", "symbol": "ETH-USD", "action": action, **size}
        for role, action, size in (
            ("entry", "open", {"target_size": "0.1"}),
            ("stop_loss", "close", {}),
            ("take_profit", "close", {}),
        )
    ],
}
DAILY_LOSS = 'id: daily_loss_pct\n      metric: account.daily_loss_pct\n      comparison: ">="\n'


def _tighter(directory: Path) -> Path:
    """The shipped set with a 1 % daily-loss breaker (5 % shipped, 3 % for com accounts)
    and a $100 notional cap per order ($50,000 shipped)."""
    shutil.copytree(POLICIES, directory)
    breakers = directory / "breakers.yaml"
    text = breakers.read_text()
    assert text.count(DAILY_LOSS + "      threshold: 5\n") == 1
    breakers.write_text(
        text.replace(DAILY_LOSS + "      threshold: 5\n", DAILY_LOSS + "      threshold: 0.5\n")
    )
    overlay = directory / "com-accounts.yaml"
    text = overlay.read_text()
    assert text.count("- id: daily_loss_pct\n      threshold: 3\n") == 1
    overlay.write_text(text.replace("threshold: 3\n", "threshold: 0.5\n", 1))
    limits = directory / "limits.yaml"
    limits.write_text(
        limits.read_text().replace(
            "max_notional_per_order_usd: 50000", "max_notional_per_order_usd: 100"
        )
    )
    return directory


@dataclass
class Shadowed:
    service: Service
    wall: ManualClock
    serving: Path
    candidate: Path
    audit: Path


def _service(serving: Path, wall: ManualClock, keep: int = 5) -> Service:
    feed = make_feed("sim", {}, wall=wall, speed=60.0, seed=7, environ={})
    holder: list[Service] = []
    reloader = PolicyReloader(serving, now=feed.now, on_event=lambda e: record_reload(holder[0], e))
    reloader.load_initial()
    service = Service(feed, reloader, ServiceMetrics(), keep_versions=keep)
    holder.append(service)
    return service


@pytest.fixture
def shadowed(tmp_path: Path) -> Iterator[Shadowed]:
    """The shipped set serving on the sim (market time moved by the test), the tighter set
    as its candidate, an audit trail. No cycle yet."""
    serving = tmp_path / "policies"
    shutil.copytree(POLICIES, serving)
    candidate = _tighter(tmp_path / "candidate")
    wall = ManualClock(START)
    service = _service(serving, wall)
    audit = tmp_path / "audit"
    trail = AuditTrail.open(audit, clock=service.feed.now, fsync=False)
    service.auditor = Auditor(trail)
    service.candidate = Candidate.open(candidate, service, service.feed.now)
    yield Shadowed(service, wall, serving, candidate, audit)
    service.candidate.stop()
    trail.close()


def _cycles(shadowed: Shadowed, count: int) -> list[Cycle]:
    cycles = []
    for _ in range(count):
        shadowed.wall.advance(1)  # one market minute
        cycles.append(shadowed.service.cycle())
    return cycles


def _counter(service: Service, kind: str) -> float:
    for family in text_string_to_metric_families(service.metrics.render()[0].decode()):
        for sample in family.samples:
            if (
                sample.name == "bastion_candidate_disagreements_total"
                and sample.labels["kind"] == kind
            ):
                return sample.value
    raise AssertionError(f"bastion_candidate_disagreements_total{{kind={kind}}} not exported")


def test_cycle_when_candidate_threshold_tighter_then_disagreements_counted_shown_and_audited(
    shadowed: Shadowed,
) -> None:
    """On the sim's sell-off the 1 % breaker trips where the 5 % one does not: breaker and
    trading-state disagreements are counted, shown in the status and audited per cycle."""
    service = shadowed.service
    with capture_logs() as logs:
        _cycles(shadowed, 40)
    candidate = service.candidate
    assert candidate is not None
    status = service.status()["candidate"]
    assert status["version"] == candidate.version != service.reloader.current.version
    assert status["disagreements"]["breaker"] > 0
    assert status["disagreements"]["trading_state"] > 0
    assert _counter(service, "breaker") == status["disagreements"]["breaker"]
    assert _counter(service, "trading_state") == status["disagreements"]["trading_state"]
    halted = [d for d in status["recent"] if d["kind"] == "trading_state"]
    assert any(d["serving"] == "ACTIVE" and d["candidate"] == "HALTED" for d in halted)
    records = list(read_records(shadowed.audit, kinds={"candidate_disagreements"}))
    assert records and all(r.subject == "system:candidate" for r in records)
    assert sum(len(r.data["cycle"]) for r in records) == sum(status["disagreements"].values())
    # One line when a disagreement starts or changes, never once per cycle it stands.
    lines = [e for e in logs if e["event"] == "candidate_disagreed"]
    assert len(lines) == sum(status["disagreements"].values())
    assert len({(e["kind"], e["subject"], e["serving"], e["candidate"]) for e in lines}) == len(
        lines
    )


def test_cycle_when_candidate_evaluates_then_serving_state_and_decisions_unchanged(
    shadowed: Shadowed, tmp_path: Path
) -> None:
    """The same sim run without a candidate ends in the very same serving state, with the
    same decisions: the candidate never enforces."""
    wall = ManualClock(START)
    alone = _service(shadowed.serving, wall)
    for _ in range(40):
        shadowed.wall.advance(1)
        wall.advance(1)
        with_candidate, without = shadowed.service.cycle(), alone.cycle()
        assert [(d.kind, d.subject, d.outcome) for d in with_candidate.decisions] == [
            (d.kind, d.subject, d.outcome) for d in without.decisions
        ]
    assert shadowed.service.state.to_dict() == alone.state.to_dict()
    assert shadowed.service.candidate is not None
    assert shadowed.service.candidate.state.breakers != alone.state.breakers


def test_check_when_candidate_cap_lower_then_check_disagreement_and_answer_unchanged(
    shadowed: Shadowed,
) -> None:
    """The serving set approves a $5,000 order the candidate's $100 cap does not: the
    answer is the serving set's; the check disagreement is counted and audited with the
    next cycle."""
    service = shadowed.service
    _cycles(shadowed, 1)
    status, answer = service.check(json.dumps(SIM_OPEN).encode())
    assert status == 200 and answer["approved"] is True
    assert answer["policy_version"] == service.reloader.current.version
    candidate = service.candidate
    assert candidate is not None
    assert candidate.counts["check"] == 1
    (recent,) = [d for d in service.status()["candidate"]["recent"] if d["kind"] == "check"]
    assert recent["subject"] == "account:gen-01/QQQ/open"
    assert recent["serving"] == "approved 10" and not recent["candidate"].startswith("approved")
    _cycles(shadowed, 1)
    records = list(read_records(shadowed.audit, kinds={"candidate_disagreements"}))
    assert [d["kind"] for r in records for d in r.data["checks"]] == ["check"]


def test_check_when_list_and_candidate_cap_lower_then_the_list_and_its_legs_disagree(
    shadowed: Shadowed,
) -> None:
    """An order list is shadowed like a single order: the serving set approves the bracket,
    the candidate's $100 cap cuts its entry; the list's outcome and each differing leg
    are counted and kept, the answer is the serving set's and nothing is remembered."""
    service = shadowed.service
    _cycles(shadowed, 1)
    status, answer = service.check(json.dumps(BRACKET).encode(), TRADER)
    assert (status, answer["approved"]) == (200, True)
    candidate = service.candidate
    assert candidate is not None
    recent = {d["subject"]: d for d in service.status()["candidate"]["recent"]}
    assert (recent["list:B-7"]["serving"], recent["list:B-7"]["candidate"]) == (
        "approved",
        "downsized",
    )
    entry = recent["list:B-7/orders[0]:account:gen-01/ETH-USD/open"]
    assert entry["serving"] == "approved 0.1" and entry["candidate"].startswith("downsized 0.0")
    assert candidate.counts["check"] == len(recent) >= 2
    assert not candidate.authority.state.authority  # a question, on its side too


def test_report_when_list_sent_then_the_candidate_remembers_every_leg(
    shadowed: Shadowed,
) -> None:
    """A list reported sent is remembered by the candidate's authority as well (the entry
    pending there too), whatever the candidate would have answered."""
    service = shadowed.service
    _cycles(shadowed, 1)
    status, answer = service.report_order(json.dumps(BRACKET).encode(), TRADER)
    assert (status, answer["recorded"]) == (200, True)
    candidate = service.candidate
    assert candidate is not None
    pending = list(candidate.authority.state.authority.pending.orders())
    assert [(order.symbol, str(order.units)) for order in pending] == [("ETH-USD", "0.1")]


def test_check_when_candidate_worker_runs_then_answer_does_not_wait_and_drain_decides(
    shadowed: Shadowed,
) -> None:
    """With the worker started the candidate decides after the answer; drained, the
    disagreements are there, one log line for the same order shape."""
    service, candidate = shadowed.service, shadowed.service.candidate
    assert candidate is not None
    candidate.start()
    _cycles(shadowed, 1)
    with capture_logs() as logs:
        for _ in range(5):
            assert service.check(json.dumps(SIM_OPEN).encode())[0] == 200
        candidate.drain()
    assert candidate.counts["check"] == 5
    assert len([e for e in logs if e["event"] == "candidate_disagreed"]) == 1


def test_open_when_candidate_removes_protection_then_refused_naming_the_keys(
    shadowed: Shadowed, tmp_path: Path
) -> None:
    """A candidate without the shipped stale-data breaker would be refused as a reload: it
    is refused at start (exit 2 from `bastion serve`), with the key it removes."""
    removed = tmp_path / "removed"
    shutil.copytree(POLICIES, removed)
    (removed / "com-accounts.yaml").unlink()
    with pytest.raises(
        UsageError, match=r"(?s)--candidate .*removed: refused: .*BreakerPolicy/com-breakers"
    ):
        Candidate.open(removed, shadowed.service, shadowed.service.feed.now)


def test_open_when_candidate_does_not_lint_then_refused(shadowed: Shadowed, tmp_path: Path) -> None:
    """A candidate with lint errors is refused at start with the file that fails."""
    broken = tmp_path / "broken"
    shutil.copytree(POLICIES, broken)
    (broken / "breakers.yaml").write_text("apiVersion: bastion/v1\nkind: BreakerPolicy\n")
    with pytest.raises(UsageError, match=r"--candidate .*broken: refused"):
        Candidate.open(broken, shadowed.service, shadowed.service.feed.now)


def test_serve_when_candidate_refused_then_exit_2_with_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bastion serve --once --candidate DIR` with a candidate that removes protection
    exits 2 and says why, before any cycle."""
    removed = tmp_path / "removed"
    shutil.copytree(POLICIES, removed)
    (removed / "com-accounts.yaml").unlink()
    argv = [
        "serve",
        "--once",
        "--no-audit",
        "--policies",
        str(POLICIES),
        "--candidate",
        str(removed),
    ]
    assert main([*argv, "--log-format", "json"]) == 2
    assert "refused: it would remove protection" in capsys.readouterr().err


def test_promote_when_officer_then_candidate_serves_and_rollback_returns(
    shadowed: Shadowed,
) -> None:
    """Promote: the candidate's version serves from the next cycle on; rollback: the
    previous version again. Both audited as reloads with their trigger."""
    service = shadowed.service
    before = service.reloader.current.version
    assert service.candidate is not None
    status, answer = service.promote(b"", OFFICER)
    assert (status, answer["promoted"]) == (200, True)
    assert answer["version"] == service.candidate.version == service.reloader.current.version
    assert _cycles(shadowed, 1)[0].policy_version == service.candidate.version
    kept = [entry["version"] for entry in service.status()["policy_versions"]["kept"]]
    assert kept == [before, service.candidate.version]
    status, answer = service.rollback(b"", OFFICER)
    assert (status, answer["rolled_back"], answer["version"]) == (200, True, before)
    assert _cycles(shadowed, 1)[0].policy_version == before
    triggers = [r.data["trigger"] for r in read_records(shadowed.audit, kinds={"policy_reloaded"})]
    assert triggers == ["promote", "rollback"]
    assert service.rollback(b"", OFFICER)[0] == 409  # nothing older kept


def test_promote_when_trader_then_403_and_nothing_changes(shadowed: Shadowed) -> None:
    """Only an officer promotes or rolls back (the HTTP table says so too)."""
    service = shadowed.service
    before = service.reloader.current.version
    assert service.promote(b"", TRADER)[0] == 403
    assert service.rollback(b"", TRADER)[0] == 403
    assert service.reloader.current.version == before


def test_promote_when_guard_refuses_then_422_audited_counted_and_serving_kept(
    shadowed: Shadowed,
) -> None:
    """The serving set gained a breaker the candidate lacks: its promotion would remove it,
    so it is refused (422 with the key and how to accept), audited and counted."""
    service = shadowed.service
    breakers = shadowed.serving / "breakers.yaml"
    breakers.write_text(
        breakers.read_text()
        + "    - id: extra_guard\n      metric: account.daily_loss_pct\n"
        + '      comparison: ">="\n      threshold: 9\n      action: halt_all\n'
        + "      severity: critical\n"
    )
    assert service.reload()[0] == 200
    serving = service.reloader.current.version
    status, answer = service.promote(b"", OFFICER)
    assert (status, answer["promoted"], answer["reason"]) == (422, False, "removes_protection")
    keys = [r["key"] for r in answer["removals"]]  # com-breakers extends default-breakers
    assert keys == [
        "BreakerPolicy/com-breakers:breaker/extra_guard",
        "BreakerPolicy/default-breakers:breaker/extra_guard",
    ]
    assert "accept_removal" in answer["hint"] and service.reloader.current.version == serving
    rejected = list(read_records(shadowed.audit, kinds={"reload_rejected"}))
    assert [r.data["trigger"] for r in rejected] == ["promote"]
    assert service.reloader.stats.refused == 1
    accepted = json.dumps({"accept_removal": keys}).encode()
    assert service.promote(accepted, OFFICER)[0] == 200


def test_rollback_when_version_audited_but_not_kept_then_409_saying_how(tmp_path: Path) -> None:
    """With 2 versions kept, the first of three is gone from memory: a rollback to it is
    refused, saying it served and how to restore it; the previous one still works."""
    serving = tmp_path / "policies"
    shutil.copytree(POLICIES, serving)
    service = _service(serving, ManualClock(START), keep=2)
    first = service.reloader.current.version
    limits = serving / "limits.yaml"
    for cap in ("40000", "30000"):
        limits.write_text(
            limits.read_text()
            .replace("max_notional_per_order_usd: 50000", f"max_notional_per_order_usd: {cap}")
            .replace("max_notional_per_order_usd: 40000", f"max_notional_per_order_usd: {cap}")
        )
        assert service.reload()[0] == 200
    status, answer = service.rollback(json.dumps({"version": first[:20]}).encode(), OFFICER)
    assert status == 409 and "no longer kept in memory" in answer["error"]
    assert "restore its files" in answer["error"]
    assert service.rollback(b"", OFFICER)[0] == 200


def test_promote_and_rollback_when_cycles_and_checks_run_then_never_mixed(
    shadowed: Shadowed,
) -> None:
    """Cycles and checks run without pause while an officer promotes and rolls back again
    and again: every cycle's decisions carry the one version that cycle read, and every
    check answer one of the two versions."""
    service = shadowed.service
    assert service.candidate is not None
    # A decision carries the version of the policy that made it (or of the whole set):
    # each set's own, and the two sets differ in their breakers and limits.
    sets = (service.reloader.current, service.candidate.reloader.current)
    versions = {loaded.version for loaded in sets}
    members = {loaded.version: {loaded.version, *loaded.versions().values()} for loaded in sets}
    assert members[sets[0].version] != members[sets[1].version]
    stop = threading.Event()
    cycles: list[Cycle] = []
    answers: list[str] = []

    def cycle_on() -> None:
        while not stop.is_set():
            shadowed.wall.advance(1)
            cycles.append(service.cycle())

    def check_on() -> None:
        while not stop.is_set():
            answers.append(
                service.check(json.dumps(SIM_OPEN).encode())[1].get("policy_version", "")
            )

    _cycles(shadowed, 1)  # ready: checks are answered
    threads = [threading.Thread(target=cycle_on), threading.Thread(target=check_on)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(10):
            assert service.promote(b"", OFFICER)[0] == 200
            _one_more_cycle(cycles)
            assert service.rollback(b"", OFFICER)[0] == 200
            _one_more_cycle(cycles)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert cycles and answers
    for cycle in cycles:
        assert cycle.policy_version in versions
        assert {d.policy_version for d in cycle.decisions} <= members[cycle.policy_version]
    assert set(answers) <= versions | members[sets[0].version] | members[sets[1].version]
    assert {cycle.policy_version for cycle in cycles} == versions


def _one_more_cycle(cycles: list[Cycle]) -> None:
    """Wait (bounded) until the cycling thread has finished one more cycle."""
    seen = len(cycles)
    deadline = time.monotonic() + 30
    while len(cycles) < seen + 2 and time.monotonic() < deadline:
        time.sleep(0.001)


def test_candidate_when_its_directory_changes_then_reloaded_through_the_guard(
    shadowed: Shadowed,
) -> None:
    """The candidate directory is reloaded as the serving one is: an edit that lints
    serves as the new candidate; one that removes protection the serving set has is
    refused and the previous candidate stays."""
    candidate = shadowed.service.candidate
    assert candidate is not None
    first = candidate.version
    limits = shadowed.candidate / "limits.yaml"
    limits.write_text(
        limits.read_text().replace(
            "max_notional_per_order_usd: 100", "max_notional_per_order_usd: 200"
        )
    )
    reloaded = candidate.reloader.reload("watch")
    assert isinstance(reloaded, PolicyReloaded) and reloaded.version != first
    second = candidate.version
    (shadowed.candidate / "com-accounts.yaml").unlink()
    refused = candidate.reloader.reload("watch")
    assert isinstance(refused, ReloadRejected) and refused.reason == "removes_protection"
    assert candidate.version == second
    assert shadowed.service.status()["candidate"]["last_reload_failed"] is True
    kinds = [
        r.kind
        for r in read_records(shadowed.audit, kinds={"candidate_reloaded", "candidate_rejected"})
    ]
    assert kinds == ["candidate_reloaded", "candidate_rejected"]


def test_http_when_trader_promotes_then_403_and_officer_200(
    shadowed: Shadowed, tmp_path: Path
) -> None:
    """Over HTTP with --auth: a trader's POST /-/promote and /-/rollback are 403; an
    officer's promote is 200."""
    auth = write_auth_file(tmp_path / "principals.yaml")
    service = shadowed.service
    http = HttpServer("127.0.0.1", 0, service, service.metrics, authenticator=Authenticator(auth))
    http.start()
    try:
        for path in ("/-/promote", "/-/rollback"):
            reply = call(http.url + path, method="POST", body=b"", headers=bearer("tom"))
            assert reply.status == 403, path
        reply = call(http.url + "/-/promote", method="POST", body=b"", headers=bearer("oscar"))
        assert reply.status == 200 and json.loads(reply.body)["promoted"] is True
    finally:
        http.stop()


def _failures(service: Service, what: str) -> float:
    for family in text_string_to_metric_families(service.metrics.render()[0].decode()):
        for sample in family.samples:
            if sample.name == "bastion_candidate_failures_total" and sample.labels["what"] == what:
                return sample.value
    raise AssertionError(f"bastion_candidate_failures_total{{what={what}}} not exported")


def test_cycle_when_candidate_raises_then_counted_shown_audited_and_promote_refused(
    shadowed: Shadowed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A candidate cycle that raises leaves the serving cycle whole, and is loud: counted,
    shown in the status with its error, audited; promote is refused (409) until a cycle
    of the candidate succeeds again."""
    service = shadowed.service
    candidate = service.candidate
    assert candidate is not None
    assert _failures(service, "cycle") == 0  # exported before anything fails
    working = candidate.cycle

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("candidate cannot evaluate")

    monkeypatch.setattr(candidate, "cycle", broken)
    with capture_logs() as logs:
        (served,) = _cycles(shadowed, 1)
    assert served.policy_version == service.reloader.current.version  # serving unharmed
    status = service.status()["candidate"]
    assert status["failures"] == {"cycle": 1, "check": 0}
    assert status["last_cycle_failed"] is True
    assert status["last_failure"]["error"] == "RuntimeError: candidate cannot evaluate"
    assert _failures(service, "cycle") == 1
    assert any(e["event"] == "candidate_cycle_failed" for e in logs)
    (record,) = read_records(shadowed.audit, kinds={"candidate_failed"})
    assert record.data["error"] == "RuntimeError: candidate cannot evaluate"
    before = service.reloader.current.version
    status_code, answer = service.promote(b"", OFFICER)
    assert (status_code, answer["promoted"], answer["reason"]) == (409, False, "candidate_failing")
    assert "candidate cannot evaluate" in answer["error"]
    assert service.reloader.current.version == before
    (refused,) = read_records(shadowed.audit, kinds={"promote_refused"})
    assert refused.data["reason"] == "candidate_failing"
    monkeypatch.setattr(candidate, "cycle", working)
    _cycles(shadowed, 1)
    assert service.status()["candidate"]["last_cycle_failed"] is False
    assert service.promote(b"", OFFICER)[0] == 200


def test_check_when_candidate_check_raises_then_counted_and_answer_unchanged(
    shadowed: Shadowed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A candidate check that raises never touches the serving answer; it is counted."""
    service = shadowed.service
    _cycles(shadowed, 1)
    candidate = service.candidate
    assert candidate is not None

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("candidate check broke")

    monkeypatch.setattr(candidate, "_check", broken)
    status, answer = service.check(json.dumps(SIM_OPEN).encode(), TRADER)
    assert status == 200 and answer["approved"] is True
    assert service.status()["candidate"]["failures"]["check"] == 1
    assert _failures(service, "check") == 1
