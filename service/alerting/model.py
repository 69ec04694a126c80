"""What travels through alert delivery: labelled alerts, their fingerprints, and the
notifications (one per group flush) that receivers turn into messages.

An `AlertRaised` (service.alerts) becomes a `LabelledAlert`: its labels are what routes,
groups, silences and fingerprints read (kind, severity, breaker, account, subject,
policy, ...). Two alerts with the same identity labels are the same alert (dedup); an
`AlertResolved` with the same identity ends it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # service.alerts imports this module
    from bastion.service.alerts import AlertRaised, AlertResolved

SEVERITIES = ("info", "warning", "critical", "emergency")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
# The labels that say which alert it is (severity and summary do not: a breaker that
# trips again at another severity is still the same alert).
IDENTITY_LABELS = ("kind", "policy", "breaker", "subject", "account", "protection", "what")
# Conditions: raised while something holds, resolved when it clears (service.alerts).
# Every other kind is an event (an order sent though denied, a failed evaluation): told
# once, never repeated nor resolved, so that groups do not grow with every event.
CONDITION_KINDS = frozenset({"breaker_tripped", "persist_failed", "reload_rejected"})
# The labels routes, group_by and silences may name.
MATCHABLE_LABELS = ("severity", "kind", "account", "breaker", "subject", "policy")


def labels_of(alert: AlertRaised | AlertResolved) -> dict[str, str]:
    """The alert's labels: kind and severity, and every short text detail."""
    labels = {"kind": alert.kind, "severity": alert.severity or "warning"}
    for key, value in alert.details.items():
        if isinstance(value, str) and len(value) <= 200:
            labels[key] = value
    subject = labels.get("subject", "")
    if "account" not in labels and subject.startswith("account:"):
        labels["account"] = subject.removeprefix("account:")
    return labels


def fingerprint(labels: Mapping[str, str], summary: str = "") -> str:
    """The alert's identity: a hash of its identity labels; the summary too for an event
    (two orders sent though denied are two events) and for a condition without any
    label but its kind (two different reload rejections are two alerts)."""
    identity = {k: labels[k] for k in IDENTITY_LABELS if k in labels}
    if set(identity) == {"kind"} or labels.get("kind") not in CONDITION_KINDS:
        identity["summary"] = summary
    text = "\x1f".join(f"{k}={v}" for k, v in sorted(identity.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class LabelledAlert:
    """One alert as delivery sees it: firing until `ends_at` is set."""

    fingerprint: str
    labels: Mapping[str, str]
    summary: str
    starts_at: datetime
    ends_at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "warning")

    @property
    def resolved(self) -> bool:
        return self.ends_at is not None

    @property
    def condition(self) -> bool:
        """Repeated until resolved (a condition), or told once (an event)."""
        return self.labels.get("kind", "") in CONDITION_KINDS

    def title(self) -> str:
        """`breaker_tripped daily_loss_usd on account:gen-01` — what and where."""
        parts = [self.labels.get("kind", "alert")]
        if "breaker" in self.labels:
            parts.append(self.labels["breaker"])
        subject, account = self.labels.get("subject", ""), self.labels.get("account", "")
        if subject:
            parts.append(f"on {subject}")
        if account and subject != f"account:{account}":
            parts.append(f"(account {account})")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "status": "resolved" if self.resolved else "firing",
            "labels": dict(self.labels),
            "summary": self.summary,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": None if self.ends_at is None else self.ends_at.isoformat(),
        }


def labelled(alert: AlertRaised) -> LabelledAlert:
    labels = labels_of(alert)
    return LabelledAlert(
        fingerprint(labels, alert.summary), labels, alert.summary, alert.at, None, alert.details
    )


@dataclass(frozen=True, slots=True)
class Notification:
    """One group's message to one receiver: the alerts new or changed since the group's
    last message (or all of them again, at repeat_interval)."""

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    firing: tuple[LabelledAlert, ...]
    resolved: tuple[LabelledAlert, ...]
    enqueued_at_s: float  # monotonic: when the oldest alert in it was raised (latency)

    @property
    def status(self) -> str:
        return "firing" if self.firing else "resolved"

    @property
    def severity(self) -> str:
        alerts = self.firing or self.resolved
        return max((a.severity for a in alerts), key=lambda s: SEVERITY_RANK.get(s, 1))

    def alerts(self) -> tuple[LabelledAlert, ...]:
        return self.firing + self.resolved

    def subject_line(self) -> str:
        """`[FIRING:3 critical] breaker_tripped daily_loss_usd on account:gen-01 (+2 more)`."""
        alerts = self.alerts()
        head = alerts[0].title()
        more = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
        count = len(self.firing) if self.firing else len(self.resolved)
        return f"[{self.status.upper()}:{count} {self.severity}] {head}{more}"

    def text(self, limit: int = 20) -> str:
        """A plain-text body: one line per alert (the first `limit`)."""
        lines = [self.subject_line(), ""]
        for alert in self.alerts()[:limit]:
            state = "RESOLVED" if alert.resolved else "FIRING"
            lines.append(f"{state} {alert.title()}: {alert.summary}")
        if len(self.alerts()) > limit:
            lines.append(f"... and {len(self.alerts()) - limit} more")
        return "\n".join(lines) + "\n"

    def to_dict(self, limit: int = 100) -> dict[str, Any]:
        alerts = self.alerts()
        return {
            "receiver": self.receiver,
            "status": self.status,
            "group_key": self.group_key,
            "group_labels": dict(self.group_labels),
            "title": self.subject_line(),
            "alerts": [a.to_dict() for a in alerts[:limit]],
            "truncated": max(0, len(alerts) - limit),
        }
