"""Pending exposure: orders approved since the snapshot count until a snapshot shows them.

Equity 100 000 USD, XYZ and ABC at 100 USD (ATR 2, atr_multiple 2: 4 USD risk per
unit), the snapshot's as_of is NOW. Every limit starts loose (conftest): each test
tightens the one it is about. SETTLE_S = 5 s: a snapshot that much newer than an
approval shows it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from bastion.engine.authority import DecisionAuthority
from bastion.engine.authority.pending_orders import (
    SETTLE_S,
    Pending,
    PendingOrder,
    aggregated,
    single,
)
from bastion.engine.state import AuthorityState, State, StateError
from tests.authority.builders import (
    ACCOUNT,
    NOW,
    SYMBOL,
    D,
    decide,
    market,
    position,
    request,
    snapshot,
    summary,
)
from tests.authority.conftest import PolicyFactory

OTHER = "ABC"
MARKETS = {SYMBOL: market(), OTHER: market()}
PER_ASSET = {"risk": {"max_per_asset_pct": 5}}  # 5 000 USD: 50 units


def two_symbols(*, as_of_s: int = 0, **changes: Any) -> Any:
    """XYZ and ABC; the snapshot taken `as_of_s` seconds after NOW."""
    made = snapshot(markets=MARKETS, **changes)
    if not as_of_s:
        return made
    later = (NOW + timedelta(seconds=as_of_s)).isoformat()
    return type(made).from_dict({**made.to_dict(), "as_of": later})


def opened(policies: PolicyFactory, limits: Any, units: int = 30, **options: Any) -> State:
    """The state after one approved open of `units` XYZ at NOW (nothing held before)."""
    first = decide(
        policies(limits=limits),
        request("open", current_size=0, target_size=units, strategy_id="s1"),
        two_symbols(),
        State(),
        NOW,
        **options,
    )
    assert first.approved, first.reasons
    return first.state


# -- the bug: two back-to-back opens -------------------------------------------------------


def test_second_open_when_first_approved_since_snapshot_then_sees_its_exposure(
    policies: PolicyFactory,
) -> None:
    """Golden case (failed on main: both approved at 30 units, 6 000 USD in a 5 000 USD
    cap): the second open of XYZ sees the first one's 3 000 USD and is downsized to 20."""
    memory = opened(policies, PER_ASSET)
    second = decide(
        policies(limits=PER_ASSET),
        request("open", current_size=0, target_size=30, strategy_id="s1"),
        two_symbols(),
        memory,
        NOW + timedelta(seconds=1),
    )
    assert summary(second) == ("downsized", True, D(20), ())
    assert "includes 1 pending order, 3000 USD (1 in XYZ, 3000 USD)" in second.reason
    assert "approved since the snapshot of 2026-11-20T15:30:00Z" in second.reason


def test_open_when_same_symbol_pending_and_no_current_size_then_held_units_include_it(
    policies: PolicyFactory,
) -> None:
    """Without current_size the units held are the snapshot's plus the pending ones: a
    second open contradicts itself, an increase counts from 30 units."""
    memory = opened(policies, PER_ASSET)
    again = decide(
        policies(limits=PER_ASSET), request("open", target_size=30), two_symbols(), memory
    )
    assert summary(again) == ("denied", False, None, ("request",))
    more = decide(
        policies(limits=PER_ASSET), request("increase", target_size=60), two_symbols(), memory
    )
    assert summary(more) == ("downsized", True, D(50), ())


def test_strategy_cap_when_other_symbol_pending_then_counted(policies: PolicyFactory) -> None:
    """A pending XYZ order of strategy s1 counts against s1's cap on an ABC order."""
    limits = {"risk": {"max_per_strategy_pct": {"s1": 5}}}
    memory = opened(policies, limits)
    second = decide(
        policies(limits=limits),
        request("open", OTHER, target_size=30, strategy_id="s1"),
        two_symbols(),
        memory,
    )
    assert summary(second) == ("downsized", True, D(20), ())
    other_strategy = decide(
        policies(limits=limits),
        request("open", OTHER, target_size=30, strategy_id="s2"),
        two_symbols(),
        memory,
    )
    assert summary(other_strategy) == ("approved", True, D(30), ())


