"""Fixtures of the service tests that start real `bastion serve` processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service.test_persist_serve import DEADLINE_S, Running


@pytest.fixture
def cleanup() -> Iterator[list[Running]]:
    """Every process a test starts is gone after it."""
    started: list[Running] = []
    yield started
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=DEADLINE_S)
