"""What the HTTP tests share: one real request over loopback, and clean structlog."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any

import pytest
import structlog


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str,
    *,
    body: bytes | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request with urllib; an HTTP error status is a Reply too."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """structlog's defaults (no level filter), whatever another test configured."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
