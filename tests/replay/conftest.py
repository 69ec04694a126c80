"""Shared pieces of the replay tests: the example history and a candidate set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import POLICIES, ROOT

CRASH = ROOT / "examples" / "replay" / "crash"
# The proposed `com` overlay of README "Reviewing a change": daily_loss_pct 3 -> 4,
# drawdown 10 -> 8.
COM_CHANGE = ROOT / "docs" / "examples" / "policy-change" / "com-accounts.yaml"


@pytest.fixture
def candidate(tmp_path: Path) -> Path:
    """A copy of the shipped policies with the proposed `com` overlay."""
    folder = tmp_path / "candidate"
    shutil.copytree(POLICIES, folder)
    shutil.copy(COM_CHANGE, folder / "com-accounts.yaml")
    return folder
