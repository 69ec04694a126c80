"""Lint the --alerts file: the schema (schemas/alerts.schema.json), then what a schema
cannot say. Every finding is file:line:col with a stable code (`bastion lint --explain`):

- BST801 a route names a receiver that is not defined (did you mean ...?);
- BST802 a secret written in clear (password:, secret:, a Slack URL, credentials in a
  URL or a header) instead of an environment variable named by `*_env`;
- BST803 two receivers with the same name;
- BST804 (warning) a route whose repeat_interval_s is shorter than its group_wait_s;
- BST805 (warning) a receiver no route uses;
- BST806 (warning) a route matches a severity or kind that no alert has.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from bastion.engine.errors import PolicyError
from bastion.engine.lint.findings import CODES, Finding, did_you_mean
from bastion.engine.lint.runner import LintResult
from bastion.engine.lint.schema_check import _deepest, _translate
from bastion.engine.policy.loader import declares_kind, discover
from bastion.engine.policy.yamlsource import SourceDocument, load_documents, read_text
from bastion.service.alerting.model import SEVERITIES
from bastion.service.alerting.schema import ALERT_KIND, ALERTS_SCHEMA

# Alert kinds the service raises (service.alerts and its callers).
ALERT_KINDS = (
    "breaker_tripped",
    "evaluation_failed",
    "history_locked",
    "order_sent_denied",
    "persist_failed",
    "position_unevaluable",
    "protection_removed",
    "reload_rejected",
)
_SECRET_KEYS = frozenset({"secret", "password", "username", "token", "api_key", "auth_token"})
_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "cookie"})
_URL_CREDENTIALS = re.compile(r"^https?://[^/@\s]+:[^/@\s]*@")


def is_alert_file(path: str | Path) -> bool:
    """Whether a YAML file is an AlertPolicy."""
    return declares_kind(path, ALERT_KIND)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(ALERTS_SCHEMA)


def lint_alert_file(path: Path) -> tuple[list[dict[str, Any]], list[Finding]]:
    """The file's AlertPolicy documents and every finding about them."""
    try:
        documents = load_documents(read_text(path), str(path))
    except PolicyError as error:
        code = error.code if error.code in CODES else "BST007"
        return [], [Finding(error.file, error.line, error.column, code, "error", error.message)]
    findings: list[Finding] = []
    good: list[dict[str, Any]] = []
    for document in documents:
        found = lint_alert_document(document)
        findings.extend(found)
        if not any(f.severity == "error" for f in found):
            good.append(document.data)
    return good, sorted(set(findings))


def lint_alert_document(document: SourceDocument) -> list[Finding]:
    data = document.data
    name = _name(data)
    secrets = list(_secrets(document, name))
    secret_places = {f.path for f in secrets}
    schema = [
        finding
        for error in _validator().iter_errors(data)
        for finding in _translate(_deepest(error), document.positions, document.file, name)
        if finding.path not in secret_places
    ]
    references = _references(document, name)  # readable even when the shape is not
    if schema:  # the rest of the meaning of a malformed document is guesswork
        return secrets + schema + references
    return secrets + references + _meaning(document, name)


def _references(document: SourceDocument, name: str) -> list[Finding]:
    """BST801: a route naming a receiver that is not defined."""
    spec = document.data.get("spec") if isinstance(document.data, dict) else None
    routes = spec.get("routes") if isinstance(spec, dict) else None
    names = [
        r["name"]
        for r in _receivers(document.data)
        if isinstance(r, dict) and isinstance(r.get("name"), str)
    ]
    findings = []
    for index, route in enumerate(routes if isinstance(routes, list) else []):
        listed = route.get("receivers") if isinstance(route, dict) else None
        for position, receiver_name in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(receiver_name, str) and receiver_name not in names:
                findings.append(
                    _finding(
                        document,
                        f"/spec/routes/{index}/receivers/{position}",
                        "BST801",
                        f"routes[{index}] names receiver {receiver_name!r}, which is not defined"
                        f"{did_you_mean(receiver_name, names)}; define it under spec.receivers "
                        "or fix the name",
                        name,
                    )
                )
    return findings


def _name(data: Any) -> str:
    metadata = data.get("metadata") if isinstance(data, dict) else None
    value = metadata.get("name") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else ""


def _finding(
    document: SourceDocument, pointer: str, code: str, message: str, name: str, key: bool = False
) -> Finding:
    at = document.locate(pointer, key=key)
    return Finding(
        document.file, at.line, at.column, code, CODES[code].severity, message, pointer, name
    )


def _receivers(data: Any) -> list[Any]:
    spec = data.get("spec") if isinstance(data, dict) else None
    receivers = spec.get("receivers") if isinstance(spec, dict) else None
    return receivers if isinstance(receivers, list) else []