def test_portfolio_risk_when_order_pending_then_counted(policies: PolicyFactory) -> None:
    """1 % portfolio risk is 1 000 USD, 250 units at 4 USD: 200 pending leave 50."""
    limits = {"risk": {"max_portfolio_risk_pct": 1, "max_risk_per_trade_pct": 1}}
    memory = opened(policies, limits, units=200)
    second = decide(
        policies(limits=limits), request("open", OTHER, target_size=100), two_symbols(), memory
    )
    assert summary(second) == ("downsized", True, D(50), ())


def test_open_positions_when_pending_open_in_new_symbol_then_counted(
    policies: PolicyFactory,
) -> None:
    """A symbol held only through a pending order is an open position."""
    limits = {"risk": {"max_open_positions": 1}}
    memory = opened(policies, limits)
    second = decide(
        policies(limits=limits), request("open", OTHER, target_size=1), two_symbols(), memory
    )
    assert summary(second) == ("denied", False, None, ("limit.max_open_positions",))


def test_margin_when_order_pending_then_cash_reduced(policies: PolicyFactory) -> None:
    """Cash 5 000 USD, no margin: 3 000 USD pending leave 2 000 USD, 20 units."""
    limits = {"region": {"margin_allowed": False}}
    first = decide(
        policies(limits=limits),
        request("open", current_size=0, target_size=30),
        two_symbols(cash=5_000),
    )
    second = decide(
        policies(limits=limits),
        request("open", OTHER, target_size=30),
        two_symbols(cash=5_000),
        first.state,
    )
    assert summary(second) == ("downsized", True, D(20), ())


# -- until when an order counts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("after_s", "expected"),
    [(299, ("downsized", True, D(20), ())), (300, ("approved", True, D(30), ()))],
    ids=["inside-ttl", "at-ttl"],
)
def test_pending_when_ttl_passes_then_no_longer_counted(
    policies: PolicyFactory, after_s: int, expected: Any
) -> None:
    """The default pending_ttl_s is 300 s: at 300 s after the approval it has expired."""
    memory = opened(policies, PER_ASSET)
    later = decide(
        policies(limits=PER_ASSET),
        request("open", current_size=0, target_size=30),
        two_symbols(),
        memory,
        NOW + timedelta(seconds=after_s),
    )
    assert summary(later) == expected


def test_pending_when_policy_sets_ttl_then_that_ttl_applies(policies: PolicyFactory) -> None:
    """orders.pending_ttl_s: 60 — counted at 59 s, expired at 60 s; 0 counts none."""
    limits = {**PER_ASSET, "orders": {"pending_ttl_s": 60}}
    memory = opened(policies, limits)
    order = request("open", current_size=0, target_size=30)
    inside = decide(
        policies(limits=limits), order, two_symbols(), memory, NOW + timedelta(seconds=59)
    )
    assert inside.approved_size == 20
    at = NOW + timedelta(seconds=60)
    assert decide(policies(limits=limits), order, two_symbols(), memory, at).approved_size == 30
    off = {**PER_ASSET, "orders": {"pending_ttl_s": 0}}
    assert not opened(policies, off).authority.pending


@pytest.mark.parametrize(
    ("as_of_s", "counted"),
    [(SETTLE_S - 1, True), (SETTLE_S, False), (60, False)],
    ids=["within-settle", "at-settle", "later"],
)
def test_pending_when_newer_snapshot_shows_the_fill_then_dropped(
    policies: PolicyFactory, as_of_s: int, counted: bool
) -> None:
    """A snapshot whose as_of is SETTLE_S or more after the approval shows the order
    (here it holds the 30 units): it is no longer counted twice."""
    memory = opened(policies, PER_ASSET)
    newer = two_symbols(positions=[position(SYMBOL, 30)], as_of_s=as_of_s)
    result = decide(
        policies(limits=PER_ASSET),
        request("increase", target_size=50),
        newer,
        memory,
        NOW + timedelta(seconds=as_of_s),
    )
    # counted twice: 60 units held already > 50; shown once: 30 held, room for 20
    expected = ("denied", False, None, ("request",)) if counted else ("approved", True, D(50), ())
    assert summary(result) == expected


