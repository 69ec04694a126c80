"""History locks released by an officer (POST /api/v1/locks/release).

The body names the lock (its id, as `GET /api/v1/status` lists it under `locks`) and
why; who releases is the caller (with --auth, the token's principal; without, the
body's "by"). Releasing removes a protection, so it is an officer's: the least role
of the endpoint. A release takes effect at once (under the cycle's lock, so that a
running cycle never writes the lock back), is saved with the state before it is
answered, and is audited (`lock_released`) — refusals too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import structlog

from bastion.engine.authority.history.release import LockNotFound, active_locks, release_lock
from bastion.engine.errors import BastionError
from bastion.engine.snapshot.validate import parse_json
from bastion.service.auth import LOCAL, Principal
from bastion.service.safe_text import text_problems

if TYPE_CHECKING:
    from bastion.service.runner import Service

log = structlog.get_logger("bastion.service")

RELEASE_FIELDS = {
    "lock": "the lock's id as GET /api/v1/status lists it under `locks`",
    "by": "who releases (it goes into the lock and the audit trail)",
    "reason": "why (it goes into the lock and the audit trail)",
}
REASON_LOGGED_CHARS = 200


class ReleaseInvalid(BastionError):
    """A release body cannot be read; `errors` names each field at fault."""

    def __init__(self, message: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.errors = tuple(errors)


@dataclass(frozen=True, slots=True)
class LockRelease:
    lock_id: str
    by: str
    reason: str

    def fields(self) -> dict[str, str]:
        """What log events say about it (operator text: bounded)."""
        return {
            "lock": self.lock_id[:256],
            "by": self.by[:128],
            "reason": self.reason[:REASON_LOGGED_CHARS],
        }


def parse_release(body: bytes, *, by: str | None = None) -> LockRelease:
    """The release a body asks for: every field a non-blank string, no unknown field, no
    text that cannot be kept. `by`: the authenticated caller, recorded instead of the
    body's "by" (which must then match when given). Raises ReleaseInvalid."""
    example = ", ".join(f'"{name}": ...' for name in RELEASE_FIELDS)
    if not body.strip():
        raise ReleaseInvalid(f"body: empty; send {{{example}}}")
    try:
        data = parse_json(body.decode("utf-8"), "body", ReleaseInvalid)
    except UnicodeDecodeError as error:
        raise ReleaseInvalid(f"body: not UTF-8 text ({error.reason})") from error
    if not isinstance(data, dict):
        raise ReleaseInvalid(f"body: a release is a JSON object: {{{example}}}")
    problems = text_problems(data)
    if problems:
        listed = "".join(f"\n  {name}: {message}" for name, message in problems)
        raise ReleaseInvalid(f"body: text that cannot be kept:{listed}", problems)
    problems = [(name, "unknown field") for name in sorted(set(data) - set(RELEASE_FIELDS))]
    if by is not None:
        if "by" in data and data["by"] != by:
            problems.append(("by", f"{data['by']!r} is not the caller ({by!r}): leave it out"))
        data = {**data, "by": by}
    for name, meaning in RELEASE_FIELDS.items():
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            problem = "is missing" if name not in data else "must be a non-empty string"
            problems.append((name, f"{problem}: {meaning}"))
    if problems:
        listed = "".join(f"\n  {name}: {message}" for name, message in problems)
        raise ReleaseInvalid(
            f"body: invalid release, {len(problems)} problem(s):{listed}", problems
        )
    return LockRelease(data["lock"], data["by"], data["reason"])


def locks_status(service: Service) -> list[dict[str, Any]]:
    """The locks blocking now, as `GET /api/v1/status` shows them (id first)."""
    now = service.feed.now()
    return [{"id": lock.id, **lock.to_dict()} for lock in active_locks(service.state.locks, now)]


def release(service: Service, body: bytes, principal: Principal = LOCAL) -> tuple[int, Any]:
    """POST /api/v1/locks/release: 200 `released: true` with the lock as it is now;
    422 when the body is not a release; 409 when no active lock has that id (the
    active ones listed); 503 when the audit trail or the state cannot be written (the
    lock is kept: nothing is released that the trail and the state file do not hold)."""
    try:
        asked = parse_release(body, by=None if principal == LOCAL else principal.name)
    except ReleaseInvalid as error:
        errors = [{"path": path, "message": message} for path, message in error.errors]
        return _refused(service, principal, 422, str(error), errors=errors)
    with service.cycle_lock:  # a running cycle finishes first and never writes it back
        before = service.state
        now = service.feed.now()
        try:
            locks, released = release_lock(before.locks, asked.lock_id, asked.by, asked.reason, now)
        except LockNotFound as error:
            return _refused(service, principal, 409, str(error), asked, active=list(error.active))
        if not service.auditor.lock_released(principal.name, status=200, lock=released):
            message = "not released: the audit trail cannot be written; see /readyz"
            return _refused(service, principal, 503, message, asked, audit=False)
        service.state = replace(before, locks=locks)
        service.authority.adopt(service.state)  # orders see it at once
        if not service.save_state():  # fail closed: an unsaved release is not taken
            service.state = before
            service.authority.adopt(before)
            reason = service.persist_reason("state") or "unknown error"
            message = f"not released: the state cannot be saved ({reason})"
            return _refused(service, principal, 503, message, asked)
    log.warning("lock_released", **asked.fields(), result="released", status=200)
    return 200, {"released": True, "lock": {"id": released.id, **released.to_dict()}}


def _refused(
    service: Service,
    principal: Principal,
    status: int,
    error: str,
    asked: LockRelease | None = None,
    *,
    audit: bool = True,
    **details: Any,
) -> tuple[int, dict[str, Any]]:
    """A release not taken: logged and audited as result "rejected"."""
    log.warning(
        "lock_released",
        **(asked.fields() if asked is not None else {}),
        result="rejected",
        status=status,
        error=error[:1000],
    )
    if audit:
        service.auditor.lock_release_refused(
            principal.name,
            status=status,
            lock_id=None if asked is None else asked.lock_id,
            reason=None if asked is None else asked.reason,
            error=error,
        )
    return status, {"released": False, "error": error, **details}
