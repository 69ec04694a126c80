"""What the service does when the reloader reports: metrics, logs, alerts, the audit trail.

`record_reload` is the `PolicyReloader`'s `on_event` callback in `bastion serve`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from bastion.engine.lint.findings import Finding
from bastion.service.alerts import AlertRaised
from bastion.service.reloader import PolicyReloaded, ReloadRejected, accept_hint, audit_record

if TYPE_CHECKING:
    from bastion.service.runner import Service

log = structlog.get_logger("bastion.service")


def record_reload(service: Service, event: PolicyReloaded | ReloadRejected) -> None:
    """The reloader's callback: metrics, logs and (when rejected, or when an officer
    accepted removing protection) an alert; critical when the guard refused.

    Every event goes to the audit trail as `reloader.audit_record(event)` (versions
    before / after, changed policies and their files, removals, principal, and the
    new set's lint warnings, each also logged as `policy_lint_warning`)."""
    metrics, reloader = service.metrics, service.reloader
    files = _policy_files(service, event.changed)
    service.auditor.reload(audit_record(event), files=files)
    if service.on_reload is not None:  # the console's RELOAD / REFUSED line
        service.on_reload(event, files)
    service.activity.reloaded(event)  # the status page's reload history
    if isinstance(event, PolicyReloaded):
        metrics.reload_succeeded(event.at, event.version, reloader.current.versions())
        log.info(
            "policy_reloaded",
            version=event.version,
            previous=event.previous_version,
            changed=list(event.changed),
            files=files,  # "Kind/name" -> its file, for the changed policies served
            took_s=round(event.took_s, 4),
            trigger=event.trigger,
            principal=event.principal,
            accepted_removals=[r.key for r in event.accepted_removals],
            warnings=len(event.warnings),
        )
        log_lint_warnings(event.warnings, event.version)
        if service.alerts is not None:  # the rejections before it: resolved
            service.alerts.resolve_kind("reload_rejected", event.at)
        if event.accepted_removals and service.alerts is not None:
            keys = [r.key for r in event.accepted_removals]
            service.alerts.raise_alert(
                AlertRaised(
                    event.at,
                    "protection_removed",
                    "warning",
                    f"{event.principal} accepted removing {len(keys)} protection(s) "
                    f"({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}); "
                    f"now serving {event.version[:19]}",
                    {"accepted_removals": keys, "principal": event.principal},
                )
            )
    elif event.refused_by_guard:
        metrics.reload_failed(event.at, event.reason)
        hint = accept_hint(event)
        log.critical(
            "reload_refused_removes_protection",
            kept_version=event.kept_version,
            removals=[r.key for r in event.removals],
            trigger=event.trigger,
            principal=event.principal,
            hint=hint,
        )
        if service.alerts is not None:
            service.alerts.raise_alert(
                AlertRaised(
                    event.at,
                    "reload_rejected",
                    "critical",
                    f"policy reload refused: it would remove {len(event.removals)} "
                    f"protection(s), first: {event.errors[0]}; still serving "
                    f"{event.kept_version[:19]}. {hint}",
                    {"removals": [r.as_dict() for r in event.removals], "hint": hint},
                )
            )
    else:
        metrics.reload_failed(event.at, event.reason)
        log.error(
            "reload_rejected",
            kept_version=event.kept_version,
            errors=list(event.errors),
            trigger=event.trigger,
        )
        if service.alerts is not None:
            first = event.errors[0] if event.errors else "unknown error"
            service.alerts.raise_alert(
                AlertRaised(
                    event.at,
                    "reload_rejected",
                    "warning",
                    f"policy reload rejected ({len(event.errors)} error(s), first: {first}); "
                    f"still serving {event.kept_version[:19]}",
                    {"errors": list(event.errors)},
                )
            )


def log_lint_warnings(warnings: Sequence[Finding], version: str) -> None:
    """One `policy_lint_warning` per warning of a set that serves (at start and at each
    reload): it loads, but a unit slip must still be seen."""
    for warning in warnings:
        log.warning(
            "policy_lint_warning",
            where=f"{warning.file}:{warning.line}:{warning.column}",
            code=warning.code,
            message=warning.message,
            policy=warning.policy,
            version=version,
        )


def _policy_files(service: Service, changed: Sequence[str]) -> dict[str, str]:
    """ "Kind/name" -> its file, for the changed policies the serving set holds (a
    removed policy's file is gone with it)."""
    sources = {
        f"{p.kind}/{p.name}": str(p.source) for p in service.reloader.current.policy_set.policies
    }
    return {name: sources[name] for name in changed if name in sources}
