"""The synthetic venue bench/scale partitions: many accounts, many positions, one market.

The sim's market (seeded, bars and quotes for SPY, QQQ, AAPL, BTC-USD, ETH-USD) under a
book of `accounts` accounts holding `positions_per_account` positions each, entered at
the start's prices (a calm book: the engine's steady path). No fills, no closed trades.
A partition actor builds it from its spec (`PartitionSpec.feed_factory = "book:feed"`,
sizes in `PartitionSpec.config`) and sees only its own accounts through
`AccountFilter`, as it would a real venue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from bastion.adapters.sim import SimAdapter
from bastion.adapters.sources.clock import SystemClock
from bastion.adapters.venue import Fill, VenueAccount, VenuePosition
from bastion.engine.snapshot import ClosedTrade, Instrument
from bastion.service.feeds import Feed

SYMBOLS = (("SPY", "equity"), ("QQQ", "equity"), ("AAPL", "equity"), ("BTC-USD", "crypto"))
CASH_USD = Decimal(5_000_000)


class ScaleBook:
    name = "scale"

    def __init__(self, sim: SimAdapter, *, accounts: int, positions_per_account: int) -> None:
        self._sim = sim
        now = sim.now()
        prices = {symbol: sim.market.last(symbol, now)[0] for symbol, _ in SYMBOLS}
        self.accounts = [f"acc-{index:04d}" for index in range(accounts)]
        self._book = [
            (
                f"{account}-{k}",
                account,
                *SYMBOLS[k % len(SYMBOLS)],
                prices[SYMBOLS[k % len(SYMBOLS)][0]],
            )
            for account in self.accounts
            for k in range(positions_per_account)
        ]

    def restricted_to(self, owns: Callable[[str], bool]) -> ScaleBook:
        """The book of the accounts `owns` accepts (a partition's share): the venue is
        asked for those accounts only, as a venue with per-account calls would be."""
        self.accounts = [a for a in self.accounts if owns(a)]
        self._book = [row for row in self._book if owns(row[1])]
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)

    def fetch_positions(self) -> Sequence[VenuePosition]:
        now = self._sim.now()
        last = {symbol: self._sim.market.last(symbol, now)[0] for symbol, _ in SYMBOLS}
        quantity = Decimal("0.01")
        return tuple(
            VenuePosition(pid, account, symbol, kind, quantity, "long", entry, last[symbol])
            for pid, account, symbol, kind, entry in self._book
        )

    def fetch_accounts(self) -> Sequence[VenueAccount]:
        return tuple(VenueAccount(a, "gen", CASH_USD, CASH_USD) for a in self.accounts)

    def fetch_fills(self, since: datetime) -> Sequence[Fill]:
        return ()

    def fetch_trades(self, since: datetime) -> Sequence[ClosedTrade]:
        return ()

    def instruments(self, positions: Sequence[VenuePosition]) -> Mapping[str, Instrument]:
        return self._sim.instruments(positions)


def feed(spec: Any) -> Feed:
    """The whole venue's feed for a partition spec (sizes from `spec.config`)."""
    sim = SimAdapter(SystemClock(), speed=spec.speed, seed=spec.seed)
    book = ScaleBook(
        sim,
        accounts=int(spec.config.get("accounts", 20)),
        positions_per_account=int(spec.config.get("positions_per_account", 100)),
    )
    return Feed(book, sim.builder_config(), sim.clock, spec.speed)  # type: ignore[arg-type]
