"""`AccountFilter` offers exactly its adapter's optional capabilities, visible to the
builder's `isinstance` checks on every Python: 3.11 looks a runtime_checkable Protocol's
members up with `hasattr`, 3.12+ with `inspect.getattr_static` (no `__getattr__`)."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bastion.adapters.instrument_rules import InstrumentFetch, InstrumentRuleSource
from bastion.adapters.option_chains import ChainFetch, OptionChainSource
from bastion.adapters.single_account import SingleAccountScope
from bastion.adapters.venue import (
    Fill,
    HistorySource,
    InstrumentSource,
    TradeSource,
    VenueAccount,
    VenuePosition,
)
from bastion.engine.snapshot import ClosedTrade, Instrument
from bastion.service.ray.accounts import CAPABILITIES, AccountFilter

AT = datetime(2026, 1, 5, tzinfo=UTC)
ACCOUNTS = ("mine-1", "theirs-1", "mine-2")
INSTRUMENTS = {"SPY": Instrument("SPY", "equity")}
RULES = InstrumentFetch(INSTRUMENTS)
CHAINS = ChainFetch(left_out=(("SPY", "not listed"),))


def owns(account_id: str) -> bool:
    """This partition's accounts (module level: a filter over it pickles)."""
    return account_id.startswith("mine")


def _trade(account: str) -> ClosedTrade:
    prices = (Decimal(500), Decimal(490), Decimal(-10), Decimal(-2))
    return ClosedTrade(
        f"t-{account}", account, "SPY", "long", "", Decimal(1), AT, AT, *prices, "signal"
    )


class Plain:
    """An adapter with the account side only: no optional capability."""

    name = "fake"

    def fetch_accounts(self) -> tuple[VenueAccount, ...]:
        return tuple(VenueAccount(a, "gen", Decimal(1), Decimal(1)) for a in ACCOUNTS)

    def fetch_positions(self) -> tuple[VenuePosition, ...]:
        return ()

    def fetch_fills(self, since: datetime) -> tuple[Fill, ...]:
        return tuple(
            Fill(f"f-{a}", a, "SPY", "buy", Decimal(1), Decimal(500), AT) for a in ACCOUNTS
        )


class WithHistory(Plain):
    def fetch_history(
        self, fills_since: datetime, trades_since: datetime
    ) -> tuple[tuple[Fill, ...], tuple[ClosedTrade, ...]]:
        return self.fetch_fills(fills_since), tuple(_trade(a) for a in ACCOUNTS)


class WithTrades(Plain):
    def fetch_trades(self, since: datetime) -> tuple[ClosedTrade, ...]:
        return tuple(_trade(a) for a in ACCOUNTS)


class WithRules(Plain):
    def fetch_instruments(
        self, positions: Sequence[VenuePosition], symbols: Sequence[str]
    ) -> InstrumentFetch:
        return RULES


class WithInstruments(Plain):
    def instruments(self, positions: Sequence[VenuePosition]) -> Mapping[str, Instrument]:
        return INSTRUMENTS


class WithChains(Plain):
    def fetch_option_chains(self, underlyings: Sequence[str]) -> ChainFetch:
        return CHAINS


class WithAll(WithHistory, WithTrades, WithRules, WithInstruments, WithChains):
    """Every optional capability (as the real venue adapters)."""


# (Protocol, the adapter class that has it): one case per optional capability.
CASES: list[tuple[type[Any], type[Plain]]] = [
    (HistorySource, WithHistory),
    (TradeSource, WithTrades),
    (InstrumentRuleSource, WithRules),
    (InstrumentSource, WithInstruments),
    (OptionChainSource, WithChains),
]


def _members(protocol: type[Any]) -> set[str]:
    """The methods a (method-only) Protocol names."""
    return {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}


def _is_static_instance(instance: object, protocol: type[Any]) -> bool:
    """Python 3.12's runtime_checkable `isinstance`, on any Python: every member found by
    `inspect.getattr_static` (never `__getattr__`) and not None."""
    for member in _members(protocol):
        try:
            found = inspect.getattr_static(instance, member)
        except AttributeError:
            return False
        if found is None:
            return False
    return True


def test_capabilities_when_listed_then_every_optional_protocol_of_the_builder_is_there() -> None:
    """The filter knows each Protocol the builder picks with `isinstance`."""
    assert sorted(CAPABILITIES) == sorted(m for protocol, _ in CASES for m in _members(protocol))


@pytest.mark.parametrize(("protocol", "adapter"), CASES, ids=[p.__name__ for p, _ in CASES])
def test_filter_when_adapter_has_a_capability_then_found_without_getattr(
    protocol: type[Any], adapter: type[Plain]
) -> None:
    """Over an adapter with it: an instance by `getattr_static` (3.12) and `isinstance`."""
    venue = AccountFilter(adapter(), owns)
    assert _is_static_instance(venue, protocol)
    assert isinstance(venue, protocol)
    assert isinstance(venue, AccountFilter)


@pytest.mark.parametrize(("protocol", "adapter"), CASES, ids=[p.__name__ for p, _ in CASES])
def test_filter_when_adapter_lacks_a_capability_then_not_offered(
    protocol: type[Any], adapter: type[Plain]
) -> None:
    """Over an adapter without it (the others present): no instance, by either check."""
    others = [other for _, other in CASES if other is not adapter]
    without: Any = type("Without", tuple(others), {})()
    for venue in (AccountFilter(Plain(), owns), AccountFilter(without, owns)):
        assert not _is_static_instance(venue, protocol)
        assert not isinstance(venue, protocol)
        assert not hasattr(venue, next(iter(_members(protocol))))


def test_filter_when_adapter_delegates_by_getattr_then_its_capabilities_are_offered() -> None:
    """A real venue's partition scope (SingleAccountScope) passes market data on by
    `__getattr__`: the filter over it still offers the order rules and option chains."""
    scope = SingleAccountScope(WithAll(), owns, lambda: "mine-1", lambda: "mine-1")
    assert not _is_static_instance(scope, InstrumentRuleSource)  # why the filter asks getattr
    venue = AccountFilter(scope, owns)
    for protocol, _ in CASES:
        assert _is_static_instance(venue, protocol), protocol.__name__


def test_filter_when_capabilities_are_used_then_account_side_cut_and_market_side_passed() -> None:
    """Fills and trades: this partition's accounts only; rules, instruments, chains: as is."""
    venue: Any = AccountFilter(WithAll(), owns)
    fills, trades = venue.fetch_history(AT, AT)
    assert [f.account_id for f in fills] == ["mine-1", "mine-2"]
    assert [t.account_id for t in trades] == ["mine-1", "mine-2"]
    assert [t.account_id for t in venue.fetch_trades(AT)] == ["mine-1", "mine-2"]
    assert [f.account_id for f in venue.fetch_fills(AT)] == ["mine-1", "mine-2"]
    assert venue.fetch_instruments((), ["SPY"]) is RULES
    assert venue.instruments(()) is INSTRUMENTS
    assert venue.fetch_option_chains(["SPY"]) is CHAINS


def test_filter_when_made_twice_for_one_set_then_one_class_which_pickles() -> None:
    """One class per set of capabilities, made once; a pickled filter comes back alike."""
    first, second = AccountFilter(WithAll(), owns), AccountFilter(WithAll(), owns)
    assert type(first) is type(second)
    assert type(AccountFilter(Plain(), owns)) is AccountFilter
    again: Any = pickle.loads(pickle.dumps(first))
    assert type(again) is type(first)
    assert [t.account_id for t in again.fetch_trades(AT)] == ["mine-1", "mine-2"]
