"""Manual escalations asked for by an operator (POST / DELETE /api/v1/escalations).

An operator holds a position at least at an escalation level (a level's name in the
EscalationPolicy that governs it) for `ttl_s` seconds or until cleared: the engine
takes max(computed, manual) (engine/evaluation/escalation.py), so the cadence follows
and the decision that raises the position says who, why and until when.

Who escalates is the caller (with --auth, the token's principal; without, the body's
"by"). Like a history-lock release, it takes effect at once under the cycle's lock,
is audited (`escalation_set`, `escalation_cleared`, refusals too) before it takes
effect, is saved with the state before it is answered (503 and nothing changes when
either write fails), and asks for a cycle at once (the scheduler's `run_soon`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from bastion.engine.errors import BastionError
from bastion.engine.policy.select import governing
from bastion.engine.snapshot.validate import parse_json
from bastion.engine.state import ManualEscalation
from bastion.service.auth import LOCAL, Principal
from bastion.service.safe_text import text_problems

if TYPE_CHECKING:
    from bastion.engine.policy.model import Policy
    from bastion.engine.state import State
    from bastion.service.runner import Service

log = structlog.get_logger("bastion.service")

ESCALATE_FIELDS = {
    "position_id": "the position's id as GET /api/v1/snapshot lists it",
    "level": "a level's name in the position's EscalationPolicy, e.g. recovery",
    "by": "who escalates (it goes into the decision and the audit trail)",
    "reason": "why (it goes into the decision and the audit trail)",
}
CLEAR_FIELDS = {
    "position_id": "the position's id as GET /api/v1/status lists it",
    "by": "who clears (it goes into the audit trail)",
    "reason": "why (it goes into the audit trail)",
}
MAX_TTL_S = 7 * 24 * 3600  # a week: longer is a policy change, not an escalation
REASON_LOGGED_CHARS = 200


class EscalationInvalid(BastionError):
    """A body cannot be read; `errors` names each field at fault (422)."""

    def __init__(self, message: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.errors = tuple(errors)


@dataclass(frozen=True, slots=True)
class Asked:
    position_id: str
    by: str
    reason: str
    level: str = ""
    ttl_s: int | None = None

    def fields(self) -> dict[str, Any]:
        """What log events say about it (operator text: bounded)."""
        return {
            "position": self.position_id[:128],
            "level": self.level[:64],
            "by": self.by[:128],
            "reason": self.reason[:REASON_LOGGED_CHARS],
            "ttl_s": self.ttl_s,
        }


def parse_body(body: bytes, fields: dict[str, str], *, by: str | None = None) -> Asked:
    """The escalation (or clearing) a body asks for: every field in `fields` a non-blank
    string, `ttl_s` (escalations only) a whole number of seconds from 1 to a week or
    absent, no unknown field, no text that cannot be kept. `by`: the authenticated
    caller, recorded instead of the body's (which must then match). Raises
    EscalationInvalid naming every field at fault."""
    example = ", ".join(f'"{name}": ...' for name in fields)
    if not body.strip():
        raise EscalationInvalid(f"body: empty; send {{{example}}}")
    try:
        data = parse_json(body.decode("utf-8"), "body", EscalationInvalid)
    except UnicodeDecodeError as error:
        raise EscalationInvalid(f"body: not UTF-8 text ({error.reason})") from error
    if not isinstance(data, dict):
        raise EscalationInvalid(f"body: a JSON object: {{{example}}}")
    problems = text_problems(data)
    if problems:
        listed = "".join(f"\n  {name}: {message}" for name, message in problems)
        raise EscalationInvalid(f"body: text that cannot be kept:{listed}", problems)
    known = set(fields) | ({"ttl_s"} if "level" in fields else set())
    problems = [(name, "unknown field") for name in sorted(set(data) - known)]
    if by is not None:
        if "by" in data and data["by"] != by:
            problems.append(("by", f"{data['by']!r} is not the caller ({by!r}): leave it out"))
        data = {**data, "by": by}
    for name, meaning in fields.items():
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            problem = "is missing" if name not in data else "must be a non-empty string"
            problems.append((name, f"{problem}: {meaning}"))
    ttl = data.get("ttl_s")
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL_S
    ):
        problems.append(("ttl_s", f"{ttl!r}: whole seconds, 1 to {MAX_TTL_S}, or leave it out"))
    if problems:
        listed = "".join(f"\n  {name}: {message}" for name, message in problems)
        raise EscalationInvalid(f"body: {len(problems)} problem(s):{listed}", problems)
    return Asked(data["position_id"], data["by"], data["reason"], data.get("level", ""), ttl)


def active(service: Service) -> dict[str, dict[str, Any]]:
    """The manual escalations in force now, by position id (GET /api/v1/status)."""
    now = service.feed.now()
    return {
        key: manual.to_dict()
        for key, manual in sorted(service.state.manual_escalations.items())
        if manual.active(now)
    }


def levels_by_position(service: Service) -> dict[str, list[str]]:
    """For each position of the last snapshot, the levels an operator may hold it at:
    those of the enforce EscalationPolicy that governs it (the status page's choices)."""
    snapshot = service.last_snapshot
    if snapshot is None:
        return {}
    accounts = {account.id: account.type for account in snapshot.accounts}
    found: dict[str, list[str]] = {}
    for position in snapshot.positions:
        if position.option is not None:
            continue  # options are governed by their delta (RollPolicy), not by levels
        policy = _governing(service, accounts.get(position.account_id), position)
        if policy is not None:
            found[position.id] = [level.name for level in policy.spec.levels]
    return found


def escalate(service: Service, body: bytes, principal: Principal = LOCAL) -> tuple[int, Any]:
    """POST /api/v1/escalations: 200 `escalated: true` with the escalation; 422 when the
    body is not one or the level is not the position's policy's (its levels listed);
    409 when the last snapshot holds no such position (the positions listed); 503 when
    the audit trail or the state cannot be written (nothing changes)."""
    try:
        asked = parse_body(body, ESCALATE_FIELDS, by=None if principal == LOCAL else principal.name)
    except EscalationInvalid as error:
        errors = [{"path": path, "message": message} for path, message in error.errors]
        return _refused(service, principal, "escalation_set", 422, str(error), errors=errors)
    with service.cycle_lock:  # a running cycle finishes first and never writes it back
        snapshot = service.last_snapshot
        positions = {} if snapshot is None else {p.id: p for p in snapshot.positions}
        position = positions.get(asked.position_id)
        if position is None or snapshot is None:
            message = f"no position {asked.position_id!r} in the last snapshot"
            return _refused(
                service, principal, "escalation_set", 409, message, asked,
                positions=sorted(positions),
            )  # fmt: skip
        accounts = {account.id: account.type for account in snapshot.accounts}
        policy = _governing(service, accounts.get(position.account_id), position)
        if position.option is not None:  # escalation_pass skips options: no floor to hold
            policy = None
        levels = [] if policy is None else [level.name for level in policy.spec.levels]
        if asked.level not in levels:
            which = "no enforce EscalationPolicy governs it" if policy is None else policy.name
            if position.option is not None:
                which = "no EscalationPolicy: an option is governed by its delta (RollPolicy)"
            message = f"level {asked.level!r} is not a level of {which}; one of: {levels}"
            return _refused(
                service, principal, "escalation_set", 422, message, asked, levels=levels
            )
        now = service.feed.now()
        until = None if asked.ttl_s is None else now + timedelta(seconds=asked.ttl_s)
        manual = ManualEscalation(asked.level, asked.by, asked.reason, now, until)
        audited = service.auditor.record(
            "escalation_set",
            principal=principal.name,
            subject=f"position:{asked.position_id}",
            status=200,
            policy=policy.name if policy is not None else None,
            **manual.to_dict(),
        )
        if not audited:
            message = "not escalated: the audit trail cannot be written; see /readyz"
            return _refused(service, principal, "escalation_set", 503, message, asked, audit=False)
        before = service.state
        floors = {**before.manual_escalations, asked.position_id: manual}
        refused = _commit(service, principal, "escalation_set", asked, before, floors)
        if refused is not None:
            return refused
    log.warning("escalation_set", **asked.fields(), result="escalated", status=200)
    if service.on_reset_queued is not None:  # the next cycle at once: the level moves now
        service.on_reset_queued()
    return 200, {"escalated": True, "position_id": asked.position_id, **manual.to_dict()}


def clear(service: Service, body: bytes, principal: Principal = LOCAL) -> tuple[int, Any]:
    """DELETE /api/v1/escalations: 200 `cleared: true`; 409 when the position has no
    manual escalation (those in force listed); 422, 503 as `escalate`."""
    try:
        asked = parse_body(body, CLEAR_FIELDS, by=None if principal == LOCAL else principal.name)
    except EscalationInvalid as error:
        errors = [{"path": path, "message": message} for path, message in error.errors]
        return _refused(service, principal, "escalation_cleared", 422, str(error), errors=errors)
    with service.cycle_lock:
        before = service.state
        found = before.manual_escalations.get(asked.position_id)
        if found is None:
            message = f"no manual escalation on {asked.position_id!r}; nothing to clear"
            return _refused(
                service, principal, "escalation_cleared", 409, message, asked,
                active=sorted(before.manual_escalations),
            )  # fmt: skip
        audited = service.auditor.record(
            "escalation_cleared",
            principal=principal.name,
            subject=f"position:{asked.position_id}",
            status=200,
            by=asked.by,
            reason=asked.reason,
            was=found.to_dict(),
        )
        if not audited:
            message = "not cleared: the audit trail cannot be written; see /readyz"
            return _refused(
                service, principal, "escalation_cleared", 503, message, asked, audit=False
            )
        floors = {k: v for k, v in before.manual_escalations.items() if k != asked.position_id}
        refused = _commit(service, principal, "escalation_cleared", asked, before, floors)
        if refused is not None:
            return refused
    log.warning("escalation_cleared", **asked.fields(), result="cleared", status=200)
    if service.on_reset_queued is not None:
        service.on_reset_queued()
    return 200, {"cleared": True, "position_id": asked.position_id, "was": found.to_dict()}


def _governing(service: Service, account_type: str | None, position: Any) -> Policy | None:
    compiled = service.reloader.current.compiled.of_kind("EscalationPolicy")
    enforce = [c.policy for c in compiled if c.policy.mode == "enforce"]
    return governing(
        enforce, account_type=account_type, symbol=position.symbol, strategy=position.strategy_id
    )


def _commit(
    service: Service,
    principal: Principal,
    kind: str,
    asked: Asked,
    before: State,
    floors: dict[str, ManualEscalation],
) -> tuple[int, dict[str, Any]] | None:
    """The new floors into the state, saved; None when saved, else the 503 (restored)."""
    service.state = replace(before, manual_escalations=floors)
    if service.save_state():
        return None
    service.state = before  # fail closed: what the state file does not hold is not taken
    reason = service.persist_reason("state") or "unknown error"
    message = f"not taken: the state cannot be saved ({reason})"
    return _refused(service, principal, kind, 503, message, asked)


def _refused(
    service: Service,
    principal: Principal,
    kind: str,
    status: int,
    error: str,
    asked: Asked | None = None,
    *,
    audit: bool = True,
    **details: Any,
) -> tuple[int, dict[str, Any]]:
    """A request not taken: logged and audited as result "rejected"."""
    fields = asked.fields() if asked is not None else {}
    log.warning(kind, **fields, result="rejected", status=status, error=error[:1000])
    if audit:
        service.auditor.record(
            kind,
            principal=principal.name,
            subject=None if asked is None else f"position:{asked.position_id}",
            status=status,
            result="rejected",
            error=error[:1000],
        )
    answer = "escalated" if kind == "escalation_set" else "cleared"
    return status, {answer: False, "error": error, **details}
