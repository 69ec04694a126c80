"""HTTP failures of any venue SDK, turned into Bastion's three adapter errors.

=====================================  =============================================
what happened                          raised
=====================================  =============================================
401, 403                               AdapterError (fatal): names the env variables
408, 418, 425, 429                     TransientAdapterError, ``retry_after_s`` from
                                       ``Retry-After`` (seconds or an HTTP date)
5xx                                    TransientAdapterError (``Retry-After`` if sent)
other 4xx                              AdapterError (fatal): the venue's own message
timeout, connection refused / reset    TransientAdapterError
a body that is not JSON                DataError
=====================================  =============================================

Every message starts with ``where`` (venue, method and path) and is scrubbed of the
credential values, so nothing the venue echoes back can leak a key into a log.
The venue's own text is cut to :data:`MAX_VENUE_TEXT` characters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from bastion.engine.errors import AdapterError, DataError, TransientAdapterError

MAX_VENUE_TEXT = 200
TRANSIENT_4XX = frozenset({408, 418, 425, 429})


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` without any credential value in it, cut to a readable length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= MAX_VENUE_TEXT else text[: MAX_VENUE_TEXT - 1] + "…"


def venue_message(body: str) -> str:
    """The human part of an error body: ``message`` / ``msg`` when it is JSON, else the text."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return body
    if isinstance(parsed, dict):
        for key in ("message", "msg", "error"):
            if isinstance(parsed.get(key), str):
                code = parsed.get("code")
                return f"{parsed[key]} (code {code})" if code is not None else parsed[key]
    return body


def retry_after_s(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None if absent or unreadable."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def error_for_status(
    where: str,
    status: int,
    body: str,
    headers: Mapping[str, str],
    *,
    credential_hint: str,
    secrets: Iterable[str],
    now: datetime,
    meaning_403: str = "forbidden",
) -> AdapterError:
    """The typed error for a non-2xx answer (see the module table)."""
    said = scrub(venue_message(body), secrets)
    if status in (401, 403):
        meaning = "unauthorized" if status == 401 else meaning_403
        return AdapterError(
            f"{where}: HTTP {status} {meaning}: {said}. This is fatal: {credential_hint}, "
            "then restart"
        )
    if status in TRANSIENT_4XX or status >= 500:
        wait_s = retry_after_s(headers, now)
        after = f"; retry after {wait_s:g} s" if wait_s is not None else ""
        return TransientAdapterError(f"{where}: HTTP {status}: {said}{after}", retry_after_s=wait_s)
    return AdapterError(f"{where}: HTTP {status}: {said}")


def error_for_transport(
    where: str, error: requests.RequestException, timeout_s: float
) -> AdapterError | DataError:
    """The typed error for a request that got no HTTP answer, or no readable one."""
    if isinstance(error, requests.JSONDecodeError):
        return DataError(f"{where}: the venue answered with a body that is not JSON")
    if isinstance(error, requests.Timeout):
        return TransientAdapterError(f"{where}: no answer within {timeout_s:g} s (timeout)")
    if isinstance(error, requests.ConnectionError):
        return TransientAdapterError(f"{where}: connection failed ({type(error).__name__})")
    return AdapterError(f"{where}: request failed ({type(error).__name__})")


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout unless the caller set one."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return super().send(
            request,
            stream=stream,
            timeout=self._timeout_s if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=dict(proxies) if proxies is not None else None,
        )


def install_timeout(session: requests.Session, timeout_s: float) -> None:
    """Bound every request ``session`` makes (requests' own default is to wait forever)."""
    for prefix in ("http://", "https://"):
        session.mount(prefix, _TimeoutAdapter(timeout_s))
