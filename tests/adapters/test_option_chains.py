"""chain_records: a venue's chain into snapshot records, one broken contract left out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.adapters.alpaca import AlpacaConfig
from bastion.adapters.option_chains import ChainFetch, chain_records
from bastion.engine.errors import AdapterError
from bastion.engine.snapshot.model import ListedOption, OptionChain

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
D = Decimal


def contract(strike: int, **changes: object) -> ListedOption:
    base = ListedOption(
        symbol=f"SPY270115P{strike * 1000:08d}",
        option_type="put",
        strike_usd=D(strike),
        expires_at=datetime(2027, 1, 15, 21, tzinfo=UTC),
        bid_usd=D("6.40"),
        ask_usd=D("6.70"),
        quoted_at=NOW - timedelta(seconds=30),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def records_of(*contracts: ListedOption, as_of: datetime = NOW) -> tuple[list[str], list[str]]:
    fetched = ChainFetch({"SPY": OptionChain(underlying="SPY", as_of=as_of, contracts=contracts)})
    records, left_out = chain_records(fetched, NOW, max_clock_skew_s=5)
    kept = [record["symbol"] for record in records.get("SPY", {}).get("contracts", [])]
    return kept, [f"{what}: {why}" for what, why in left_out]


def test_chain_records_when_all_valid_then_every_contract_kept() -> None:
    """Valid contracts pass through unchanged."""
    kept, left_out = records_of(contract(560), contract(565))
    assert kept == ["SPY270115P00560000", "SPY270115P00565000"]
    assert left_out == []


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"ask_usd": D(0)}, "ask_usd must be a positive number"),
        ({"bid_usd": D("7.00")}, "crossed quote"),
        ({"expires_at": NOW}, "not after the chain's as_of"),
        ({"delta": D("-1.2")}, "delta must be a number from -1 to 1"),
        ({"quoted_at": NOW + timedelta(seconds=60)}, "is after as_of"),
    ],
)
def test_chain_records_when_one_contract_broken_then_only_it_left_out(
    changes: dict[str, object], says: str
) -> None:
    """One broken contract is one left-out contract, named with the reason; the rest stay."""
    kept, left_out = records_of(contract(560, **changes), contract(565))
    assert kept == ["SPY270115P00565000"]
    (reason,) = left_out
    assert reason.startswith("option_chains['SPY'] SPY270115P00560000: ") and says in reason


def test_chain_records_when_symbol_twice_then_second_left_out() -> None:
    """A duplicate keeps the first listing."""
    kept, left_out = records_of(contract(560), contract(560, bid_usd=D("6.50")))
    assert kept == ["SPY270115P00560000"]
    assert len(left_out) == 1 and "is also contracts[0].symbol" in left_out[0]


def test_chain_records_when_stamped_within_skew_after_now_then_counted_as_now() -> None:
    """A chain read, and quotes made, during the poll (after `now`) are `now`."""
    late = NOW + timedelta(seconds=3)
    fetched = ChainFetch(
        {
            "SPY": OptionChain(
                underlying="SPY", as_of=late, contracts=(contract(560, quoted_at=late),)
            )
        }
    )
    records, left_out = chain_records(fetched, NOW, max_clock_skew_s=5)
    assert left_out == []
    assert records["SPY"]["as_of"] == NOW
    assert records["SPY"]["contracts"][0]["quoted_at"] == NOW


def test_chain_records_when_chain_ahead_beyond_skew_then_whole_chain_left_out() -> None:
    """A chain stamped a minute ahead is a clock error: not used at all."""
    kept, left_out = records_of(contract(560), as_of=NOW + timedelta(minutes=1))
    assert kept == []
    assert left_out == ["option_chains['SPY']: as_of 2026-11-20T15:31:00+00:00 is ahead of now"]


def test_alpaca_config_when_option_chain_days_zero_then_fatal() -> None:
    """option_chain_days must list at least one day of expiries."""
    from tests.venues.test_alpaca import offline_adapter  # noqa: PLC0415

    assert AlpacaConfig().option_chain_days == 90
    with pytest.raises(AdapterError, match="option_chain_days must be at least 1"):
        offline_adapter(option_chain_days=0)
