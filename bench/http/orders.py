"""The order mix of the HTTP benchmark: valid requests on the sim feed's own book.

The sim adapter holds three accounts (gen-01: SPY and AAPL long; rev-01: BTC-USD and
ETH-USD long, short SPY puts; com-01: QQQ long, opened by hand), see adapters/sim.py.
Every body below is a valid request for an account and symbol the sim snapshot holds,
so the service answers 200 to each: approvals (opens within every limit while the sim is
calm, cancels always), denials (over the caps, a short where shorting is refused, a
core asset closed, and, at high rates, the 100-per-second submit rate) and volatility
sizing (no target_size). Half a minute into the sim's scripted sell-off its breakers halt
the accounts: from then on only cancels are approved, as in the README.

The mix is shuffled with a fixed seed: the same sequence on every run and on both sides
of the comparison (over HTTP and in process).
"""

from __future__ import annotations

import json
import random
from typing import Any

SEED = 11  # the number: any fixed value gives a repeatable sequence
REPEATS = 10  # the mix is this many shuffled copies of ORDERS

ORDERS: tuple[dict[str, Any], ...] = (
    # approved while calm: within every limit (the README's example)
    {"account_id": "gen-01", "symbol": "QQQ", "action": "open", "target_size": 10},
    {"account_id": "com-01", "symbol": "AAPL", "action": "open", "target_size": 1},
    # approved in every trading state: a cancel
    {"account_id": "gen-01", "symbol": "SPY", "action": "cancel"},
    {
        "account_id": "rev-01",
        "symbol": "ETH-USD",
        "action": "cancel",
        "strategy_id": "crypto-momentum",
    },
    # denied: over the risk, notional and per-symbol caps
    {"account_id": "gen-01", "symbol": "SPY", "action": "increase", "target_size": 100_000},
    # denied: a short where shorting and margin are refused
    {"account_id": "gen-01", "symbol": "AAPL", "action": "open", "side": "short", "target_size": 5},
    # denied: QQQ is a core asset, immune to close
    {"account_id": "com-01", "symbol": "QQQ", "action": "close"},
    # sized from volatility (no target_size)
    {"account_id": "rev-01", "symbol": "BTC-USD", "action": "increase"},
    # reducing orders: approved while ACTIVE (within the submit rate), denied when halted
    {"account_id": "rev-01", "symbol": "ETH-USD", "action": "decrease", "target_size": "0.1"},
    {
        "account_id": "gen-01",
        "symbol": "AAPL",
        "action": "decrease",
        "target_size": 1,
        "strategy_id": "trend-spy",
        "current_score": 0.4,
    },
)


def order_bodies() -> tuple[bytes, ...]:
    """The mix as JSON bodies, in a seeded order (REPEATS shuffled copies of ORDERS)."""
    rng = random.Random(SEED)
    mix = [order for _ in range(REPEATS) for order in ORDERS]
    rng.shuffle(mix)
    return tuple(json.dumps(order).encode() for order in mix)