def test_approval_when_newer_snapshot_then_dropped_orders_leave_the_state(
    policies: PolicyFactory,
) -> None:
    """The next approval drops what the snapshot shows: the state keeps only its order."""
    memory = opened(policies, PER_ASSET)
    newer = two_symbols(as_of_s=30)
    result = decide(
        policies(limits=PER_ASSET),
        request("open", OTHER, target_size=10),
        newer,
        memory,
        NOW + timedelta(seconds=31),
    )
    orders = list(result.state.authority.pending.orders())
    assert [(o.symbol, o.units) for o in orders] == [(OTHER, D(10))]


def test_approval_when_other_account_shown_by_snapshot_then_its_orders_dropped_too() -> None:
    """An approval also drops another account's orders the snapshot shows (not those it
    does not); status lists only what is still counted."""
    shown = PendingOrder("acct-2", SYMBOL, "long", "", D(1), D(100), D(2), NOW)
    fresh = PendingOrder(
        "acct-3", SYMBOL, "long", "", D(1), D(100), D(2), NOW + timedelta(seconds=30)
    )
    pending = Pending.from_list([shown.to_dict(), fresh.to_dict()])
    later = NOW + timedelta(seconds=SETTLE_S)
    kept = pending.shown_by(later, keep="acct-2")
    assert kept is pending  # acct-2 kept by name, acct-3 not shown yet
    assert list(pending.shown_by(later).accounts) == ["acct-3"]
    assert list(pending.summary(later, later)) == ["acct-3"]
    assert pending.summary(later)["acct-2"]["oldest_age_s"] == str(SETTLE_S)


# -- what counts ---------------------------------------------------------------------------


def test_report_when_sent_though_denied_then_counted_at_its_size(policies: PolicyFactory) -> None:
    """An order reported sent counts whatever the answer, at the size it was sent."""
    compiled = policies(limits=PER_ASSET)
    sent = decide(
        compiled, request("open", current_size=0, target_size=80), two_symbols(), State(), sent=True
    )
    assert sent.outcome == "downsized"  # 80 asked, 50 allowed: but 80 were sent
    (order,) = sent.state.authority.pending.orders()
    assert (order.units, order.sent) == (D(80), True)
    after = decide(compiled, request("open", OTHER, target_size=1), two_symbols(), sent.state)
    assert after.approved  # another symbol: its own cap
    same = decide(
        compiled, request("open", current_size=0, target_size=1), two_symbols(), sent.state
    )
    assert summary(same) == ("denied", False, None, ("limit.max_per_asset",))
    assert "1 reported sent" in same.reason


def test_check_when_denied_or_reducing_then_nothing_pending(policies: PolicyFactory) -> None:
    """A denial (not sent), a close and a decrease add nothing; nor does a question
    asked through DecisionAuthority.check."""
    compiled = policies(limits={"risk": {"max_open_positions": 0}})
    denied = decide(compiled, request("open", current_size=0, target_size=5), two_symbols())
    assert not denied.approved and not denied.state.authority.pending
    held = two_symbols(positions=[position(SYMBOL, 10)])
    for order in (request("close"), request("decrease", target_size=5)):
        assert not decide(policies(), order, held).state.authority.pending
    authority = DecisionAuthority(policies())
    authority.check(request("open", current_size=0, target_size=5), two_symbols(), NOW)
    assert not authority.state.authority.pending


def test_authority_when_two_opens_back_to_back_then_second_sees_first(
    policies: PolicyFactory,
) -> None:
    """The stateful front door remembers the pending order between its calls, and keeps
    it when it adopts the evaluator's newer state."""
    authority = DecisionAuthority(policies(limits=PER_ASSET))
    order = request("open", current_size=0, target_size=30)
    assert authority.can_execute(order, two_symbols(), NOW).approved_size == 30
    authority.adopt(State())
    assert len(authority.state.authority.pending) == 1
    second = authority.can_execute(order, two_symbols(), NOW + timedelta(seconds=1))
    assert second.approved_size == 20


