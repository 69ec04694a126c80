"""Status codes and transport failures to typed errors; Retry-After; scrubbing secrets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from bastion.adapters.http_errors import (
    MAX_VENUE_TEXT,
    error_for_status,
    error_for_transport,
    retry_after_s,
    scrub,
)
from bastion.engine.errors import AdapterError, DataError, TransientAdapterError

NOW = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def status_error(
    status: int, body: str = "{}", headers: dict[str, str] | None = None
) -> AdapterError:
    return error_for_status(
        "venue GET /x",
        status,
        body,
        headers or {},
        credential_hint="check KEY_VAR and SECRET_VAR",
        secrets=("sekrit-key", "sekrit-secret"),
        now=NOW,
    )


@pytest.mark.parametrize(
    ("status", "transient"),
    [(400, False), (401, False), (403, False), (404, False), (408, True), (418, True),
     (422, False), (429, True), (499, False), (500, True), (502, True), (503, True), (504, True)],
)  # fmt: skip
def test_error_for_status_when_status_then_fatal_or_transient(status: int, transient: bool) -> None:
    """401/403 and other 4xx are fatal; 408/418/425/429 and every 5xx are transient."""
    error = status_error(status)
    assert isinstance(error, TransientAdapterError) is transient
    assert f"HTTP {status}" in str(error)


@pytest.mark.parametrize("status", [401, 403])
def test_error_for_status_when_auth_refused_then_message_names_the_fix(status: int) -> None:
    """A credential failure says it is fatal and names the variables to check."""
    assert "fatal: check KEY_VAR and SECRET_VAR" in str(status_error(status))


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0", 0.0), ("1.5", 1.5), ("-4", 0.0), ("Tue, 02 Jan 2024 14:30:30 GMT", 30.0),
     ("Tue, 02 Jan 2024 14:29:00 GMT", 0.0), ("soon", None)],
)  # fmt: skip
def test_retry_after_when_header_given_then_seconds_to_wait(
    header: str, expected: float | None
) -> None:
    """Retry-After is read as seconds or as an HTTP date against now; junk is ignored."""
    assert retry_after_s({"Retry-After": header}, NOW) == expected


def test_retry_after_when_header_absent_then_none() -> None:
    """No header, no venue-imposed wait."""
    assert retry_after_s({}, NOW) is None


def test_error_for_status_when_429_with_retry_after_then_carried() -> None:
    """The 429's Retry-After ends up on the TransientAdapterError."""
    error = status_error(429, headers={"Retry-After": "7"})
    assert isinstance(error, TransientAdapterError) and error.retry_after_s == 7.0


def test_error_for_status_when_body_echoes_secrets_then_scrubbed() -> None:
    """Whatever the venue echoes back, the key and secret never reach the message."""
    error = status_error(401, '{"message": "bad key sekrit-key / sekrit-secret", "code": 1}')
    assert "sekrit" not in str(error) and "bad key *** / ***" in str(error)


def test_scrub_when_text_long_then_cut_to_limit() -> None:
    """A venue's HTML error page is cut to a readable length."""
    assert len(scrub("x" * 1000, ())) == MAX_VENUE_TEXT


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (requests.ReadTimeout(), TransientAdapterError),
        (requests.ConnectTimeout(), TransientAdapterError),
        (requests.ConnectionError(), TransientAdapterError),
        (requests.JSONDecodeError("x", "doc", 0), DataError),
        (requests.TooManyRedirects(), AdapterError),
    ],
)
def test_error_for_transport_when_no_answer_then_typed(
    error: requests.RequestException, expected: type[Exception]
) -> None:
    """Timeouts and refused connections are transient; a non-JSON body is a DataError."""
    assert type(error_for_transport("venue GET /x", error, 2.0)) is expected
