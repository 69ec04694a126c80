"""The email receiver against a real SMTP server (aiosmtpd) on loopback that requires
STARTTLS (a self-signed certificate made here with openssl) and AUTH: the message
arrives with a subject naming the breaker and the account, and credentials come from
the environment through the --alerts file's *_env names."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest

from bastion.service.alerting.config import build_policy
from bastion.service.alerting.grouping import Grouper
from bastion.service.alerting.model import labelled
from bastion.service.alerting.receivers import DeliveryFailed, build_receiver
from tests.service.alerting.support import trip

aiosmtpd = pytest.importorskip("aiosmtpd", reason="needs aiosmtpd (pip install -e '.[dev]')")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
USER, PASSWORD = "bastion", "s3cret-from-env"


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, valid one day."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def smtp(certificate: tuple[Path, Path]) -> Iterator[tuple[_Inbox, int]]:
    """aiosmtpd on 127.0.0.1: STARTTLS required before anything, AUTH required."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    inbox = _Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _email_policy(port: int, cert: Path, environ: dict[str, str]) -> Any:
    document = {
        "apiVersion": "bastion/v1",
        "kind": "AlertPolicy",
        "metadata": {"name": "mail"},
        "spec": {
            "receivers": [
                {
                    "name": "risk-email",
                    "type": "email",
                    "host": "127.0.0.1",
                    "port": port,
                    "ca_file": str(cert),
                    "from": "bastion@example.test",
                    "to": ["risk@example.test", "oncall@example.test"],
                    "username_env": "TEST_SMTP_USER",
                    "password_env": "TEST_SMTP_PASSWORD",
                    "timeout_s": 5,
                }
            ],
            "routes": [{"receivers": ["risk-email"]}],
        },
    }
    return build_policy(document, "alerts.yaml", environ)


def _notification(policy: Any) -> Any:
    grouper = Grouper(policy, {})
    grouper.add(labelled(trip(breaker="daily_loss_usd", account="gen-01")), 0.0)
    (notification,) = grouper.due(100.0)
    return notification


def test_email_when_sent_then_arrives_over_starttls_with_breaker_and_account_in_subject(
    smtp: tuple[_Inbox, int], certificate: tuple[Path, Path]
) -> None:
    """STARTTLS, AUTH with the env credentials, one message to every recipient; the
    subject names the breaker and the account."""
    inbox, port = smtp
    environ = {"TEST_SMTP_USER": USER, "TEST_SMTP_PASSWORD": PASSWORD}
    policy = _email_policy(port, certificate[0], environ)
    build_receiver(policy.receivers[0]).send(_notification(policy))
    ((sender, recipients, content),) = inbox.messages
    message = message_from_bytes(content, policy=email_policy.default)
    assert sender == "bastion@example.test"
    assert recipients == ["risk@example.test", "oncall@example.test"]
    subject = str(message["Subject"])
    assert "daily_loss_usd" in subject and "account:gen-01" in subject
    assert subject.startswith("Bastion [FIRING:1 critical]")
    assert "FIRING breaker_tripped daily_loss_usd on account:gen-01" in message.get_content()


def test_email_when_password_wrong_then_delivery_failed_without_retry(
    smtp: tuple[_Inbox, int], certificate: tuple[Path, Path]
) -> None:
    """A refused login is a failure that a retry will not fix; nothing is delivered."""
    inbox, port = smtp
    environ = {"TEST_SMTP_USER": USER, "TEST_SMTP_PASSWORD": "wrong"}
    policy = _email_policy(port, certificate[0], environ)
    with pytest.raises(DeliveryFailed) as failed:
        build_receiver(policy.receivers[0]).send(_notification(policy))
    assert failed.value.retry is False and "535" in str(failed.value)
    assert inbox.messages == []


def test_email_when_server_certificate_untrusted_then_delivery_failed(
    smtp: tuple[_Inbox, int], certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """STARTTLS verifies the server: a certificate the CA bundle does not hold fails
    before any credential is sent."""
    inbox, port = smtp
    other = tmp_path / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=other", "-keyout", str(tmp_path / "k.pem"), "-out", str(other)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    environ = {"TEST_SMTP_USER": USER, "TEST_SMTP_PASSWORD": PASSWORD}
    policy = _email_policy(port, other, environ)
    with pytest.raises(DeliveryFailed, match="CERTIFICATE_VERIFY_FAILED"):
        build_receiver(policy.receivers[0]).send(_notification(policy))
    assert inbox.messages == []
