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

import functools
import json
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bastion.adapters.instrument_rules import InstrumentFetch
from bastion.adapters.option_chains import ChainFetch
from bastion.adapters.venue import Fill, VenueAccount, VenuePosition
from bastion.engine.errors import UsageError
from bastion.engine.snapshot import ClosedTrade, Instrument

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
    answers it (one attribute lookup away).

    The optional capabilities the builder picks with `isinstance` (`CAPABILITIES`: fills
    and trades in one request, closed trades, order rules, instruments, option chains)
    are offered exactly when the adapter offers them, as methods of the filter's class:
    `AccountFilter(adapter, owns)` makes an instance of the subclass for that set (made
    once, cached). Delegating them by `__getattr__` alone is not enough: from Python
    3.12 `isinstance` against a runtime_checkable Protocol looks attributes up with
    `inspect.getattr_static`, which never calls `__getattr__`, so a partition's feed
    would silently lose its history, order rules, instruments and option chains.

    An adapter that can ask its venue for some accounts only offers
    `restricted_to(owns) -> adapter` (the partition calls it first: it then polls its
    share, not the whole account side); the filter stays in front of it either way."""

    def __new__(cls, adapter: Any, owns: Callable[[str], bool]) -> AccountFilter:
        # Asked with getattr, not getattr_static: the adapter may itself delegate by
        # `__getattr__` (adapters.single_account.SingleAccountScope does).
        offered = tuple(name for name in CAPABILITIES if getattr(adapter, name, None) is not None)
        return object.__new__(_filter_class(offered))

    def __init__(self, adapter: Any, owns: Callable[[str], bool]) -> None:
        self._adapter = adapter
        self._owns = owns

    def __getattr__(self, name: str) -> Any:
        # A capability: by the class only (see above). A dunder: never the adapter's
        # (copy.deepcopy would find the adapter's __deepcopy__ and copy the adapter).
        if name in CAPABILITIES or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._adapter, name)

    def __reduce__(self) -> tuple[type[AccountFilter], tuple[Any, Callable[[str], bool]]]:
        return AccountFilter, (self._adapter, self._owns)  # the subclass is picked again

    @property
    def name(self) -> str:
        return str(self._adapter.name)

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        return tuple(a for a in self._adapter.fetch_accounts() if self._owns(a.id))

    def fetch_positions(self) -> Sequence[VenuePosition]:
        return tuple(p for p in self._adapter.fetch_positions() if self._owns(p.account_id))

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        return tuple(f for f in self._adapter.fetch_fills(since) if self._owns(f.account_id))


class _History(AccountFilter):
    def fetch_history(
        self, fills_since: datetime, trades_since: datetime
    ) -> tuple[Sequence[Fill], Sequence[ClosedTrade]]:
        """The venue's one-request fills and trades, this partition's accounts only (the
        real adapters offer it: passed through, another partition's fills and trades
        would reach this partition's snapshot)."""
        fills, trades = self._adapter.fetch_history(fills_since, trades_since)
        return (
            tuple(f for f in fills if self._owns(f.account_id)),
            tuple(t for t in trades if self._owns(t.account_id)),
        )


class _Trades(AccountFilter):
    def fetch_trades(self, since: datetime) -> Sequence[ClosedTrade]:
        return tuple(t for t in self._adapter.fetch_trades(since) if self._owns(t.account_id))


class _InstrumentRules(AccountFilter):  # market data: as the adapter answers it
    def fetch_instruments(
        self, positions: Sequence[VenuePosition], symbols: Sequence[str]
    ) -> InstrumentFetch:
        fetched: InstrumentFetch = self._adapter.fetch_instruments(positions, symbols)
        return fetched


class _Instruments(AccountFilter):
    def instruments(self, positions: Sequence[VenuePosition]) -> Mapping[str, Instrument]:
        found: Mapping[str, Instrument] = self._adapter.instruments(positions)
        return found


class _OptionChains(AccountFilter):
    def fetch_option_chains(self, underlyings: Sequence[str]) -> ChainFetch:
        fetched: ChainFetch = self._adapter.fetch_option_chains(underlyings)
        return fetched


# Each optional capability (the method its Protocol names) and the class that offers it.
_OFFERED_BY: dict[str, type[AccountFilter]] = {
    "fetch_history": _History,  # adapters.venue.HistorySource
    "fetch_trades": _Trades,  # adapters.venue.TradeSource
    "fetch_instruments": _InstrumentRules,  # adapters.instrument_rules.InstrumentRuleSource
    "instruments": _Instruments,  # adapters.venue.InstrumentSource
    "fetch_option_chains": _OptionChains,  # adapters.option_chains.OptionChainSource
}
CAPABILITIES = tuple(_OFFERED_BY)


@functools.cache
def _filter_class(offered: tuple[str, ...]) -> type[AccountFilter]:
    """The filter class offering exactly `offered` (in `CAPABILITIES` order)."""
    if not offered:
        return AccountFilter
    bases = tuple(_OFFERED_BY[name] for name in offered)
    return type(f"AccountFilter[{', '.join(offered)}]", bases, {"__module__": __name__})


def owned_by(partition_map: PartitionMap, partition: int) -> Callable[[str], bool]:
    """The predicate `AccountFilter` filters with: does `partition` own this account?"""

    def owns(account_id: str) -> bool:
        return partition_map.owner(account_id) == partition

    return owns
