"""webhook: the notification as JSON, POSTed; signed when secret_env is set.

The signature is HMAC-SHA256 of the exact body bytes with the secret, sent as
`X-Bastion-Signature: sha256=<hex>` (the body carries `sent_at`, so a replayed body is
recognisable). Verify: hmac.compare_digest(header, "sha256=" + hmac(secret, body)).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from bastion.service.alerting.config import ReceiverConfig
from bastion.service.alerting.model import Notification
from bastion.service.alerting.receivers.base import post_json

SIGNATURE_HEADER = "X-Bastion-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookReceiver:
    repeat_cap_s: float | None = None

    def __init__(self, config: ReceiverConfig) -> None:
        self.name = config.name
        self.url = str(config.options["url"])
        self.secret = config.options.get("secret")
        self.headers = dict(config.options.get("headers", {}))
        self.timeout_s = config.timeout_s

    def send(self, notification: Notification) -> None:
        payload = {
            "version": "1",
            "sent_at": datetime.now(UTC).isoformat(),
            **notification.to_dict(),
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = dict(self.headers)
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(str(self.secret), body)
        post_json(self.url, None, body=body, headers=headers, timeout_s=self.timeout_s)