def _secrets(document: SourceDocument, name: str) -> list[Finding]:
    found = []
    for index, receiver in enumerate(_receivers(document.data)):
        if not isinstance(receiver, dict):
            continue
        base = f"/spec/receivers/{index}"
        for key, value in receiver.items():
            if key in _SECRET_KEYS:
                found.append(
                    _finding(
                        document,
                        f"{base}/{key}",
                        "BST802",
                        f"receiver {receiver.get('name')!r}: {key} is written in clear; write "
                        f"`{key}_env: VARIABLE` and export VARIABLE where bastion serve runs",
                        name,
                        key=True,
                    )
                )
            elif key == "url" and isinstance(value, str):
                found.extend(_url_secret(document, f"{base}/url", receiver, value, name))
            elif key == "headers" and isinstance(value, dict):
                found.extend(
                    _finding(
                        document,
                        f"{base}/headers/{header}",
                        "BST802",
                        f"receiver {receiver.get('name')!r}: header {header} carries a "
                        "credential in clear; sign with `secret_env:` instead",
                        name,
                        key=True,
                    )
                    for header in value
                    if str(header).lower() in _CREDENTIAL_HEADERS
                )
    return found


def _url_secret(
    document: SourceDocument, pointer: str, receiver: dict[str, Any], url: str, name: str
) -> list[Finding]:
    label = f"receiver {receiver.get('name')!r}"
    if _URL_CREDENTIALS.match(url):
        why = "the URL carries a user and password"
    elif receiver.get("type") == "slack" and "hooks.slack.com" in url:
        why = "a Slack webhook URL is a credential (anyone holding it can post)"
    else:
        return []
    return [
        _finding(
            document,
            pointer,
            "BST802",
            f"{label}: {why}; write `url_env: VARIABLE` and export VARIABLE",
            name,
        )
    ]


def _meaning(document: SourceDocument, name: str) -> list[Finding]:
    spec = document.data["spec"]
    findings: list[Finding] = []
    names: dict[str, int] = {}
    for index, receiver in enumerate(spec["receivers"]):
        if receiver["name"] in names:
            findings.append(
                _finding(
                    document,
                    f"/spec/receivers/{index}/name",
                    "BST803",
                    f"receiver {receiver['name']!r} is defined twice (first as receivers"
                    f"[{names[receiver['name']]}]); rename one",
                    name,
                )
            )
        else:
            names[receiver["name"]] = index
        if receiver["type"] in ("webhook", "slack", "alertmanager") and not (
            "url" in receiver or "url_env" in receiver
        ):
            findings.append(
                _finding(
                    document,
                    f"/spec/receivers/{index}",
                    "BST010",
                    f'"url" or "url_env" is required in receiver {receiver["name"]!r}',
                    name,
                    key=True,
                )
            )
    used: set[str] = set()
    for index, route in enumerate(spec["routes"]):
        base = f"/spec/routes/{index}"
        used.update(route["receivers"])
        findings.extend(_match_values(document, base, route.get("match", {}), name))
        findings.extend(_timing(document, base, route, name))
    findings.extend(
        _finding(
            document,
            f"/spec/receivers/{index}/name",
            "BST805",
            f"receiver {receiver_name!r} is not used by any route; route something "
            "to it or remove it",
            name,
        )
        for receiver_name, index in names.items()
        if receiver_name not in used
    )
    return findings


def _match_values(
    document: SourceDocument, base: str, match: dict[str, Any], name: str
) -> list[Finding]:
    found = []
    for label, known in (("severity", SEVERITIES), ("kind", ALERT_KINDS)):
        for position, value in enumerate(match.get(label, [])):
            if value not in known and not any(ch in value for ch in "*?["):
                found.append(
                    _finding(
                        document,
                        f"{base}/match/{label}/{position}",
                        "BST806",
                        f"no alert has {label} {value!r}{did_you_mean(value, known)}; known: "
                        f"{', '.join(known)}",
                        name,
                    )
                )
    return found


def _timing(document: SourceDocument, base: str, route: dict[str, Any], name: str) -> list[Finding]:
    """A route that would repeat its groups before their first message."""
    wait = float(route.get("group_wait_s", 0))
    repeat = route.get("repeat_interval_s")
    if repeat is not None and float(repeat) < wait:
        return [
            _finding(
                document,
                f"{base}/repeat_interval_s",
                "BST804",
                f"repeat_interval_s {repeat} is shorter than group_wait_s {wait:g}: every group "
                "would repeat before its first message; make it longer",
                name,
            )
        ]
    return []


def with_alert_files(result: LintResult, paths: Sequence[str | Path]) -> LintResult:
    """`bastion lint`'s result with the AlertPolicy files under `paths` linted too (the
    policy loader passes them by): their files counted, their findings merged in order."""
    files = [path for path in discover(paths) if is_alert_file(path)]
    if not files:
        return result
    found = [finding for path in files for finding in lint_alert_file(path)[1]]
    return replace(
        result,
        files=result.files + len(files),
        findings=tuple(sorted({*result.findings, *found})),
    )