def test_trace_when_pending_counted_then_check_names_orders_and_value(
    policies: PolicyFactory,
) -> None:
    """The audit record's trace has a "pending" check after the facts, with the values."""
    memory = opened(policies, PER_ASSET)
    result = decide(
        policies(limits=PER_ASSET),
        request("open", OTHER, target_size=10),
        two_symbols(),
        memory,
    )
    names = [check.name for check in result.decision.trace]
    assert names[:2] == ["facts", "pending"]
    check = result.decision.trace[1]
    assert dict(check.values) == {
        "pending_orders": "1",
        "pending_value_usd": "3000",
        "pending_risk_atr_usd": "60",
    }
    assert result.decision.reasons[-1] == check.detail
    fresh = decide(
        policies(limits=PER_ASSET), request("open", OTHER, target_size=10), two_symbols()
    )
    assert "pending" not in [check.name for check in fresh.decision.trace]


# -- state -----------------------------------------------------------------------------------


def test_state_when_round_tripped_then_pending_orders_and_totals_kept(
    policies: PolicyFactory,
) -> None:
    """to_dict / from_dict keep every pending order; the totals are rebuilt from them."""
    memory = opened(policies, PER_ASSET)
    memory = decide(
        policies(limits=PER_ASSET),
        request("open", OTHER, target_size=5, strategy_id="s2", id="ord-7"),
        two_symbols(),
        memory,
        NOW + timedelta(seconds=2),
        sent=True,
    ).state
    data = memory.to_dict()
    assert [o["order_id"] for o in data["authority"]["pending"]] == ["", "ord-7"]
    back = State.from_dict(data)
    assert back.authority.pending.to_list() == memory.authority.pending.to_list()
    account = back.authority.pending.accounts[ACCOUNT]
    assert (account.value_usd, account.risk_atr_usd, account.sent) == (D(3500), D(70), 1)
    assert dict(account.strategies) == {"s1": D(3000), "s2": D(500)}
    assert back.to_dict() == data


def test_state_when_file_predates_pending_then_loads_empty() -> None:
    """A state file written before pending existed loads, with nothing pending, and an
    empty pending list is not written."""
    old = State(authority=AuthorityState(submits={ACCOUNT: (NOW,)})).to_dict()
    assert "pending" not in old["authority"]
    assert State.from_dict(old).authority.pending == Pending()


@pytest.mark.parametrize(
    "change",
    [{"side": "sideways"}, {"units": "0"}, {"units": "-1"}, {"approved_at": "2026-11-20T15:30:00"}],
)
def test_state_when_pending_order_malformed_then_refused(change: dict[str, Any]) -> None:
    """A malformed pending order is a StateError naming the field."""
    order = PendingOrder(ACCOUNT, SYMBOL, "long", "s1", D(1), D(100), D(2), NOW).to_dict()
    data = State().to_dict() | {"authority": {"pending": [order | change]}}
    with pytest.raises(StateError, match="pending order"):
        State.from_dict(data)


def test_pending_when_orders_read_back_out_of_order_then_sorted_by_approval() -> None:
    """Saved orders are kept oldest first whatever order the file lists them in."""
    late = PendingOrder(ACCOUNT, SYMBOL, "long", "", D(1), D(100), D(2), NOW + timedelta(seconds=1))
    early = PendingOrder(ACCOUNT, OTHER, "short", "", D(2), D(50), D(1), NOW)
    pending = Pending.from_list([late.to_dict(), early.to_dict()])
    assert [o.symbol for o in pending.orders()] == [OTHER, SYMBOL]
    account = pending.accounts[ACCOUNT]
    assert account.symbols[OTHER].short_units == 2 and account.value_usd == Decimal(200)


@pytest.mark.parametrize(
    "order",
    [
        PendingOrder(ACCOUNT, SYMBOL, "long", "s1", D("1.50"), D(100), D(2), NOW),
        PendingOrder(ACCOUNT, OTHER, "short", "", D("1E+2"), D("0.5"), D(0), NOW, True, "o-1"),
    ],
)
def test_single_when_first_order_of_account_then_same_as_aggregated(order: PendingOrder) -> None:
    """The hot path's one-order aggregate equals `aggregated((order,))`, exponents included."""
    fast, slow = single(order), aggregated((order,))
    assert fast == slow
    assert [str(v) for v in (fast.value_usd, fast.risk_atr_usd, *fast.strategies.values())] == [
        str(v) for v in (slow.value_usd, slow.risk_atr_usd, *slow.strategies.values())
    ]
    assert str(fast.strategy_symbols) == str(slow.strategy_symbols) and fast.sent == slow.sent
