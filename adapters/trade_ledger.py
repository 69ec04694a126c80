"""One venue's closed trades, kept up to date from incremental fill fetches.

Each venue adapter owns a :class:`TradeLedger`. Its ``fetch_trades(since)`` and
``fetch_history(fills_since, trades_since)`` go through :meth:`TradeLedger.poll`: fetch
the venue's fills from where the ledger needs them (:meth:`TradeLedger.fetch_from`, or
earlier when the order flow wants older fills), pair them (:meth:`TradeLedger.add`), and
return the trades (:meth:`TradeLedger.trades`) — and the fills, so the snapshot builder's
order flow and trade history cost one request a poll. A poll costs the fills since the
last one, not the account's whole history:

- the first fetch reaches ``horizon_s`` (30 days by default) further back than the
  oldest close the snapshot keeps, so that the opening fills of positions closed inside
  the window are on record (a close whose opening fill is older than that is counted in
  :attr:`TradeLedger.unmatched` and makes no trade — raise ``horizon_s`` if it grows);
- later fetches start ``overlap_s`` (5 minutes) before the newest fill seen: a fill a
  venue publishes a little late, stamped before one already seen, is still picked up, and
  the fills fetched twice are skipped by id;
- trade parts older than the oldest close asked for are dropped, so the ledger holds
  only what the longest lookback needs (plus the open lots).

Pairing is :func:`adapters.trade_pairing.pair_fills`; not thread-safe (one poll at a
time per adapter, as the scheduler runs them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bastion.adapters.trade_pairing import Lot, SymbolKey, merge_parts, pair_fills
from bastion.adapters.venue import Fill
from bastion.engine.snapshot.history import bounded
from bastion.engine.snapshot.model import ClosedTrade

DEFAULT_HORIZON_S = 30 * 86_400
DEFAULT_OVERLAP_S = 300

# Given the new trade parts, the exit reason of those whose closing order the venue
# describes elsewhere, by part id: Alpaca and Binance fills do not carry the order type,
# and Kraken flags a liquidation on the order, not the trade.
ExitReasons = Callable[[Sequence[ClosedTrade]], Mapping[str, str]]


class TradeLedger:
    def __init__(
        self,
        *,
        allow_short: bool = False,
        horizon_s: float = DEFAULT_HORIZON_S,
        overlap_s: float = DEFAULT_OVERLAP_S,
    ) -> None:
        self.allow_short = allow_short
        self.horizon_s = horizon_s
        self.overlap = timedelta(seconds=overlap_s)
        self.unmatched = 0  # closing fills seen without an opening fill on record
        self._lots: Mapping[SymbolKey, Sequence[Lot]] = {}
        self._parts: list[ClosedTrade] = []
        self._seen_until: datetime | None = None  # the newest fill seen
        self._recent: dict[str, datetime] = {}  # ids of the fills within the overlap

    def fetch_from(self, since: datetime) -> datetime:
        """Where the next fill fetch starts, for a snapshot keeping closes from ``since``."""
        if self._seen_until is None:
            return since - timedelta(seconds=self.horizon_s)
        return self._seen_until - self.overlap

    def add(self, fills: Iterable[Fill], exit_reasons: ExitReasons | None = None) -> None:
        """Pair the fills not seen before; ``exit_reasons`` labels the new closing parts.

        All or nothing: if ``exit_reasons`` raises (the venue's order lookup failed), the
        ledger is left as it was, so the next poll fetches and pairs the same fills again."""
        fresh: dict[str, Fill] = {}
        for fill in fills:
            if not self._seen(fill):
                fresh.setdefault(fill.id, fill)
        if not fresh:
            return
        pairing = pair_fills(fresh.values(), self._lots, allow_short=self.allow_short)
        parts = list(pairing.parts)
        if exit_reasons is not None and parts:
            reasons = exit_reasons(parts)
            parts = [
                replace(part, exit_reason=reasons[part.id]) if part.id in reasons else part
                for part in parts
            ]
        newest = max(fill.filled_at for fill in fresh.values())
        if self._seen_until is None or newest > self._seen_until:
            self._seen_until = newest
        self._recent.update({fill.id: fill.filled_at for fill in fresh.values()})
        oldest_kept = self._seen_until - self.overlap
        self._recent = {key: at for key, at in self._recent.items() if at >= oldest_kept}
        self._lots = pairing.open_lots
        self.unmatched += len(pairing.unmatched)
        self._parts.extend(parts)

    def poll(
        self,
        fetch_fills: Callable[[datetime], Sequence[Fill]],
        trades_since: datetime,
        fills_since: datetime | None = None,
        exit_reasons: ExitReasons | None = None,
    ) -> tuple[tuple[Fill, ...], tuple[ClosedTrade, ...]]:
        """One fill fetch for both: the fills from ``fills_since`` (none when None) for the
        order flow, and the closed trades from ``trades_since``. The fetch starts at the
        earlier of ``fills_since`` and :meth:`fetch_from`, so a poll asks the venue once."""
        start = self.fetch_from(trades_since)
        if fills_since is not None:
            start = min(start, fills_since)
        fetched = fetch_fills(start)
        self.add(fetched, exit_reasons)
        fills = (
            () if fills_since is None else tuple(f for f in fetched if f.filled_at >= fills_since)
        )
        return fills, self.trades(trades_since)

    def trades(self, since: datetime) -> tuple[ClosedTrade, ...]:
        """The closed trades with a close at or after ``since`` (older parts are dropped)."""
        self._parts = [part for part in self._parts if part.closed_at >= since]
        return bounded(merge_parts(self._parts), since)

    @property
    def open_lots(self) -> Mapping[SymbolKey, Sequence[Lot]]:
        return self._lots

    def _seen(self, fill: Fill) -> bool:
        if self._seen_until is None:
            return False
        if fill.filled_at < self._seen_until - self.overlap:
            return True  # fetched before: only the overlap is asked for again
        return fill.id in self._recent
