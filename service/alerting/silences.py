"""Silences: an operator holds back the alerts matching some labels until a time, with
a reason (POST /api/v1/silences; GET lists them; DELETE expires one now).

A silence is data: who, why, what it matches, from when to when. Matchers are exact
label values or shell-style patterns (`gen-*`); every matcher must hold. Expired
silences are kept (listed as `expired`) for a day, then forgotten. They are saved with
the service's --state file when one is created or expired (and with every save), so a
restart keeps them (`to_list` / `restore`); the audit trail keeps every one.
"""

from __future__ import annotations

import fnmatch
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bastion.service.alerting.model import MATCHABLE_LABELS

MAX_SILENCE_S = 7 * 24 * 3600  # a week: longer is a config change, not a silence
_KEEP_EXPIRED = timedelta(days=1)
_MAX_SILENCES = 1000


class SilenceRefused(ValueError):
    """The silence asked for is not acceptable (the message says which field and why)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name, self.message = field_name, message


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: Mapping[str, str]
    created_by: str
    reason: str
    starts_at: datetime
    ends_at: datetime
    expired_by: str | None = None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(
            fnmatch.fnmatchcase(labels.get(name, ""), pattern)
            for name, pattern in self.matchers.items()
        )

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": dict(self.matchers),
            "created_by": self.created_by,
            "reason": self.reason,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "status": "active" if self.active(now) else "expired",
            "expired_by": self.expired_by,
        }


def silence_from_dict(data: Mapping[str, Any]) -> Silence:
    """A Silence as `Silence.to_dict` wrote it (the --state file); ValueError / KeyError /
    TypeError when it is not one."""
    matchers = data["matchers"]
    if not isinstance(matchers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in matchers.items()
    ):
        raise ValueError(f"silence {data.get('id')!r}: matchers must map labels to text")
    starts_at = datetime.fromisoformat(str(data["starts_at"]))
    ends_at = datetime.fromisoformat(str(data["ends_at"]))
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError(f"silence {data.get('id')!r}: times need their offset")
    expired_by = data.get("expired_by")
    return Silence(
        id=str(data["id"]),
        matchers=dict(matchers),
        created_by=str(data["created_by"]),
        reason=str(data["reason"]),
        starts_at=starts_at,
        ends_at=ends_at,
        expired_by=None if expired_by is None else str(expired_by),
    )


def parse_silence(
    data: Any, *, by: str, now: datetime, new_id: Callable[[], str] | None = None
) -> Silence:
    """A Silence from a POST body {"matchers": {...}, "reason": ..., "duration_s" or
    "ends_at"}, or SilenceRefused naming the field."""
    if not isinstance(data, dict):
        raise SilenceRefused("body", 'send {"matchers": {...}, "reason": ..., "duration_s": N}')
    unknown = set(data) - {"matchers", "reason", "duration_s", "ends_at", "by"}
    if unknown:
        raise SilenceRefused(
            sorted(unknown)[0], "unknown field; known: matchers, reason, duration_s, ends_at, by"
        )
    matchers = data.get("matchers")
    if not isinstance(matchers, dict) or not matchers:
        raise SilenceRefused(
            "matchers",
            "a non-empty mapping of label to value, e.g. "
            '{"breaker": "daily_loss_usd", "account": "gen-01"}',
        )
    for name, value in matchers.items():
        if name not in MATCHABLE_LABELS:
            raise SilenceRefused(
                f"matchers.{name}", f"unknown label; known: {', '.join(MATCHABLE_LABELS)}"
            )
        if not isinstance(value, str) or not value.strip() or value.strip("*") == "":
            raise SilenceRefused(
                f"matchers.{name}",
                "a label value (a pattern such as gen-* "
                "is fine; a bare * would silence everything)",
            )
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise SilenceRefused("reason", 'say why (it is audited), e.g. "maintenance window"')
    ends_at = _ends_at(data, now)
    return Silence((new_id or _new_id)(), dict(matchers), by, reason.strip()[:500], now, ends_at)


def _ends_at(data: Mapping[str, Any], now: datetime) -> datetime:
    if ("duration_s" in data) == ("ends_at" in data):
        raise SilenceRefused(
            "duration_s", "give duration_s (seconds) or ends_at (ISO time), one of them"
        )
    if "duration_s" in data:
        duration = data["duration_s"]
        if not isinstance(duration, int | float) or isinstance(duration, bool) or duration <= 0:
            raise SilenceRefused("duration_s", "a number of seconds above 0")
        ends_at = now + timedelta(seconds=float(duration))
    else:
        try:
            ends_at = datetime.fromisoformat(str(data["ends_at"]))
        except ValueError:
            raise SilenceRefused(
                "ends_at", "an ISO 8601 time with offset, e.g. 2026-12-02T06:00:00+00:00"
            ) from None
        if ends_at.tzinfo is None:
            raise SilenceRefused("ends_at", "give the offset (+00:00 for UTC)")
        if ends_at <= now:
            raise SilenceRefused("ends_at", "already past")
    if ends_at - now > timedelta(seconds=MAX_SILENCE_S):
        raise SilenceRefused(
            "duration_s",
            f"at most {MAX_SILENCE_S} s (a week); a longer "
            "change belongs in the --alerts file's routes",
        )
    return ends_at


def _new_id() -> str:
    return "sil_" + secrets.token_hex(6)


class Silences:
    """The silences, thread-safe; `silencing(labels)` is what delivery asks."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self._items: dict[str, Silence] = {}
        self._lock = threading.Lock()

    def add(self, silence: Silence) -> None:
        with self._lock:
            self._forget_old(self.now())
            if len(self._items) >= _MAX_SILENCES:
                raise SilenceRefused("matchers", f"already {_MAX_SILENCES} silences; expire some")
            self._items[silence.id] = silence

    def expire(self, silence_id: str, by: str) -> Silence | None:
        """End a silence now; None when there is no such active silence."""
        now = self.now()
        with self._lock:
            silence = self._items.get(silence_id)
            if silence is None or not silence.active(now):
                return None
            ended = replace(silence, ends_at=now, expired_by=by)
            self._items[silence_id] = ended
            return ended

    def silencing(self, labels: Mapping[str, str]) -> str | None:
        """The id of an active silence matching these labels, or None."""
        now = self.now()
        with self._lock:
            for silence in self._items.values():
                if silence.active(now) and silence.matches(labels):
                    return silence.id
        return None

    def to_list(self) -> list[dict[str, Any]]:
        """Every silence kept (active, and expired less than a day ago), for the --state
        file; `restore` reads it back."""
        return self.listed()

    def restore(self, silences: list[Silence]) -> None:
        """Start from the silences a --state file kept (those long expired are dropped)."""
        with self._lock:
            self._items = {silence.id: silence for silence in silences}
            self._forget_old(self.now())

    def listed(self) -> list[dict[str, Any]]:
        now = self.now()
        with self._lock:
            self._forget_old(now)
            items = sorted(self._items.values(), key=lambda s: s.starts_at)
        return [silence.to_dict(now) for silence in items]

    def _forget_old(self, now: datetime) -> None:
        for key in [k for k, s in self._items.items() if s.ends_at + _KEEP_EXPIRED < now]:
            del self._items[key]
