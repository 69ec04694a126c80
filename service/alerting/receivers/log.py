"""log: one `alert_notified` structured event per notification (what a log shipper
routes to on-call), at error level while firing, warning when resolved."""

from __future__ import annotations

import structlog

from bastion.service.alerting.config import ReceiverConfig
from bastion.service.alerting.model import Notification

log = structlog.get_logger("bastion.alerts")


class LogReceiver:
    repeat_cap_s: float | None = None

    def __init__(self, config: ReceiverConfig) -> None:
        self.name = config.name

    def send(self, notification: Notification) -> None:
        emit = log.error if notification.firing else log.warning
        emit(
            "alert_notified",
            receiver=self.name,
            status=notification.status,
            title=notification.subject_line(),
            group=dict(notification.group_labels),
            firing=len(notification.firing),
            resolved=len(notification.resolved),
        )
