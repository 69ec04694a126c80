"""A venue record the snapshot builder left out because it cannot be used, and why.

The builder drops such a record (a position it cannot price, in an asset the venue
does not list, a malformed row; a closed trade whose times, account or profit do not
agree) so that one bad record never blanks a snapshot, and
hands the list to `evaluate(..., left_out=...)`: each one is an unevaluable subject,
its account reduce-only until the record can be used again (the engine's fail safe).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Unevaluable:
    """One record left out of the snapshot: which position (or closed trade), whose, and why."""

    id: str
    account_id: str
    symbol: str
    reason: str
    kind: str = "position"  # position | trade

    def __str__(self) -> str:
        where = f"{self.kind} {self.id} ({self.symbol}, account {self.account_id})"
        return f"{where}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        record = {
            "id": self.id,
            "account_id": self.account_id,
            "symbol": self.symbol,
            "reason": self.reason,
        }
        if self.kind != "position":
            record["kind"] = self.kind
        return record
