"""Listed option chains from a venue into the snapshot's ``option_chains``.

An adapter that can list options implements :class:`OptionChainSource` (alpaca, sim).
The snapshot builder asks it for the chains of the underlyings of the option positions
(:func:`underlyings_of`) and turns them into snapshot records with :func:`chain_records`.

A venue's chain is untrusted like any venue data, but one bad contract is one bad
contract: a contract that breaks a field rule (an ask of 0, a negative strike) or a
consistency rule (a crossed quote, an expiry not after the chain's time, a symbol listed
twice) is left out of the snapshot and reported, never zero-filled; every other contract
is kept. Roll analysis then never sees it, and says how many contracts it could use.
A chain the venue could not give (an error for that underlying) is absent, so the roll
analysis of its positions is priced by the model and marked so.

Chains are read on a cadence of their own (:class:`ChainCache`): a chain is hundreds
of contracts — read on every poll it was most of a cycle's CPU on the sim and one more
venue request per underlying per poll on Alpaca — and a roll does not need quotes newer
than a few minutes. Each underlying's chain is read again once ``refresh_s`` (300 s of
the adapter's clock) have passed; in between, the same chain (its quotes keep their own
times: the roll analysis refuses quotes older than 900 s). A failed read keeps the last
chain and says so; it is tried again after ``retry_s``.

Times: the builder's ``now`` is taken before the poll, so a chain read (and quotes made)
during the poll are stamped a little after it. Up to ``max_clock_skew_s`` later counts as
``now``; further ahead is a clock error and the chain (or the contract) is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from bastion.adapters.venue import VenuePosition
from bastion.engine.snapshot.built import record_refused
from bastion.engine.snapshot.consistency import chain_problems
from bastion.engine.snapshot.fields import RECORDS
from bastion.engine.snapshot.model import ListedOption, OptionChain
from bastion.engine.snapshot.typed import field_problems

_CONTRACT_FIELDS = tuple(field.name for field in RECORDS["ListedOption"].fields)
REFRESH_S = 300.0  # a chain is read again after this long (the roll refuses quotes > 900 s)
RETRY_S = 60.0  # a chain whose read failed is asked again after this long, not every poll


@dataclass(frozen=True, slots=True)
class ChainFetch:
    """The chains a venue gave, by underlying, and what it left out: (what, why)."""

    chains: Mapping[str, OptionChain] = field(default_factory=dict)
    left_out: tuple[tuple[str, str], ...] = ()


@runtime_checkable
class OptionChainSource(Protocol):
    """An adapter that lists option contracts with their quotes."""

    def fetch_option_chains(self, underlyings: Sequence[str]) -> ChainFetch:
        """The chain of each underlying it lists; an underlying it cannot list is
        absent from ``chains`` and named in ``left_out`` with the reason."""
        ...


# One underlying's read: its chain (None: the venue lists none) and what was left out.
ChainRead = tuple[OptionChain | None, Sequence[tuple[str, str]]]


@dataclass(slots=True)
class _Held:
    read: ChainRead
    read_at: datetime


class ChainCache:
    """Each underlying's chain, read at most once per ``refresh_s`` of the injected `now`
    (see the module docstring); the same :class:`ChainFetch` object while nothing was
    read again, so what the builder derives from it can be kept too.

    Chains not held yet are all read at once; of the chains held and due, the oldest is
    read on this fetch and the others on the next ones (unless twice ``refresh_s`` old):
    so the reads, hundreds of contracts each, spread over consecutive polls instead of
    landing on one."""

    def __init__(
        self,
        now: Callable[[], datetime],
        refresh_s: float = REFRESH_S,
        retry_s: float = RETRY_S,
    ) -> None:
        self._now = now
        self._refresh = timedelta(seconds=refresh_s)
        self._retry = timedelta(seconds=retry_s)
        self._held: dict[str, _Held] = {}
        self._failed: dict[str, tuple[datetime, tuple[tuple[str, str], ...]]] = {}
        self._last: tuple[tuple[str, ...], ChainFetch] | None = None

    def fetch(self, underlyings: Sequence[str], read: Callable[[str], ChainRead]) -> ChainFetch:
        """The chains of ``underlyings``; ``read(underlying)`` runs only when one is due.
        A read that raises is the adapter's to word: it must return (None, [(what, why)])
        for an underlying it could not read."""
        now = self._now()
        wanted = tuple(underlyings)
        fresh = False
        refreshed = False  # chains held and due: one a fetch, so their reads spread out
        for underlying in sorted(wanted, key=self._read_at):
            held = self._held.get(underlying)
            if held is not None:
                age = now - held.read_at
                if age < self._refresh or (refreshed and age < 2 * self._refresh):
                    continue
            failed = self._failed.get(underlying)
            if failed is not None and now - failed[0] < self._retry:
                continue
            refreshed = refreshed or held is not None
            chain, left_out = read(underlying)
            fresh = True
            if chain is None and left_out:  # not read: keep the last chain, if any
                if held is not None and held.read[0] is not None:
                    kept = f"kept the chain read at {held.read_at.isoformat()}"
                    left_out = [(what, f"{why}; {kept}") for what, why in left_out]
                self._failed[underlying] = (now, tuple(left_out))
                continue
            self._failed.pop(underlying, None)
            self._held[underlying] = _Held((chain, tuple(left_out)), now)
        if not fresh and self._last is not None and self._last[0] == wanted:
            return self._last[1]
        chains: dict[str, OptionChain] = {}
        notes: list[tuple[str, str]] = []
        for underlying in wanted:
            held = self._held.get(underlying)
            if held is not None:
                chain, left_out = held.read
                if chain is not None:
                    chains[underlying] = chain
                notes.extend(left_out)
            failed = self._failed.get(underlying)
            if failed is not None:
                notes.extend(failed[1])
        fetched = ChainFetch(chains, tuple(notes))
        self._last = (wanted, fetched)
        return fetched

    def _read_at(self, underlying: str) -> datetime:
        held = self._held.get(underlying)
        return held.read_at if held is not None else datetime.min.replace(tzinfo=UTC)


def underlyings_of(positions: Iterable[VenuePosition]) -> list[str]:
    """The underlyings of the readable option positions, sorted, each once."""
    return sorted(
        {
            position.option.underlying_symbol
            for position in positions
            if position.option is not None and position.problem is None
        }
    )


def chain_records(
    fetched: ChainFetch, now: datetime, max_clock_skew_s: float = 5.0
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    """Snapshot records of the usable contracts, and (what, why) for each one left out."""
    left_out = list(fetched.left_out)
    records: dict[str, dict[str, Any]] = {}
    skew = timedelta(seconds=max_clock_skew_s)
    for underlying in sorted(fetched.chains):
        chain = fetched.chains[underlying]
        place = f"option_chains[{underlying!r}]"
        if chain.as_of > now + skew:
            left_out.append((place, f"as_of {chain.as_of.isoformat()} is ahead of now"))
            continue
        kept: list[dict[str, Any]] = []
        for contract in chain.contracts:
            record = _record(contract)
            quoted_at = record.get("quoted_at")
            if isinstance(quoted_at, datetime) and now < quoted_at <= now + skew:
                record["quoted_at"] = now
            if not record_refused("ListedOption", record):
                kept.append(record)
                continue
            problems = [f"{name} {why}" for name, why in field_problems("ListedOption", record)]
            left_out.append((f"{place} {contract.symbol}", "; ".join(problems) or "refused"))
        document = {"as_of": min(chain.as_of, now), "contracts": kept}
        refused = _inconsistent(underlying, document, now)
        if refused:
            for index in sorted(refused, reverse=True):
                left_out.append((f"{place} {kept[index]['symbol']}", refused[index]))
                del kept[index]
        records[underlying] = document
    return records, left_out


def _inconsistent(underlying: str, document: dict[str, Any], now: datetime) -> dict[int, str]:
    """Index of each contract a consistency rule refuses → why (the first rule broken)."""
    found: dict[int, str] = {}
    for path, problem in chain_problems(underlying, document, now):
        index = int(path.split(".contracts[", 1)[1].split("]", 1)[0])
        found.setdefault(index, problem)
    return found


def _record(contract: ListedOption) -> dict[str, Any]:
    values = {name: getattr(contract, name) for name in _CONTRACT_FIELDS}
    return {name: value for name, value in values.items() if value is not None}
