"""File helpers for the CLI: JSON in with clear errors, atomic JSON out."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bastion.engine.errors import BastionError


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
    """Write to a temporary file beside `path`, fsync, then rename over it.

    A crash mid-write leaves the previous file intact, never a half-written one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, ensure_ascii=False)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
