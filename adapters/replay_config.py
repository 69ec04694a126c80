"""The replay feed's --config file (kind: ReplayFeed): its schema and its lint.

`bastion serve --adapter replay --config FILE` reads three settings (README "Feeds"):
`bars` (one OHLCV CSV per symbol), `positions` (the book, adapters/replay_book.py) and
`regime`. The file may declare `apiVersion: bastion/v1` and `kind: ReplayFeed`; with
them, `bastion lint` checks it like a policy, file:line:col:

- the schema (schemas/replay.schema.json): a misspelt key, a bars map that is empty or
  not SYMBOL: file, a regime severity that does not exist;
- BST807: a bars or positions file that does not exist (paths are relative to the
  directory bastion runs from), which `serve` would only find at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from bastion.engine.errors import PolicyError
from bastion.engine.lint.findings import CODES, Finding
from bastion.engine.lint.runner import LintResult
from bastion.engine.lint.schema_check import _deepest, _translate
from bastion.engine.policy.loader import declares_kind, discover
from bastion.engine.policy.vocabulary import REGIME_SEVERITIES
from bastion.engine.policy.yamlsource import (
    SourceDocument,
    load_documents,
    pointer_join,
    read_text,
)

REPLAY_KIND = "ReplayFeed"
API_VERSION = "bastion/v1"

REPLAY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://bastion-risk.dev/schemas/replay.schema.json",
    "title": f"Bastion {REPLAY_KIND}",
    "description": 'The --config file of `bastion serve --adapter replay` (README "Feeds").',
    "type": "object",
    "additionalProperties": False,
    "required": ["bars"],
    "properties": {
        "apiVersion": {"const": API_VERSION, "description": "Always bastion/v1."},
        "kind": {"const": REPLAY_KIND, "description": "Marks the file for `bastion lint`."},
        "bars": {
            "type": "object",
            "description": "One OHLCV CSV per symbol (any layout `bastion atr` reads).",
            "minProperties": 1,
            "additionalProperties": {"type": "string", "minLength": 1},
        },
        "positions": {
            "type": "string",
            "minLength": 1,
            "description": "Accounts and positions (JSON); default: one account, no positions.",
        },
        "regime": {
            "type": "object",
            "description": "The regime every replayed snapshot carries.",
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "severity": {"enum": list(REGIME_SEVERITIES)},
            },
        },
    },
}


def is_replay_file(path: str | Path) -> bool:
    """Whether a YAML file declares kind: ReplayFeed."""
    return declares_kind(path, REPLAY_KIND)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(REPLAY_SCHEMA)


def lint_replay_file(path: Path, *, base: Path | None = None) -> list[Finding]:
    """Every finding about the ReplayFeed file at `path`; file paths in it are resolved
    against `base` (default: the current directory, as `serve` resolves them)."""
    try:
        documents = load_documents(read_text(path), str(path))
    except PolicyError as error:
        code = error.code if error.code in CODES else "BST007"
        return [Finding(error.file, error.line, error.column, code, "error", error.message)]
    found: list[Finding] = []
    for document in documents:
        found.extend(lint_replay_document(document, base or Path.cwd()))
    return sorted(set(found))


def lint_replay_document(document: SourceDocument, base: Path) -> list[Finding]:
    data = document.data
    schema = [
        finding
        for error in _validator().iter_errors(data)
        for finding in _translate(_deepest(error), document.positions, document.file, REPLAY_KIND)
    ]
    if schema or not isinstance(data, dict):
        return schema
    wanted = [(pointer_join("/bars", symbol), name) for symbol, name in data["bars"].items()]
    if "positions" in data:
        wanted.append(("/positions", data["positions"]))
    return [
        _missing(document, pointer, name, base)
        for pointer, name in wanted
        if not (base / name).is_file()
    ]


def _missing(document: SourceDocument, pointer: str, name: str, base: Path) -> Finding:
    where = document.locate(pointer)
    return Finding(
        document.file,
        where.line,
        where.column,
        "BST807",
        "error",
        f"{pointer.lstrip('/').replace('/', '.')}: no file {name!r} (looked in {base}); "
        "paths are relative to the directory bastion runs from",
        pointer,
        REPLAY_KIND,
    )


def with_replay_files(result: LintResult, paths: Sequence[str | Path]) -> LintResult:
    """`bastion lint`'s result with the ReplayFeed files under `paths` linted too (the
    policy loader passes them by): their files counted, their findings merged in order."""
    files = [path for path in discover(paths) if is_replay_file(path)]
    if not files:
        return result
    found = [finding for path in files for finding in lint_replay_file(Path(path))]
    return replace(
        result,
        files=result.files + len(files),
        findings=tuple(sorted({*result.findings, *found})),
    )


def check_replay_settings(settings: dict[str, Any], source: str = "replay config") -> None:
    """Drop the optional apiVersion / kind of `settings`, refusing a wrong one."""
    for key, want in (("apiVersion", API_VERSION), ("kind", REPLAY_KIND)):
        value = settings.pop(key, want)
        if value != want:
            raise ValueError(f"{source}: {key} is {value!r}; a replay config has {key}: {want}")
