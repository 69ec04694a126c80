"""slack: an incoming-webhook message (Slack's format; Mattermost reads it too):
`text` is the title, one attachment per status with the alert lines."""

from __future__ import annotations

from typing import Any

from bastion.service.alerting.config import ReceiverConfig
from bastion.service.alerting.model import LabelledAlert, Notification
from bastion.service.alerting.receivers.base import post_json

_COLOURS = {"emergency": "#8b0000", "critical": "danger", "warning": "warning"}
_SHOWN = 20  # alert lines per attachment; Slack truncates long messages anyway


def slack_payload(notification: Notification, channel: str | None = None) -> dict[str, Any]:
    attachments = []
    if notification.firing:
        attachments.append(
            _attachment(
                "Firing", notification.firing, _COLOURS.get(notification.severity, "warning")
            )
        )
    if notification.resolved:
        attachments.append(_attachment("Resolved", notification.resolved, "good"))
    payload: dict[str, Any] = {"text": notification.subject_line(), "attachments": attachments}
    if channel:
        payload["channel"] = channel
    return payload


def _attachment(title: str, alerts: tuple[LabelledAlert, ...], colour: str) -> dict[str, Any]:
    lines = [f"*{a.title()}*: {a.summary}" for a in alerts[:_SHOWN]]
    if len(alerts) > _SHOWN:
        lines.append(f"... and {len(alerts) - _SHOWN} more")
    return {
        "title": f"{title} ({len(alerts)})",
        "color": colour,
        "text": "\n".join(lines),
        "mrkdwn_in": ["text"],
    }


class SlackReceiver:
    repeat_cap_s: float | None = None

    def __init__(self, config: ReceiverConfig) -> None:
        self.name = config.name
        self.url = str(config.options["url"])
        self.channel = config.options.get("channel")
        self.timeout_s = config.timeout_s

    def send(self, notification: Notification) -> None:
        post_json(self.url, slack_payload(notification, self.channel), timeout_s=self.timeout_s)
