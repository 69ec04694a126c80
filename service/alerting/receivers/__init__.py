"""Receivers: one module per type, registered by the name the --alerts file uses.

A receiver turns one `Notification` into one message and sends it within its timeout,
raising `DeliveryFailed` when it could not (delivery retries with backoff, then counts
the failure). Receivers hold no queue and no thread: service.alerting.delivery does.
"""

from __future__ import annotations

from collections.abc import Callable

from bastion.service.alerting.config import ReceiverConfig
from bastion.service.alerting.receivers.alertmanager import AlertmanagerReceiver
from bastion.service.alerting.receivers.base import DeliveryFailed, Receiver
from bastion.service.alerting.receivers.email import EmailReceiver
from bastion.service.alerting.receivers.log import LogReceiver
from bastion.service.alerting.receivers.slack import SlackReceiver
from bastion.service.alerting.receivers.webhook import WebhookReceiver

RECEIVERS: dict[str, Callable[[ReceiverConfig], Receiver]] = {
    "webhook": WebhookReceiver,
    "slack": SlackReceiver,
    "email": EmailReceiver,
    "alertmanager": AlertmanagerReceiver,
    "log": LogReceiver,
}


def build_receiver(config: ReceiverConfig) -> Receiver:
    return RECEIVERS[config.type](config)


__all__ = ["RECEIVERS", "DeliveryFailed", "Receiver", "build_receiver"]
