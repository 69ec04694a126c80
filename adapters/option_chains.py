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

Times: the builder's ``now`` is taken before the poll, so a chain read (and quotes made)
during the poll are stamped a little after it. Up to ``max_clock_skew_s`` later counts as
``now``; further ahead is a clock error and the chain (or the contract) is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from bastion.adapters.venue import VenuePosition
from bastion.engine.snapshot.built import record_refused
from bastion.engine.snapshot.consistency import chain_problems
from bastion.engine.snapshot.fields import RECORDS
from bastion.engine.snapshot.model import ListedOption, OptionChain
from bastion.engine.snapshot.typed import field_problems

_CONTRACT_FIELDS = tuple(field.name for field in RECORDS["ListedOption"].fields)


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
