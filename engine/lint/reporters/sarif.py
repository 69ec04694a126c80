"""SARIF 2.1.0, for code-scanning dashboards (validated against the OASIS schema in tests)."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bastion.engine.lint.findings import CODES
from bastion.engine.lint.runner import LintResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://bastion-risk.dev/docs/lint-codes"


def _tool_version() -> str:
    try:
        return version("bastion-risk")
    except PackageNotFoundError:  # pragma: no cover - bare checkout
        return "0+unknown"


def _uri(file: str) -> str:
    path = Path(file)
    if path.is_absolute():
        return path.as_uri()
    return path.as_posix()


def _rule(code: str) -> dict[str, Any]:
    info = CODES[code]
    return {
        "id": code,
        "name": info.title,
        "shortDescription": {"text": info.explanation},
        "help": {"text": info.fix},
        "helpUri": f"{INFORMATION_URI}#{code.lower()}",
        "defaultConfiguration": {"level": info.severity},
    }


def render(result: LintResult) -> str:
    codes = sorted({f.code for f in result.findings})
    index = {code: position for position, code in enumerate(codes)}
    results = []
    for f in result.findings:
        location: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.file)}}
        if f.line:
            location["region"] = {"startLine": f.line, "startColumn": max(f.column, 1)}
        entry: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": f.severity,
            "message": {"text": f.message},
            "locations": [{"physicalLocation": location}],
        }
        if f.path or f.policy:
            entry["properties"] = {"jsonPointer": f.path, "policy": f.policy}
        results.append(entry)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "bastion",
                        "version": _tool_version(),
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule(code) for code in codes],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
