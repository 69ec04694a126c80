"""The --alerts file (kind: AlertPolicy) as frozen objects: receivers, routes, timing.

`load_alert_policy(path, environ)` lints the file (service.alerting.lint: schema and
meaning, file:line:col) and refuses it with every error (`AlertConfigError`, exit 2 at
start); then every `*_env` variable a receiver names must be set (the error names the
variable and the receiver). Secrets are read once, here, and never logged.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.engine.errors import UsageError
from bastion.engine.lint.findings import Finding
from bastion.service.alerting.lint import lint_alert_file
from bastion.service.alerting.model import LabelledAlert

DEFAULT_GROUP_BY = ("kind", "breaker", "account")
URGENT = frozenset({"critical", "emergency"})


class AlertConfigError(UsageError):
    """The --alerts file is invalid (findings attached) or names an unset variable."""

    def __init__(self, message: str, findings: tuple[Finding, ...] = ()) -> None:
        super().__init__(message)
        self.findings = findings


@dataclass(frozen=True, slots=True)
class Timing:
    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 4 * 3600.0
    critical_group_wait_s: float = 1.0

    def first_wait_s(self, severity: str) -> float:
        """A critical or emergency group's first message waits critical_group_wait_s at
        most: critical alerts reach people within 5 s of the decision."""
        if severity in URGENT:
            return min(self.group_wait_s, self.critical_group_wait_s)
        return self.group_wait_s


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)  # secrets resolved from env
    timeout_s: float = 5.0
    retries: int = 3
    backoff_s: float = 0.5
    max_per_minute: int = 60


@dataclass(frozen=True, slots=True)
class Match:
    """Every field given must match; an empty one matches all."""

    severity: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()
    account: tuple[str, ...] = ()
    breaker: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        for name in ("severity", "kind", "account", "breaker"):
            patterns: tuple[str, ...] = getattr(self, name)
            if patterns and not any(fnmatch.fnmatchcase(labels.get(name, ""), p) for p in patterns):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Route:
    index: int
    match: Match
    receivers: tuple[str, ...]
    group_by: tuple[str, ...]
    timing: Timing
    continue_: bool = False

    def group_labels(self, alert: LabelledAlert) -> dict[str, str]:
        return {name: alert.labels.get(name, "") for name in self.group_by}


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    name: str
    source: str
    receivers: tuple[ReceiverConfig, ...]
    routes: tuple[Route, ...]
    defaults: Timing = field(default_factory=Timing)
    queue_size: int = 10_000

    def routes_for(self, alert: LabelledAlert) -> list[Route]:
        """The routes that take the alert: the first match, and the next ones while
        the matching route says `continue: true`."""
        taken = []
        for route in self.routes:
            if route.match.matches(alert.labels):
                taken.append(route)
                if not route.continue_:
                    break
        return taken


_SECRET_OPTIONS = {
    "url_env": "url",
    "secret_env": "secret",
    "username_env": "username",
    "password_env": "password",
}


def build_policy(data: Mapping[str, Any], source: str, environ: Mapping[str, str]) -> AlertPolicy:
    """The policy from a document that linted clean; AlertConfigError for an unset
    variable."""
    spec = data["spec"]
    raw_defaults = spec.get("defaults", {})
    base = Timing()
    defaults = Timing(
        float(raw_defaults.get("group_wait_s", base.group_wait_s)),
        float(raw_defaults.get("group_interval_s", base.group_interval_s)),
        float(raw_defaults.get("repeat_interval_s", base.repeat_interval_s)),
        float(raw_defaults.get("critical_group_wait_s", base.critical_group_wait_s)),
    )
    receivers = tuple(_receiver(raw, source, environ) for raw in spec["receivers"])
    routes = tuple(_route(index, raw, defaults) for index, raw in enumerate(spec["routes"]))
    return AlertPolicy(
        str(data["metadata"]["name"]),
        source,
        receivers,
        routes,
        defaults,
        int(spec.get("queue_size", 10_000)),
    )


def _receiver(raw: Mapping[str, Any], source: str, environ: Mapping[str, str]) -> ReceiverConfig:
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("name", "type", "timeout_s", "retries", "backoff_s", "max_per_minute"):
            continue
        if key in _SECRET_OPTIONS:
            if value not in environ or not environ[value]:
                raise AlertConfigError(
                    f"{source}: receiver {raw['name']!r}: {key}: the environment variable "
                    f"{value} is not set; export it before `bastion serve --alerts`"
                )
            options[_SECRET_OPTIONS[key]] = environ[value]
        else:
            options[key] = value
    if raw["type"] in ("webhook", "slack", "alertmanager") and "url" not in options:
        raise AlertConfigError(f"{source}: receiver {raw['name']!r} needs url or url_env")
    return ReceiverConfig(
        str(raw["name"]),
        str(raw["type"]),
        options,
        float(raw.get("timeout_s", 5.0)),
        int(raw.get("retries", 3)),
        float(raw.get("backoff_s", 0.5)),
        int(raw.get("max_per_minute", 60)),
    )


def _route(index: int, raw: Mapping[str, Any], defaults: Timing) -> Route:
    match = raw.get("match", {})
    timing = Timing(
        float(raw.get("group_wait_s", defaults.group_wait_s)),
        float(raw.get("group_interval_s", defaults.group_interval_s)),
        float(raw.get("repeat_interval_s", defaults.repeat_interval_s)),
        defaults.critical_group_wait_s,
    )
    return Route(
        index,
        Match(*(tuple(match.get(n, ())) for n in ("severity", "kind", "account", "breaker"))),
        tuple(raw["receivers"]),
        tuple(raw.get("group_by", DEFAULT_GROUP_BY)),
        timing,
        bool(raw.get("continue", False)),
    )


def load_alert_policy(path: str | Path, environ: Mapping[str, str]) -> AlertPolicy:
    """Lint, then build; AlertConfigError (exit 2) with the errors, file:line:col."""
    documents, findings = lint_alert_file(Path(path))
    errors = tuple(f for f in findings if f.severity == "error")
    if errors:
        shown = "\n".join(f"  {f.file}:{f.line}:{f.column}: {f.code} {f.message}" for f in errors)
        raise AlertConfigError(
            f"{path}: {len(errors)} error(s); `bastion lint {path}` shows them:\n{shown}", errors
        )
    if len(documents) != 1:
        raise AlertConfigError(f"{path}: one AlertPolicy document expected, found {len(documents)}")
    return build_policy(documents[0], str(path), environ)
