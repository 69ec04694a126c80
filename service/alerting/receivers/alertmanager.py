"""alertmanager: POST to an Alertmanager's /api/v2/alerts, so that teams that already run
one keep their routing, inhibition and silences.

Each alert goes with labels (alertname = the kind, severity, breaker, account, subject,
policy, service="bastion"), annotations (summary) and startsAt; a resolved one with
endsAt. Alertmanager forgets a firing alert that is not posted again within its
resolve_timeout (5 min by default), as Prometheus re-posts its own: a group still firing
is posted again every minute at most (`repeat_cap_s`), and Alertmanager deduplicates.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bastion.service.alerting.config import ReceiverConfig
from bastion.service.alerting.model import LabelledAlert, Notification
from bastion.service.alerting.receivers.base import post_json

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def alertmanager_alert(alert: LabelledAlert, now: datetime) -> dict[str, Any]:
    """One alert in Alertmanager's v2 shape. Times are the feed's (market time: ahead of
    the wall under sim at 60x, behind it in a replay): Alertmanager refuses a start in
    the future, so they are capped at `now`, and the feed's time kept as an annotation."""
    labels = {k: v for k, v in alert.labels.items() if _LABEL_NAME.match(k) and v}
    labels["alertname"] = alert.labels.get("kind", "bastion_alert")
    labels["service"] = "bastion"
    starts = min(alert.starts_at, now)
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "summary": alert.summary[:2000],
            "title": alert.title(),
            "bastion_at": alert.starts_at.isoformat(),
        },
        "startsAt": starts.isoformat(),
    }
    if alert.ends_at is not None:
        body["endsAt"] = max(starts, min(alert.ends_at, now)).isoformat()
    return body


class AlertmanagerReceiver:
    repeat_cap_s: float | None = 60.0

    def __init__(self, config: ReceiverConfig) -> None:
        self.name = config.name
        self.url = str(config.options["url"]).rstrip("/") + "/api/v2/alerts"
        self.timeout_s = config.timeout_s

    def send(self, notification: Notification) -> None:
        now = datetime.now(UTC)
        alerts = [alertmanager_alert(a, now) for a in notification.alerts()]
        post_json(self.url, alerts, timeout_s=self.timeout_s)
