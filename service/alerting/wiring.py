"""`bastion serve --alerts FILE`: the service's alert fan-out with delivery beside the
log sink, sharing one set of silences (wall time: an operator's "until 06:00" is real
time, even when the sim runs at 60x)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import structlog

from bastion.service.alerting.config import load_alert_policy
from bastion.service.alerting.dispatcher import AlertDispatcher
from bastion.service.alerting.silences import Silences
from bastion.service.alerts import Alerts, LogAlerts
from bastion.service.metrics import ServiceMetrics

log = structlog.get_logger("bastion.alerts")


def open_alerts(
    path: str | Path | None,
    metrics: ServiceMetrics,
    now: Callable[[], datetime],
    environ: Mapping[str, str],
) -> tuple[Alerts, AlertDispatcher | None]:
    """The fan-out, and the dispatcher to start (None without --alerts). AlertConfigError
    (exit 2) when the file does not lint clean or names an unset variable."""
    silences = Silences(now)
    if path is None:
        return Alerts([LogAlerts()], metrics.registry, silences), None
    policy = load_alert_policy(path, environ)
    dispatcher = AlertDispatcher(policy, metrics, silences)
    log.info(
        "alerts_configured",
        source=str(path),
        policy=policy.name,
        receivers={r.name: r.type for r in policy.receivers},
    )
    return Alerts([LogAlerts(), dispatcher], metrics.registry, silences), dispatcher
