"""The sim's listed option chain: a skew, a term structure, sane quotes, one seed → one chain."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.adapters.builder import BuilderState, SnapshotBuilder
from bastion.adapters.option_chains import REFRESH_S
from bastion.adapters.sim import SimAdapter
from bastion.adapters.sim_options import listed_expiries, synthetic_chain, volatility_at
from bastion.adapters.sources.clock import ManualClock
from bastion.engine.evaluation.passes import roll_leg
from bastion.engine.policy.kinds.roll import RollSpec
from bastion.engine.policy.loader import load_policies
from bastion.engine.roll import PricedBy, analyse_roll, find_chain
from bastion.engine.roll.pricing import strike_increment
from bastion.engine.snapshot.model import ListedOption, OptionChain
from tests.conftest import POLICIES

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)  # a Friday
SPOT = Decimal(585)


def chain(seed: int = 7, base_vol: float = 0.18) -> OptionChain:
    return synthetic_chain("SPY", spot=SPOT, base_vol=base_vol, now=NOW, seed=seed)


def at(listed: OptionChain, option_type: str, strike: int, expiry: datetime) -> ListedOption:
    return next(
        c
        for c in listed.contracts
        if (c.option_type, c.strike_usd, c.expires_at) == (option_type, strike, expiry)
    )


def test_chain_when_same_seed_then_identical_and_other_seed_then_other_quotes() -> None:
    """Deterministic under the seed: the spreads' random widening follows it."""
    assert chain(7) == chain(7)
    assert [c.ask_usd for c in chain(7).contracts] != [c.ask_usd for c in chain(8).contracts]


def test_volatility_when_strike_below_spot_then_higher_skew() -> None:
    """Equity skew: an out-of-the-money put strike trades at a higher vol than at the money,
    and the skew flattens with time to expiry."""
    near, far = 30 / 365, 180 / 365
    assert volatility_at(0.18, 585, 530, near) > volatility_at(0.18, 585, 585, near)
    near_skew = volatility_at(0.18, 585, 530, near) - volatility_at(0.18, 585, 585, near)
    far_skew = volatility_at(0.18, 585, 530, far) - volatility_at(0.18, 585, 585, far)
    assert near_skew > far_skew > 0


def test_chain_when_expiry_later_then_at_the_money_vol_higher() -> None:
    """An upward term structure: the ATM implied vol rises expiry by expiry."""
    listed = chain()
    expiries = sorted({c.expires_at for c in listed.contracts})
    atm = [at(listed, "call", 585, expiry).implied_volatility for expiry in expiries]
    assert atm == sorted(atm) and atm[0] < atm[-1]


def test_chain_when_listed_then_quotes_sane_and_strikes_on_the_grid() -> None:
    """0 ≤ bid < ask, at least a cent wide; strikes on the listed increment; Fridays."""
    listed = chain()
    increment = strike_increment(SPOT)
    for contract in listed.contracts:
        assert Decimal(0) <= contract.bid_usd < contract.ask_usd
        assert contract.strike_usd % increment == 0
        assert contract.expires_at.weekday() == 4 and contract.expires_at > NOW
        assert contract.delta is not None and -1 <= contract.delta <= 1
        assert math.isclose(float(contract.strike_usd), 585, rel_tol=0.13)


def test_listed_expiries_when_counted_then_weeklies_then_monthly_third_fridays() -> None:
    """Fridays for nine weeks, then third Fridays to about six months."""
    days = [expiry.date() for expiry in listed_expiries(date(2026, 11, 20))]
    assert days[:2] == [date(2026, 11, 27), date(2026, 12, 4)]
    assert date(2027, 3, 19) in days and date(2027, 3, 12) not in days  # monthly only
    assert all(15 <= day.day <= 21 for day in days if (day - date(2026, 11, 20)).days > 63)


def shipped_roll() -> RollSpec:
    spec = load_policies([POLICIES / "roll.yaml"]).policies[0].spec
    assert isinstance(spec, RollSpec)
    return spec


@pytest.mark.parametrize("seed", [7, 11])
def test_sim_when_built_then_snapshot_lists_the_put_chain_and_roll_uses_it(seed: int) -> None:
    """The sim's SPY put: its chain is in the snapshot, its own contract is listed, and
    the roll analysis prices only listed contracts."""
    adapter = SimAdapter(ManualClock(), seed=seed)
    builder = SnapshotBuilder(adapter.builder_config())
    now = adapter.now()
    poll = builder.poll(adapter, now=now, state=BuilderState())
    built = builder.build(poll, now=now, state=BuilderState(), regime=adapter.regime())
    snapshot = built.snapshot
    assert set(snapshot.option_chains) == {"SPY"}
    put = next(p for p in snapshot.positions if p.option is not None)
    listed = snapshot.option_chains["SPY"]
    assert put.symbol in {c.symbol for c in listed.contracts}
    leg = roll_leg(put)
    assert leg is not None
    found = find_chain(snapshot.option_chains, leg.symbol)
    analysis = analyse_roll(leg, shipped_roll(), now, urgency="high", chain=found)
    assert analysis.priced_by is PricedBy.LISTED
    terms = {(c.strike_usd, c.expires_at) for c in listed.contracts}
    assert analysis.candidates
    assert all((c.strike, c.expiry) in terms for c in analysis.candidates)


def test_sim_when_underlying_not_optionable_then_left_out_with_reason() -> None:
    """BTC-USD has no listed options in the sim."""
    fetched = SimAdapter(ManualClock(), seed=7).fetch_option_chains(["BTC-USD"])
    assert dict(fetched.chains) == {}
    assert fetched.left_out == (
        ("option_chains['BTC-USD']", "sim lists options on SPY, QQQ, AAPL"),
    )


def test_sim_when_polled_within_five_minutes_then_same_chain_then_requoted() -> None:
    """The sim reads its chain again every REFRESH_S of market time: within, the same
    fetch (quotes keep their time); after, new quotes stamped at the new time."""
    wall = ManualClock()
    sim = SimAdapter(wall, speed=60, seed=7)
    first = sim.fetch_option_chains(["SPY"])
    quoted = first.chains["SPY"].as_of
    wall.advance(REFRESH_S / 60 - 1)  # wall seconds: market time runs 60x
    assert sim.fetch_option_chains(["SPY"]) is first
    wall.advance(1)
    again = sim.fetch_option_chains(["SPY"])
    assert again.chains["SPY"].as_of == quoted + timedelta(seconds=REFRESH_S)
