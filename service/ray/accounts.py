"""Which partition owns which account, and a venue feed cut down to one partition's.

The map is pinned in a file (`partitions.json` beside the --state file) the first time
the service starts: the accounts the venue lists then are dealt round-robin in sorted
order, so that partitions get the same number of accounts. A restart reads the file
back: an account never moves to another partition (its breakers, order memory and
audit chain live in that partition's files). An account the file does not name (opened
at the venue since) belongs to the partition its stable hash (CRC-32) names — the same
answer on the head and on every actor, with no coordination. A file made for another
number of partitions is refused (exit 2): changing N moves accounts.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bastion.adapters.venue import Fill, VenueAccount, VenuePosition
from bastion.engine.errors import UsageError
from bastion.engine.snapshot import ClosedTrade

MAP_VERSION = 1


@dataclass(frozen=True, slots=True)
class PartitionMap:
    """`partitions` partitions; `pinned` names the owner of the accounts known at start."""

    partitions: int
    pinned: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def dealt(cls, partitions: int, accounts: Iterable[str]) -> PartitionMap:
        """Sorted accounts dealt round-robin: partition sizes differ by one at most."""
        if partitions < 1:
            raise UsageError("--partitions must be 1 or more")
        ordered = sorted(set(accounts))
        return cls(partitions, {account: i % partitions for i, account in enumerate(ordered)})

    def owner(self, account_id: str) -> int:
        """The partition that owns `account_id` (pinned, else by its CRC-32)."""
        pinned = self.pinned.get(account_id)
        if pinned is not None:
            return pinned
        return zlib.crc32(account_id.encode("utf-8")) % self.partitions

    def accounts_of(self, partition: int) -> list[str]:
        """The pinned accounts of one partition, sorted."""
        return sorted(a for a, p in self.pinned.items() if p == partition)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": MAP_VERSION,
            "partitions": self.partitions,
            "accounts": dict(sorted(self.pinned.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> PartitionMap:
        try:
            partitions = int(data["partitions"])
            pinned = {str(k): int(v) for k, v in dict(data["accounts"]).items()}
        except (KeyError, TypeError, ValueError) as error:
            raise UsageError(f"{where}: not a partition map ({error!r}); restore it") from None
        if partitions < 1 or any(not 0 <= p < partitions for p in pinned.values()):
            raise UsageError(f"{where}: a partition number is out of range 0..{partitions - 1}")
        return cls(partitions, pinned)


def open_map(path: Path, partitions: int, accounts: Callable[[], Sequence[str]]) -> PartitionMap:
    """The map pinned in `path`, or a new one dealt from `accounts()` and written there.
    UsageError (exit 2) when the file is unreadable or made for another N."""
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise UsageError(f"{path}: cannot read the partition map ({error})") from None
        found = PartitionMap.from_dict(data, str(path))
        if found.partitions != partitions:
            raise UsageError(
                f"{path} pins accounts to {found.partitions} partitions, not {partitions}: "
                f"start with --partitions {found.partitions} (changing N would move accounts "
                "away from their state and audit chain)"
            )
        return found
    made = PartitionMap.dealt(partitions, accounts())
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(json.dumps(made.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        raise UsageError(f"{path}: cannot write the partition map ({error})") from None
    return made


class AccountFilter:
    """A venue adapter seen through one partition: accounts, positions, fills and closed
    trades of its own accounts only; market data and everything else as the adapter
    answers it (one attribute lookup away, so optional capabilities stay optional).

    An adapter that can ask its venue for some accounts only offers
    `restricted_to(owns) -> adapter` (the partition calls it first: it then polls its
    share, not the whole account side); the filter stays in front of it either way."""

    def __init__(self, adapter: Any, owns: Callable[[str], bool]) -> None:
        self._adapter = adapter
        self._owns = owns

    def __getattr__(self, name: str) -> Any:
        if name == "fetch_history":  # optional (HistorySource): filtered when offered
            return self._fetch_history(getattr(self._adapter, name))
        return getattr(self._adapter, name)

    def _fetch_history(
        self, fetch: Callable[[datetime, datetime], tuple[Sequence[Fill], Sequence[ClosedTrade]]]
    ) -> Callable[[datetime, datetime], tuple[Sequence[Fill], Sequence[ClosedTrade]]]:
        """The venue's one-request fills and trades, this partition's accounts only (the
        real adapters offer it: passed through, another partition's fills and trades
        would reach this partition's snapshot)."""

        def fetch_history(
            fills_since: datetime, trades_since: datetime
        ) -> tuple[Sequence[Fill], Sequence[ClosedTrade]]:
            fills, trades = fetch(fills_since, trades_since)
            return (
                tuple(f for f in fills if self._owns(f.account_id)),
                tuple(t for t in trades if self._owns(t.account_id)),
            )

        return fetch_history

    @property
    def name(self) -> str:
        return str(self._adapter.name)

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        return tuple(a for a in self._adapter.fetch_accounts() if self._owns(a.id))

    def fetch_positions(self) -> Sequence[VenuePosition]:
        return tuple(p for p in self._adapter.fetch_positions() if self._owns(p.account_id))

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        return tuple(f for f in self._adapter.fetch_fills(since) if self._owns(f.account_id))

    def fetch_trades(self, since: datetime) -> Sequence[ClosedTrade]:
        return tuple(t for t in self._adapter.fetch_trades(since) if self._owns(t.account_id))


def owned_by(partition_map: PartitionMap, partition: int) -> Callable[[str], bool]:
    """The predicate `AccountFilter` filters with: does `partition` own this account?"""

    def owns(account_id: str) -> bool:
        return partition_map.owner(account_id) == partition

    return owns
