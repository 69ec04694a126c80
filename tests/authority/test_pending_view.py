"""The book a check reads after an approval (pending.applied / _view): its strategy
tables are overlays read on demand; they must read exactly as the tables summed in
full did (values, exponents, key order), and a bracket's children must see them."""

from __future__ import annotations

from decimal import Decimal

from bastion.engine.authority.book import ZERO, book_of
from bastion.engine.authority.order_list import order_list_from_dict
from bastion.engine.authority.order_list_check import check_list
from bastion.engine.authority.pending import applied
from bastion.engine.authority.pending_orders import Pending, PendingOrder, aggregated
from bastion.engine.evaluation.compiled import CompiledPolicySet
from bastion.engine.state import State
from tests.authority.builders import ACCOUNT, NOW, SYMBOL, D, market, position, snapshot

OTHER = "ABC"


def _summed(base: dict[str, Decimal], added: dict[str, Decimal]) -> dict[str, Decimal]:
    """The strategies' tables as they were built before the overlay: copied, then summed."""
    table = dict(base)
    for key, value in added.items():
        table[key] = table.get(key, ZERO) + value
    return table


def test_view_when_orders_pending_then_strategy_tables_read_as_summed_in_full() -> None:
    """A held strategy plus its pending order, a manual position, and a strategy held only
    through a pending order (value with a positive exponent): the same keys in the same
    order, the same values written the same way, and a missing strategy is missing."""
    made = snapshot(
        positions=[
            position(quantity=10, strategy="s1"),
            position(OTHER, 4, strategy="s2", manual=True),
        ],
        markets={SYMBOL: market(), OTHER: market()},
    )
    book = book_of(made).accounts[ACCOUNT]
    orders = (
        PendingOrder(ACCOUNT, SYMBOL, "long", "s1", D("1.50"), D(100), D(2), NOW),
        PendingOrder(ACCOUNT, OTHER, "short", "s3", D("1E+2"), D(1), D(0), NOW),
    )
    pending = aggregated(orders)
    view = applied(book, Pending({ACCOUNT: pending}), made, NOW, None)
    assert view is not book and view.pending is pending
    for read, base in (
        (view.strategy_exposure_usd, book.strategy_exposure_usd),
        (view.strategy_exposure_with_manual_usd, book.strategy_exposure_with_manual_usd),
    ):
        expected = _summed(dict(base), dict(pending.strategies))
        assert list(read) == list(expected) and len(read) == len(expected)
        assert {k: str(v) for k, v in read.items()} == {k: str(v) for k, v in expected.items()}
        assert "missing" not in read and read.get("missing") is None
    assert view.strategy_exposure("s3", include_manual=False) == Decimal(100)
    assert view.strategy_exposure("s2", include_manual=False) == ZERO  # manual only
    assert view.symbols[SYMBOL].long_units == Decimal("11.50")


def test_check_list_when_bracket_checked_twice_then_same_answer_every_time(
    default_policies: CompiledPolicySet,
) -> None:
    """The children read the view the entry's approval makes (built once per state, kept
    for the next child): a second check of the same bracket answers byte for byte alike,
    each child's record naming the pending entry."""
    document = {
        "id": "B-1",
        "contingency": "bracket",
        "orders": [
            {"role": "entry", "action": "open", "symbol": SYMBOL, "target_size": 100},
            {
                "role": "stop_loss",
                "action": "close",
                "symbol": SYMBOL,
                "order_type": "stop",
                "trigger_price": 95,
            },
            {
                "role": "take_profit",
                "action": "close",
                "symbol": SYMBOL,
                "order_type": "limit",
                "price": 110,
            },
        ],
    }
    listed, made = order_list_from_dict(document), snapshot()
    first = check_list(default_policies, listed, made, State(), NOW).to_dict()
    second = check_list(default_policies, listed, made, State(), NOW).to_dict()
    assert first == second
    for leg in first["legs"][1:]:
        assert any("includes 1 pending order" in reason for reason in leg["reasons"])
