"""The silence endpoints' logic (operator; GET for viewers):

    POST   /api/v1/silences  {"matchers": {"breaker": "stale_data", "account": "gen-*"},
                              "reason": "feed maintenance", "duration_s": 3600}
    GET    /api/v1/silences  {"silences": [...]} (active and recently expired)
    DELETE /api/v1/silences  {"id": "sil_...", "reason": "maintenance over"}: expire now

Who silences is the caller (with --auth the token's principal; without, the body's
"by", else "local"). Every silence created or expired is written to the audit trail
(`silence_created`, `silence_expired`) before it takes effect: when the trail cannot
be written the answer is 503 and nothing changes. Refusals are logged, not audited
(nothing changed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import structlog

from bastion.service.alerting.silences import SilenceRefused, Silences, parse_silence
from bastion.service.auth import LOCAL, Principal

log = structlog.get_logger("bastion.alerts")


class AuditRecord(Protocol):
    def __call__(
        self, kind: str, *, principal: str | None, subject: str | None, **data: Any
    ) -> bool: ...


def _caller(principal: Principal, data: Mapping[str, Any]) -> str:
    if principal != LOCAL:
        return principal.name
    by = data.get("by")
    return by.strip()[:128] if isinstance(by, str) and by.strip() else principal.name


def _read(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except (UnicodeDecodeError, ValueError):
        return None


def create_silence(
    silences: Silences | None, record: AuditRecord, body: bytes, principal: Principal
) -> tuple[int, dict[str, Any]]:
    """200 with the silence; 422 naming the field at fault; 503 when not audited."""
    if silences is None:
        return 503, {"created": False, "error": "silences are not available in this service"}
    data = _read(body)
    by = _caller(principal, data if isinstance(data, dict) else {})
    try:
        silence = parse_silence(data, by=by, now=silences.now())
    except SilenceRefused as refused:
        log.warning("silence_refused", by=by, field=refused.field_name, error=refused.message)
        return 422, {
            "created": False,
            "error": f"body: {refused}",
            "errors": [{"path": refused.field_name, "message": refused.message}],
        }
    fields = silence.to_dict(silences.now())
    if not record("silence_created", principal=by, subject="system:alerts", **fields):
        return 503, {
            "created": False,
            "error": "not silenced: the audit trail cannot be written; see /readyz",
        }
    try:
        silences.add(silence)
    except SilenceRefused as refused:
        return 422, {"created": False, "error": f"body: {refused}"}
    log.warning("silence_created", **{k: v for k, v in fields.items() if k != "status"})
    return 200, {"created": True, "silence": fields}


def expire_silence(
    silences: Silences | None, record: AuditRecord, body: bytes, principal: Principal
) -> tuple[int, dict[str, Any]]:
    """200 with the silence as it is now; 404 when no active silence has that id."""
    if silences is None:
        return 503, {"expired": False, "error": "silences are not available in this service"}
    data = _read(body)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("id"), str)
        or set(data) - {"id", "reason", "by"}
    ):
        message = 'send {"id": "sil_...", "reason": "..."} (the id from GET /api/v1/silences)'
        return 422, {
            "expired": False,
            "error": f"body: {message}",
            "errors": [{"path": "id", "message": message}],
        }
    by = _caller(principal, data)
    active = [s["id"] for s in silences.listed() if s["status"] == "active"]
    if data["id"] not in active:
        return 404, {
            "expired": False,
            "error": f"no active silence {data['id'][:64]!r}",
            "active": active,
        }
    reason = str(data.get("reason", ""))[:500]
    if not record(
        "silence_expired", principal=by, subject="system:alerts", id=data["id"], reason=reason
    ):
        return 503, {
            "expired": False,
            "error": "not expired: the audit trail cannot be written; see /readyz",
        }
    ended = silences.expire(data["id"], by)
    if ended is None:  # expired by itself meanwhile
        return 404, {"expired": False, "error": f"no active silence {data['id'][:64]!r}"}
    log.warning("silence_expired", id=ended.id, by=by, reason=reason)
    return 200, {"expired": True, "silence": ended.to_dict(silences.now())}


def list_silences(silences: Silences | None) -> dict[str, Any]:
    return {"silences": [] if silences is None else silences.listed()}


def audit_recorder(record: Callable[..., bool]) -> AuditRecord:
    """Auditor.record as an AuditRecord (its keyword `sync` stays at its default)."""

    def call(kind: str, *, principal: str | None, subject: str | None, **data: Any) -> bool:
        return record(kind, principal=principal, subject=subject, **data)

    return call
