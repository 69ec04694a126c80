"""Manual breaker resets asked for over HTTP (POST /api/v1/breakers/reset).

The body carries what `bastion eval --reset BREAKER@SUBJECT --by NAME --reason TEXT`
takes, one field each; `parse_reset` checks it as the CLI does (and refuses blank text
and unknown fields). A `PendingReset` waits in the service's queue until a cycle passes
it to `evaluate(..., resets=...)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.engine.errors import BastionError
from bastion.engine.evaluation.breakers import ManualReset
from bastion.engine.snapshot.validate import parse_json
from bastion.service.safe_text import text_problems

# The body of POST /api/v1/breakers/reset: what `bastion eval --reset BREAKER@SUBJECT
# --by NAME --reason TEXT` takes, one field each.
RESET_FIELDS = {
    "breaker": "the breaker's id, e.g. drawdown",
    "subject": "SCOPE:ID as the status shows it, e.g. account:gen-01 or portfolio:all",
    "by": "who resets (it goes into the decision record)",
    "reason": "why (it goes into the decision record)",
}
REASON_LOGGED_CHARS = 200  # an operator's free text: bounded in the logs


class ResetInvalid(BastionError):
    """A reset body cannot be read; `errors` names each field at fault (path, message).
    Caught by `Service.reset_breaker` (422)."""

    def __init__(self, message: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.errors = tuple(errors)


def parse_reset(body: bytes, *, by: str | None = None) -> ManualReset:
    """The reset a POST /api/v1/breakers/reset body asks for, checked as `bastion eval`
    checks --reset, --by and --reason (cli.eval.parse_resets): every field required and
    not blank, the subject SCOPE:ID, no text that cannot be kept (a lone surrogate, a
    control character). `by`: the authenticated caller's name, recorded instead of the
    body's "by" (which may then be left out, and must match when given). Raises
    ResetInvalid naming every field at fault."""
    example = ", ".join(f'"{name}": ...' for name in RESET_FIELDS)
    if not body.strip():
        raise ResetInvalid(f"body: empty; send {{{example}}}")
    try:
        data = parse_json(body.decode("utf-8"), "body", ResetInvalid)
    except UnicodeDecodeError as error:
        raise ResetInvalid(f"body: not UTF-8 text ({error.reason})") from error
    if not isinstance(data, dict):
        raise ResetInvalid(f"body: a reset is a JSON object: {{{example}}}")
    problems = text_problems(data)
    if problems:  # nothing else is read from text that cannot be kept
        listed = "".join(f"\n  {name}: {message}" for name, message in problems)
        raise ResetInvalid(f"body: text that cannot be kept:{listed}", problems)
    problems = [(name, "unknown field") for name in sorted(set(data) - set(RESET_FIELDS))]
    if by is not None:
        if "by" in data and data["by"] != by:
            problems.append(("by", f"{data['by']!r} is not the caller ({by!r}): leave it out"))
        data = {**data, "by": by}
    for name, meaning in RESET_FIELDS.items():
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            problem = "is missing" if name not in data else "must be a non-empty string"
            problems.append((name, f"{problem}: {meaning}"))
    subject = data.get("subject")
    if isinstance(subject, str) and subject.strip() and ":" not in subject:
        problems.append(("subject", f"{subject!r} must look like {RESET_FIELDS['subject']}"))
    if problems:
        listed = "".join(f"\n  {name}: {message}" for name, message in problems)
        raise ResetInvalid(f"body: invalid reset, {len(problems)} problem(s):{listed}", problems)
    return ManualReset(data["breaker"], data["subject"], data["by"], data["reason"])


@dataclass(frozen=True, slots=True)
class PendingReset:
    """A manual reset taken over HTTP, waiting for the next cycle to apply it."""

    reset: ManualReset
    requested_at: datetime  # feed (market) time, as every time the service shows

    @property
    def key(self) -> tuple[str, str]:
        return self.reset.breaker_id, self.reset.subject  # as the engine matches resets

    def to_dict(self) -> dict[str, Any]:
        return {
            "breaker": self.reset.breaker_id,
            "subject": self.reset.subject,
            "by": self.reset.by,
            "reason": self.reset.reason,
            "requested_at": self.requested_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> PendingReset:
        """One `to_dict` read back (a --state file's queue). Raises KeyError, TypeError,
        ValueError on a malformed entry."""
        reset = ManualReset(
            str(data["breaker"]), str(data["subject"]), str(data["by"]), str(data["reason"])
        )
        requested_at = datetime.fromisoformat(str(data["requested_at"]))
        if requested_at.tzinfo is None:
            raise ValueError(f"requested_at {data['requested_at']!r} has no timezone")
        return cls(reset, requested_at)


def reset_fields(reset: ManualReset) -> dict[str, Any]:
    """What a reset's log events say about it (operator text: bounded)."""
    return {
        "breaker": reset.breaker_id[:128],
        "subject": reset.subject[:128],
        "by": reset.by[:128],
        "reason": reset.reason[:REASON_LOGGED_CHARS],
    }
