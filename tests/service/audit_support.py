"""Shared helpers for the audit trail tests: a fake clock, realistic trails, tampering."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bastion.service.audit import AuditTrail
from bastion.service.audit_format import content_hash, record_hmac
from bastion.service.audit_plain import canonical

T0 = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)
KEY = b"test-audit-key-0123456789abcdef"


class StepClock:
    """Advances by `step` on every reading: deterministic, strictly increasing times."""

    def __init__(self, start: datetime = T0, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def write_realistic(trail: AuditTrail, count: int) -> None:
    """`count` records shaped like the service's: checks, decisions, reloads, refusals."""
    trail.append("service_started", principal="local", policy_version="a" * 64, pid=4242)
    for index in range(1, count):
        account = f"account:acc-{index % 7}"
        if index % 10 == 0:
            trail.append(
                "decision_made",
                subject=account,
                decision={
                    "kind": "breaker",
                    "outcome": "tripped",
                    "policy": "default-breakers",
                    "policy_version": "b" * 64,
                    "inputs": {"drawdown_pct": Decimal("5.25"), "limit_pct": Decimal("5")},
                },
            )
        elif index % 97 == 0:
            trail.append(
                "auth_refused", principal=None, method="POST", path="/-/reload", status=401
            )
        else:
            trail.append(
                "order_checked",
                principal="trader-1",
                subject=account,
                symbol="AAPL",
                side="buy",
                quantity=Decimal(index % 50 + 1),
                outcome="approved" if index % 3 else "denied",
                policy_versions={"limits": "c" * 64, "protections": "d" * 64},
            )


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def files_of(directory: Path) -> list[Path]:
    return sorted(directory.glob("audit-*.jsonl"))


def forged_line(previous: bytes, *, kind: str, key: bytes | None = None) -> bytes:
    """A record chained after `previous` as someone with write access (and `key`) would."""
    before = json.loads(previous)
    body = {
        "v": 1,
        "seq": before["seq"] + 1,
        "file_seq": before["file_seq"],
        "at": before["at"],
        "kind": kind,
        "principal": "mallory",
        "subject": None,
        "data": {},
        "prev": before["hash"],
    }
    body["hash"] = content_hash(body)
    if key is not None:
        body["hmac"] = record_hmac(key, body, body["hash"])
    return canonical(body)


def write_sample_trail(directory: Path) -> None:
    """The trail in examples/audit/: one evening of a service, rotated at midnight UTC."""
    clock = StepClock(T0, timedelta(minutes=17))
    with AuditTrail.open(directory, clock=clock, fsync=False) as trail:
        versions = {
            "breakers": "3f2a9c01b7de",
            "limits": "9c41d2e85a10",
            "protections": "e07b6f3391c4",
        }
        trail.append("service_started", principal="local", adapter="sim", policy_versions=versions)
        trail.append(
            "decision_made",
            subject="position:acc-1/AAPL",
            kind_of_decision="escalation",
            outcome="transitioned",
            level_from="normal",
            level_to="elevated",
            inputs={"breach_atr": Decimal("1.62"), "threshold_atr": Decimal("1.5")},
            policy="default-escalation",
            policy_version="5d1c0a7e92b3",
        )
        trail.append(
            "decision_made",
            subject="account:acc-1",
            kind_of_decision="breaker",
            outcome="tripped",
            breaker="daily_drawdown",
            inputs={"drawdown_pct": Decimal("5.2"), "limit_pct": Decimal("5")},
            trading_state="REDUCING",
            policy="default-breakers",
            policy_version=versions["breakers"],
        )
        for outcome, quantity in (("approved", Decimal(10)), ("denied", Decimal(500))):
            trail.append(
                "order_checked",
                principal="trader-1",
                subject="account:acc-1",
                symbol="AAPL",
                side="buy",
                quantity=quantity,
                outcome=outcome,
                policy_versions=versions,
            )
        trail.append(
            "auth_refused", method="POST", path="/-/reload", status=401, reason="no bearer token"
        )
        trail.append(
            "breaker_reset_requested",
            principal="operator-ana",
            subject="account:acc-1",
            breaker="daily_drawdown",
            reason="drawdown booked, positions flat",
        )
        trail.append(
            "policy_reloaded",
            principal="operator-ana",
            versions_before=versions,
            versions_after=versions | {"limits": "77aa4e1c08f5"},
            files_changed=["policies/limits.yaml"],
        )
        trail.append(
            "reload_rejected",
            principal="operator-ana",
            files_changed=["policies/limits.yaml"],
            findings=["policies/limits.yaml:12:5: BST301 max_order_notional_usd is negative"],
        )
        trail.append(
            "order_reported",
            principal="trader-1",
            subject="account:acc-1",
            symbol="AAPL",
            filled_quantity=Decimal(10),
            price=Decimal("231.40"),
        )
        trail.append("service_stopped", principal="local", reason="SIGTERM")
    (directory / "audit.lock").unlink()
