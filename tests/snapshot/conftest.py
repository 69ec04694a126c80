"""Shared helpers: the shipped example snapshots, as files and as parsed JSON."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "snapshots"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))


def example_data(name: str = "calm") -> dict[str, Any]:
    """A fresh, mutable copy of an example, numbers parsed as Decimal."""
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text(), parse_float=Decimal)
    return data


@pytest.fixture
def calm() -> dict[str, Any]:
    return example_data("calm")
