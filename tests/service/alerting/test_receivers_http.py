"""The webhook and slack receivers against a real HTTP server on loopback: the JSON they
post, the HMAC signature (verified as a consumer would), errors and timeouts."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bastion.service.alerting.config import ReceiverConfig
from bastion.service.alerting.grouping import Grouper
from bastion.service.alerting.model import Notification, labelled
from bastion.service.alerting.receivers import DeliveryFailed, build_receiver
from tests.service.alerting.support import log_policy, trip

SECRET = "test-webhook-key"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    received: list[tuple[str, dict[str, str], bytes]]
    status: int = 200
    stall: threading.Event | None = None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), body))
        if self.server.stall is not None:
            self.server.stall.wait(5)
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _loopback() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        if server.stall is not None:
            server.stall.set()
        server.shutdown()
        server.server_close()


def _url(server: _Server, path: str = "/hook") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def _notification(receiver: str) -> Notification:
    grouper = Grouper(log_policy(group_by=["kind", "breaker"]), {})
    grouper.add(labelled(trip()), 0.0)
    grouper.add(labelled(trip(account="gen-02")), 0.0)
    return next(n for n in grouper.due(100.0) if n.receiver == "a")


def test_webhook_when_secret_set_then_json_posted_with_a_verifiable_hmac() -> None:
    """The body is the notification as JSON; X-Bastion-Signature is HMAC-SHA256 of the
    exact body with the secret, as a consumer recomputes it."""
    with _loopback() as server:
        config = ReceiverConfig("hook", "webhook", {"url": _url(server), "secret": SECRET})
        build_receiver(config).send(_notification("hook"))
    path, headers, body = server.received[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Bastion-Signature"], expected)
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert path == "/hook" and payload["version"] == "1" and payload["status"] == "firing"
    assert {a["labels"]["account"] for a in payload["alerts"]} == {"gen-01", "gen-02"}
    assert payload["title"].startswith("[FIRING:2 critical] breaker_tripped daily_loss_usd")


def test_webhook_when_body_tampered_then_signature_no_longer_matches() -> None:
    """The signature covers the body: one changed byte and it does not verify."""
    with _loopback() as server:
        config = ReceiverConfig("hook", "webhook", {"url": _url(server), "secret": SECRET})
        build_receiver(config).send(_notification("hook"))
    _path, headers, body = server.received[0]
    tampered = body.replace(b"gen-01", b"gen-09")
    forged = "sha256=" + hmac.new(SECRET.encode(), tampered, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(headers["X-Bastion-Signature"], forged)


def test_slack_when_sent_then_incoming_webhook_shape() -> None:
    """text (the title) and one attachment per status, with the alert lines."""
    with _loopback() as server:
        config = ReceiverConfig("chat", "slack", {"url": _url(server, "/services/T/B/X")})
        build_receiver(config).send(_notification("chat"))
    payload = json.loads(server.received[0][2])
    assert set(payload) == {"text", "attachments"}
    assert payload["text"].startswith("[FIRING:2 critical]")
    (attachment,) = payload["attachments"]
    assert attachment["color"] == "danger" and attachment["title"] == "Firing (2)"
    assert "*breaker_tripped daily_loss_usd on account:gen-01*" in attachment["text"]


@pytest.mark.parametrize(("status", "retry"), [(500, True), (429, True), (400, False)])
def test_webhook_when_server_refuses_then_delivery_failed(status: int, retry: bool) -> None:
    """5xx and 429 are worth a retry; another 4xx is not (the message itself is refused)."""
    with _loopback() as server:
        server.status = status
        receiver = build_receiver(ReceiverConfig("hook", "webhook", {"url": _url(server)}))
        with pytest.raises(DeliveryFailed) as failed:
            receiver.send(_notification("hook"))
    assert failed.value.retry is retry and f"HTTP {status}" in str(failed.value)


def test_webhook_when_server_hangs_then_timeout_ends_the_attempt() -> None:
    """A server that accepts and never answers: the attempt fails at timeout_s."""
    with _loopback() as server:
        server.stall = threading.Event()
        config = ReceiverConfig("hook", "webhook", {"url": _url(server)}, timeout_s=0.2)
        with pytest.raises(DeliveryFailed, match="timed out"):
            build_receiver(config).send(_notification("hook"))
