"""What every receiver is, and the one HTTP POST the HTTP-based ones share."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

from bastion.service.alerting.model import Notification

USER_AGENT = "bastion-alerts/1"


class DeliveryFailed(Exception):
    """One attempt failed; `retry` says whether another attempt may work (a 4xx other
    than 408/429 will not: the message itself is refused)."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Receiver(Protocol):
    name: str
    # How often a group still firing is sent again at most (Alertmanager forgets an
    # alert not re-posted within its resolve_timeout); None: the route's repeat.
    repeat_cap_s: float | None

    def send(self, notification: Notification) -> None: ...


def post_json(
    url: str,
    payload: Any,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> int:
    """POST JSON; the status (2xx), or DeliveryFailed with what the server said."""
    data = body if body is not None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status: int = response.status
            response.read(65536)
            return status
    except urllib.error.HTTPError as error:
        text = error.read(500).decode("utf-8", errors="replace")
        retry = error.code >= 500 or error.code in (408, 429)
        raise DeliveryFailed(f"HTTP {error.code} from {_host(url)}: {text}", retry=retry) from None
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryFailed(f"{_host(url)}: {reason}") from None


def _host(url: str) -> str:
    """The URL without its path and query (which may hold a token): for messages."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].rsplit('@', 1)[-1]}"
