"""What the status page shows, as JSON: GET /api/v1/overview (viewer), and the last
cycle's snapshot, GET /api/v1/snapshot (viewer).

`overview` reads the live service (state, last snapshot, policy set, queued resets)
and its recent past (`Activity`): accounts with their trading state, the breakers not
armed with the value they tripped at, their threshold, since when and their cooldown,
the escalated positions by level with the breach in ATR (and the manual escalations in
force, with the levels each position may be held at), the recent decisions (each
with its policy version and the command that finds its audit record), the reload
history, the recent alerts, and what the caller may do (`may`: the buttons the page
shows). Every text is the data's own: the page escapes it (it never builds HTML from
it), and the JSON encoder escapes nothing a browser would run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bastion.engine.decision import Decision
from bastion.engine.evaluation.breakers import describe
from bastion.engine.evaluation.facts import position_metrics
from bastion.engine.policy.kinds.breakers import Breaker
from bastion.engine.snapshot import Market, Position
from bastion.engine.state import BreakerState, State
from bastion.service import escalations
from bastion.service.alerting.model import labels_of
from bastion.service.alerts import AlertRaised, AlertResolved
from bastion.service.auth import LOCAL, Principal, Role

if TYPE_CHECKING:
    from bastion.service.runner import Service

_CENT = Decimal("0.01")
SHOWN_DECISIONS = 30
SHOWN_ALERTS = 30
# Who may press what: the least role of the endpoint each button calls (http_app).
BUTTONS = {"reset": Role.OPERATOR, "silence": Role.OPERATOR, "escalate": Role.OPERATOR}
SILENCE_LABELS = ("breaker", "subject", "account", "policy")  # from an alert's details


def overview(service: Service, principal: Principal = LOCAL) -> dict[str, Any]:
    """GET /api/v1/overview: the status page's data (see the module's docstring)."""
    state = service.state
    cycle = service.last_cycle
    status = service.status()
    return {
        "you": {
            "name": principal.name,
            "role": principal.role.label,
            # False without --auth: nobody is identified, a reset must say who (`by`).
            "identified": principal != LOCAL,
            "may": {button: principal.allows(role) for button, role in BUTTONS.items()},
        },
        "now": service.feed.now().isoformat(),
        "adapter": service.feed.adapter.name,
        "policy_version": service.reloader.current.version,
        "cycle": None
        if cycle is None
        else {
            "number": cycle.number,
            "at": cycle.at.isoformat(),
            "policy_version": cycle.policy_version,
            "fresh_data": cycle.fresh_data,
            "polling_interval_s": str(cycle.interval_s),
        },
        "ready": _ready(service),
        "last_poll": status["last_poll"],
        "accounts": _accounts(service, state),
        "breakers": list(_breakers(service, state, status["pending_resets"])),
        "escalations": _escalations(service, state),
        # Operators' floors in force, and the levels each position may be held at (the
        # Escalate button's choices: service.escalations).
        "manual_escalations": status["manual_escalations"],
        "escalation_levels": escalations.levels_by_position(service),
        "pending_resets": status["pending_resets"],
        "locks": status["locks"],
        "decisions": _decisions(service),
        "audit": _audit(service),
        "reloads": list(reversed(service.activity.reloads())),
        "versions": status["policy_versions"],
        "firing": _firing(service),
        "alerts": [
            {
                **_alert(alert),
                "event": "resolved" if isinstance(alert, AlertResolved) else "raised",
            }
            for alert in reversed(service.activity.alerts()[-SHOWN_ALERTS:])
        ],
    }


def last_snapshot(service: Service) -> tuple[int, dict[str, Any]]:
    """GET /api/v1/snapshot: 200 with the last cycle's snapshot (the document `bastion
    eval --snapshot` reads), its cycle number, time and policy version; 503 before a
    cycle has evaluated any data."""
    cycle = service.last_cycle
    if cycle is None or cycle.snapshot is None:
        return 503, {
            "error": "no snapshot yet: no cycle has evaluated market data; "
            "retry after the first cycle (GET /readyz)",
        }
    return 200, {
        "cycle": cycle.number,
        "at": cycle.at.isoformat(),
        "policy_version": cycle.policy_version,
        "fresh_data": cycle.fresh_data,
        "snapshot": cycle.snapshot.to_dict(),
    }


def _ready(service: Service) -> dict[str, Any]:
    ready, reasons = service.ready()
    return {"ready": ready, "reasons": reasons}


def _accounts(service: Service, state: State) -> list[dict[str, Any]]:
    snapshot = service.last_snapshot
    equity = {a.id: str(a.equity_usd) for a in snapshot.accounts} if snapshot else {}
    ids = sorted({*equity, *state.trading_states})
    not_armed = service.breakers_not_armed()
    return [
        {
            "id": account,
            "trading_state": state.trading_state(account),
            "equity_usd": equity.get(account),
            "breakers_not_armed": sum(
                1 for key in not_armed if _subject_account(key.partition("@")[2]) == account
            ),
        }
        for account in ids
    ]


def _subject_account(subject: str) -> str | None:
    scope, _, ident = subject.partition(":")
    return ident if scope == "account" else None


def _breakers(
    service: Service, state: State, pending: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """The breakers not armed, each with what tripped it and when it may rearm."""
    definitions = _breaker_definitions(service)
    queued = {(p.get("breaker"), p.get("subject")) for p in pending}
    for key, breaker_state in sorted(state.breakers.items()):
        if breaker_state.status == "armed":
            continue
        head, _, subject = key.partition("@")
        policy, _, breaker_id = head.partition(":")
        definition = definitions.get((policy, breaker_id))
        trip = service.activity.trip(key)
        yield {
            "key": key,
            "policy": policy,
            "breaker": breaker_id,
            "subject": subject,
            **_breaker_state(breaker_state),
            "values": dict(trip.values) if trip is not None else None,
            "reason": trip.reason if trip is not None else None,
            "decision_id": trip.decision_id if trip is not None else None,
            "threshold": describe(definition.condition) if definition else None,
            "cooldown_s": str(definition.cooldown_s) if definition else None,
            "reset": definition.reset if definition else None,
            "action": definition.action if definition else None,
            "severity": definition.severity if definition else None,
            "reset_queued": (breaker_id, subject) in queued,
        }


def _breaker_state(breaker: BreakerState) -> dict[str, Any]:
    return {
        "status": breaker.status,
        "since": breaker.tripped_at.isoformat() if breaker.tripped_at else None,
        "until": breaker.until.isoformat() if breaker.until else None,
        "awaiting_manual_reset": breaker.awaiting_manual_reset,
        "trip_count": breaker.trip_count,
    }


def _breaker_definitions(service: Service) -> dict[tuple[str, str], Breaker]:
    return {
        (policy.name, breaker.id): breaker
        for policy in service.reloader.current.policy_set.of_kind("BreakerPolicy")
        for breaker in policy.spec.breakers
    }


def _escalations(service: Service, state: State) -> list[dict[str, Any]]:
    """The escalated positions grouped by level, the highest first."""
    snapshot = service.last_snapshot
    positions: dict[str, Position] = {p.id: p for p in snapshot.positions} if snapshot else {}
    levels: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for key, escalated in sorted(state.escalations.items()):
        position_id = key.removesuffix(f"@{escalated.policy}") if escalated.policy else key
        position = positions.get(position_id)
        levels.setdefault((escalated.level, escalated.level_name), []).append(
            {
                "position": position_id,
                "account_id": position.account_id if position else None,
                "symbol": position.symbol if position else None,
                "breach_atr": str(escalated.breach_atr),
                "breach_atr_now": _breach_now(position, snapshot.market if snapshot else {}),
                "since": escalated.since.isoformat(),
                "policy": escalated.policy,
                "shadow": key != position_id,
            }
        )
    shown = [
        {"level": level, "level_name": name, "positions": members}
        for (level, name), members in sorted(levels.items(), reverse=True)
    ]
    escalated_ids = {m["position"] for members in levels.values() for m in members}
    not_escalated = sum(1 for position_id in positions if position_id not in escalated_ids)
    return [*shown, {"level": 0, "level_name": "none", "count": not_escalated, "positions": []}]


def _breach_now(position: Position | None, market: Mapping[str, Market]) -> str | None:
    """The position's adverse move from entry in ATRs in the last snapshot (what the
    escalation compares), 2 decimals; None without a price and a positive ATR."""
    if position is None:
        return None
    breach = position_metrics(position, market.get(position.symbol)).get("breach_atr")
    return None if breach is None else str(breach.quantize(_CENT))


def _decisions(service: Service) -> list[dict[str, Any]]:
    return [
        _decision(number, decision)
        for number, decision in reversed(service.activity.decisions()[-SHOWN_DECISIONS:])
    ]


def _decision(cycle: int, decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.id,
        "cycle": cycle,
        "time": decision.time.isoformat(),
        "kind": decision.kind,
        "policy": decision.policy,
        "policy_version": decision.policy_version,
        "rule": decision.rule,
        "subject": decision.subject.label(),
        "outcome": decision.outcome,
        "actions": list(decision.actions),
        "mode": decision.mode,
        "reasons": list(decision.reasons),
        "inputs": dict(decision.inputs),
    }


def _audit(service: Service) -> dict[str, Any]:
    """Where the decisions' audit records are, and how to read one."""
    trail = service.auditor.trail
    if trail is None:
        return {"directory": None, "head": None}
    return {"directory": str(trail.directory), "head": service.auditor.head()}


def _alert(alert: AlertRaised | AlertResolved) -> dict[str, Any]:
    return {
        "at": alert.at.isoformat(),
        "kind": alert.kind,
        "severity": alert.severity,
        "summary": alert.summary,
        "details": {k: _plain(v) for k, v in alert.details.items()},
        "matchers": _matchers(alert),
    }


def _firing(service: Service) -> list[dict[str, Any]] | None:
    """The alerts raised and not resolved, the newest first, each with the silence that
    holds it back (None); None when the service's alerts do not track them."""
    alerts = service.alerts
    firing = getattr(alerts, "firing", None)
    if not callable(firing):
        return None
    silences = getattr(alerts, "silences", None)
    silencing = getattr(silences, "silencing", None)
    shown = []
    for alert in reversed(list(firing())[-SHOWN_ALERTS:]):
        silenced = silencing(labels_of(alert)) if callable(silencing) else None
        shown.append({**_alert(alert), "silenced_by": silenced})
    return shown


def _matchers(alert: AlertRaised | AlertResolved) -> dict[str, str]:
    """What a silence of this alert matches (POST /api/v1/silences): its kind and the
    breaker, subject and policy it names."""
    matchers = {"kind": alert.kind}
    for label in SILENCE_LABELS:
        value = alert.details.get(label)
        if isinstance(value, str) and value.strip("*"):
            matchers[label] = value
    return matchers


def _plain(value: Any) -> Any:
    """An alert's detail as JSON would show it (Decimal as text, nested kept)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
