"""The policy versions the service served, the last few kept in memory for a rollback.

Every set swapped in (start, reload, promotion of the shadow candidate, rollback) is
noted here with its digest (`PolicySet.version`, the sha256 of its resolved content) —
the audit trail records the same digest with each swap. The last `keep` are kept
loaded and compiled, so that `POST /-/rollback` swaps one back in at once, through the
reload guard, without reading any file.

The history is a browser's: a rollback moves back one step and keeps the newer versions
(a second rollback goes back one more; a rollback to a named kept version moves there);
a version served by anything else (reload, promotion) drops the versions after the
current one and goes at the end. A version served once but no longer kept (older than
the last `keep`, or dropped that way) is known — the audit has it — but cannot be
rolled back to: its files must be restored and reloaded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.service.reloader import LoadedPolicies

DEFAULT_KEEP = 5
ROLLBACK = "rollback"  # the trigger of a swap back to a kept version


@dataclass(frozen=True, slots=True)
class Served:
    """One version that served: since when and what swapped it in."""

    loaded: LoadedPolicies
    served_at: datetime
    trigger: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.loaded.version,
            "served_at": self.served_at.isoformat(),
            "trigger": self.trigger,
        }


class PolicyVersions:
    """The versions served, the last `keep` of them loaded. Thread-safe."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        if keep < 1:
            raise ValueError("keep at least the serving version (keep >= 1)")
        self.keep = keep
        self._kept: list[Served] = []  # oldest first
        self._position = -1  # the index of the serving version in _kept
        self._seen: dict[str, str] = {}  # every version served: digest -> first served at
        self._lock = threading.Lock()

    def served(self, loaded: LoadedPolicies, trigger: str, at: datetime | None = None) -> None:
        """`loaded` now serves (PolicyReloader.on_swap). A rollback moves to the kept entry;
        anything else drops the newer entries and appends."""
        served = Served(loaded, at or loaded.loaded_at, trigger)
        with self._lock:
            self._seen.setdefault(loaded.version, served.served_at.isoformat())
            index = self._index(loaded.version)
            if trigger == ROLLBACK and index is not None:
                self._position = index
                return
            del self._kept[self._position + 1 :]
            self._kept = [entry for entry in self._kept if entry.loaded.version != loaded.version]
            self._kept.append(served)
            del self._kept[: max(0, len(self._kept) - self.keep)]
            self._position = len(self._kept) - 1

    def _index(self, version: str) -> int | None:
        for index, entry in enumerate(self._kept):
            if entry.loaded.version == version:
                return index
        return None

    def target(self, version: str | None) -> LoadedPolicies | str:
        """The kept set to roll back to (`version`, or the one before the serving one),
        or why there is none, in words that say what to do instead."""
        with self._lock:
            if version is None:
                if self._position <= 0:
                    kept = ", ".join(e.loaded.version[:19] for e in self._kept)
                    return (
                        "no version older than the serving one is kept in memory (kept, "
                        f"oldest first: {kept}); to go further back, restore the earlier "
                        "files in the policy directory and reload"
                    )
                return self._kept[self._position - 1].loaded
            if version.startswith("sha256:") and len(version) > len("sha256:"):
                matches = [e for e in self._kept if e.loaded.version.startswith(version)]
                if len(matches) == 1:
                    return matches[0].loaded
                if len(matches) > 1:
                    return f"version {version} is ambiguous: give more of its digest"
            seen = [d for d in self._seen if version and d.startswith(version)]
            kept = ", ".join(e.loaded.version[:19] for e in self._kept)
            if len(seen) == 1:
                return (
                    f"version {seen[0]} served from {self._seen[seen[0]]} (the audit trail "
                    f"records it) but is no longer kept in memory (the last {self.keep} are, "
                    f"--keep-versions; kept: {kept}); restore its files in the policy "
                    "directory and reload"
                )
            return (
                f"version {version or '(empty)'} never served in this process; kept in memory: "
                f"{kept} (an older one: restore its files in the policy directory and reload)"
            )

    def to_dict(self) -> dict[str, Any]:
        """For /api/v1/status: the serving version and the kept ones, oldest first."""
        with self._lock:
            return {
                "serving": self._kept[self._position].loaded.version if self._kept else None,
                "keep": self.keep,
                "kept": [entry.to_dict() for entry in self._kept],
            }
