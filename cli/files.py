"""File helpers for the CLI: JSON in with clear errors, atomic JSON out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bastion.engine.errors import BastionError
from bastion.service.state_store import write_durably


def read_json(path: str | Path, what: str) -> Any:
    """Parsed JSON, or a BastionError naming the file, line and column."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise BastionError(f"{path}: cannot read {what}: {error.strerror or error}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BastionError(
            f"{path}:{error.lineno}:{error.colno}: {what} is not valid JSON: {error.msg}"
        ) from error


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it
    (`state_store.write_durably`): a crash mid-write leaves the previous file intact,
    never a half-written one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    write_durably(target, text.encode("utf-8"))
