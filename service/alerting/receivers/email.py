"""email: one message per notification through an SMTP server, STARTTLS by default
(the server's certificate verified: the system's CAs, or ca_file), then AUTH with the
username_env / password_env credentials when given. The subject is the notification's
title: status, count, severity, kind, breaker and where (account or subject)."""

from __future__ import annotations

import smtplib
import ssl
from email import policy as email_policy
from email.message import EmailMessage

from bastion.service.alerting.config import ReceiverConfig
from bastion.service.alerting.model import Notification
from bastion.service.alerting.receivers.base import DeliveryFailed

# Headers up to RFC 5322's 998 characters: a subject is never folded before its first word.
_POLICY = email_policy.SMTP.clone(max_line_length=998)


def email_message(notification: Notification, sender: str, to: list[str]) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = "Bastion " + notification.subject_line()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message.set_content(notification.text(limit=100))
    return message


class EmailReceiver:
    repeat_cap_s: float | None = None

    def __init__(self, config: ReceiverConfig) -> None:
        options = config.options
        self.name = config.name
        self.host = str(options["host"])
        self.port = int(options.get("port", 587))
        self.starttls = bool(options.get("starttls", True))
        self.ca_file = options.get("ca_file")
        self.sender = str(options["from"])
        self.to = [str(address) for address in options["to"]]
        self.username = options.get("username")
        self.password = options.get("password")
        self.timeout_s = config.timeout_s

    def send(self, notification: Notification) -> None:
        message = email_message(notification, self.sender, self.to)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                smtp.ehlo()
                if self.starttls:
                    context = ssl.create_default_context(cafile=self.ca_file)
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if self.username:
                    smtp.login(str(self.username), str(self.password or ""))
                smtp.send_message(message)
        except smtplib.SMTPResponseException as error:
            retry = error.smtp_code >= 400 and error.smtp_code < 500
            raise DeliveryFailed(
                f"SMTP {self.host}:{self.port}: {error.smtp_code} {error.smtp_error!r}",
                retry=retry,
            ) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
            raise DeliveryFailed(f"SMTP {self.host}:{self.port}: {error}") from None
