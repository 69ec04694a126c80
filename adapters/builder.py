"""SnapshotBuilder: one poll of a venue adapter -> a validated, frozen Snapshot.

Inputs, all injected: a :class:`Poll` (accounts, positions, bars per symbol, quotes,
fills — :meth:`SnapshotBuilder.poll` fetches one from any ``VenueAdapter``), the system
health of the data sources (:class:`SourceHealth`), the market regime, the
:class:`BuilderState` of the previous poll, and ``now``. The builder never reads a clock.
It returns a :class:`BuildResult`: the Snapshot, the next state, and the fallbacks used.

Where each field comes from: ``market`` — bid / ask from the quote, price from the
quote's last trade (else its mid), ATR from the ATR bars (``atr_interval_s``, daily by
default, period and method from ``atr``), every other metric from the metric bars
(``bar_interval_s``; formulas in :mod:`market_metrics`), data age from the newest bar
close or quote, quality from :func:`assess_bars` (the lower score when the ATR bars are
a separate series). ``order_flow`` — fills per (account, strategy): fills in the last
``orders_window_s`` (each fill counts as an order: a venue that splits an order into
several fills over-counts, the safe side), mean adverse slippage in bps against the
fill's expected price over ``slippage_window_s`` (favourable slippage counts as
negative, a net-favourable mean is reported as 0), consecutive losses from realised P&L
(:func:`builder_state.count_losses`). ``trades`` — the adapter's closed trades
(``fetch_history`` — one request for fills and trades — or ``fetch_trades``,
incremental), bounded to ``trade_lookback_s``; ``instruments`` — the adapter's, else
each position's asset class (:mod:`builder_history`, which also says what happens to an
inconsistent trade), with the venue's order rules from an ``InstrumentRuleSource``
(missing, unreadable or kept-from-before rules are listed in the fallbacks:
:mod:`instrument_rules`); ``option_chains`` — the listed chains of the option positions'
underlyings from an :class:`OptionChainSource` (a contract that breaks a rule is left
out and listed in the fallbacks: :mod:`option_chains`). ``accounts`` — day-start and
peak equity from the venue when it reports them, else tracked in the state. Option legs
— the contract, the underlying's market price, and the venue's implied volatility; delta
is left to the engine. ``system`` — error rate and connectivity from the injected
health, data age the oldest of the market data and the sources' last successes.

Missing or unusable data is never zero-filled silently. The rule:

- *Malformed* input — a crossed or non-positive quote, no quote for a symbol that has
  bars, a fill for an unknown account, a timestamp ahead of ``now`` beyond
  ``max_clock_skew_s`` — raises :class:`DataError` naming the symbol or id and the
  field. The poll produces no snapshot; the service keeps the last one, which ages
  until the ``stale_data`` breaker acts.
- *One bad position* — a row the adapter could not read (``VenuePosition.problem``), a
  symbol the venue does not list (:class:`UnknownSymbolError` while polling it: the
  symbol is set aside in ``Poll.unavailable``), an expired option still held, an option
  with neither implied volatility nor a usable price, no usable entry price — is left
  out of the snapshot and listed in ``BuildResult.unevaluable`` with its reason; every
  other position is still evaluated. A position the venue values at 0 (dust) is priced
  from its quote (listed in the fallbacks).
- *Not computable* — too little history, bars without volume, returns without variance,
  no benchmark bars — uses the engine's own convention for "cannot compare": the
  baseline (``normal_volatility``, ``avg_volume``, ``normal_liquidity_usd``,
  ``normal_correlation``) is written as 0, and so is the current value when it is the
  unknown one. The engine (facts.py) leaves a ratio with a zero baseline out, and every
  breaker that needs it reports *unevaluable* and fails safe (reduce-only), never
  all-clear. An unknown ATR is written as 0, which the escalation pass reports as
  unevaluable for the positions in that symbol. Each such value is listed in
  ``BuildResult.fallbacks`` with its reason, for logs and metrics.
- *Remembered* — day-start / peak equity the venue does not give start from the first
  equity seen; a position without ``entered_at`` gets the time it was first seen; an
  option without implied volatility gets the one implied by its mark (at
  ``risk_free_rate``). Each of these is listed in the fallbacks too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any

from bastion.adapters import builder_history as history
from bastion.adapters import builder_market
from bastion.adapters import builder_parts as parts
from bastion.adapters.builder_parts import (
    BuilderConfig,
    Fallback,
    Poll,
    SourceHealth,
)
from bastion.adapters.builder_state import BuilderState, EquityMarks, count_losses
from bastion.adapters.instrument_rules import InstrumentFetch, InstrumentRuleSource
from bastion.adapters.option_chains import (
    ChainFetch,
    OptionChainSource,
    chain_records,
    underlyings_of,
)
from bastion.adapters.sources.base import BarRequest
from bastion.adapters.venue import (
    HistorySource,
    InstrumentSource,
    TradeSource,
    UnknownSymbolError,
    VenueAdapter,
    VenuePosition,
)
from bastion.engine.indicators.quality import Bar
from bastion.engine.indicators.quality_memo import QualityMemo
from bastion.engine.snapshot import ClosedTrade, Regime, Snapshot
from bastion.engine.snapshot.built import snapshot_from_typed
from bastion.engine.snapshot.history import cutoff
from bastion.engine.snapshot.left_out import Unevaluable
from bastion.engine.snapshot.model import OptionChain

__all__ = [
    "BuildResult",
    "BuilderConfig",
    "BuilderState",
    "Fallback",
    "Poll",
    "SnapshotBuilder",
    "SourceHealth",
    "Unevaluable",
]


_SYMBOL = attrgetter("symbol")


@dataclass(frozen=True, slots=True)
class BuildResult:
    snapshot: Snapshot
    state: BuilderState
    fallbacks: tuple[Fallback, ...]
    unevaluable: tuple[Unevaluable, ...] = ()  # positions / trades left out, and why


@dataclass(frozen=True, slots=True)
class _ChainsBuilt:
    """The option chains one build made of a venue's fetch: what it left out, the
    checked chains, and when."""

    fetch: ChainFetch
    left_out: tuple[tuple[str, str], ...]
    chains: Mapping[str, OptionChain]
    at: datetime


class SnapshotBuilder:
    """Stateless apart from its config: state goes in and comes out of :meth:`build`."""

    def __init__(self, config: BuilderConfig | None = None) -> None:
        self.config = config or BuilderConfig()
        # What earlier builds checked of each symbol's bars (engine/indicators/quality
        # QualityMemo; builder_parts.SeriesMemos): a cache, per thread, that changes no
        # snapshot.
        self._memos = threading.local()

    def _quality_memos(self) -> dict[tuple[str, int], QualityMemo]:
        memos: dict[tuple[str, int], QualityMemo] | None = getattr(self._memos, "quality", None)
        if memos is None:
            memos = self._memos.quality = {}
        return memos

    def _series_memos(self) -> parts.SeriesMemos:
        memos: parts.SeriesMemos | None = getattr(self._memos, "series", None)
        if memos is None:
            memos = self._memos.series = parts.SeriesMemos()
        return memos

    def _chains_built(self, fetched: ChainFetch, now: datetime) -> _ChainsBuilt | None:
        """The chains an earlier build made of this very fetch (a venue's chains are read
        every few minutes, `option_chains.ChainCache`, not every poll), or None. Their
        checks hold at any later `now`: each compares the chain with its own `as_of` or
        asks that a time be not after the snapshot's."""
        built: _ChainsBuilt | None = getattr(self._memos, "chains", None)
        if built is None or built.fetch is not fetched or now < built.at:
            return None
        return built

    def symbols_for(
        self, positions: Iterable[VenuePosition], extra: Iterable[str] = ()
    ) -> list[str]:
        """Every symbol a poll needs: positions, option underlyings, their benchmarks."""
        wanted = set(extra)
        for position in positions:
            wanted.add(position.option.underlying_symbol if position.option else position.symbol)
        benchmarks = {self.config.benchmark_of(symbol) for symbol in wanted}
        return sorted(wanted | {b for b in benchmarks if b})

    def fills_since(self, state: BuilderState, now: datetime) -> datetime:
        """Fetch fills from here: the windows, or the previous poll when it is earlier, so
        that no fill falls between two polls."""
        since = now - timedelta(seconds=self.config.fill_lookback_s)
        previous = state.polled_until
        return since if previous is None else min(since, previous)

    def poll(
        self,
        adapter: VenueAdapter,
        *,
        now: datetime,
        state: BuilderState,
        symbols: Iterable[str] = (),
    ) -> Poll:
        """Fetch everything one build needs from ``adapter``. Adapter errors propagate,
        except :class:`UnknownSymbolError` for one symbol: that symbol is set aside in
        ``Poll.unavailable`` (its positions become unevaluable), the rest is polled."""
        config = self.config
        accounts = tuple(adapter.fetch_accounts())
        positions = tuple(adapter.fetch_positions())
        wanted = self.symbols_for(positions, symbols)
        same = config.atr_interval_s == config.bar_interval_s
        limit = config.windows.required_bars
        if same:
            limit = max(limit, config.atr_history_bars)
        unavailable: dict[str, str] = {}
        bars: dict[str, tuple[Bar, ...]] = {}
        atr_bars: dict[str, tuple[Bar, ...]] | None = None if same else {}
        quotes = {}
        for symbol in wanted:
            try:
                series = adapter.fetch_bars(BarRequest(symbol, config.bar_interval_s, limit=limit))
                if atr_bars is not None:
                    atr_request = BarRequest(
                        symbol, config.atr_interval_s, limit=config.atr_history_bars
                    )
                    atr_series = tuple(adapter.fetch_bars(atr_request))
                quote = adapter.fetch_quote(symbol)
            except UnknownSymbolError as error:
                unavailable[symbol] = str(error)
                continue
            bars[symbol] = tuple(series)
            if atr_bars is not None:
                atr_bars[symbol] = atr_series
            quotes[symbol] = quote
        fills_since = self.fills_since(state, now)
        trades_since = cutoff(now, config.trade_lookback_s)
        trades: tuple[ClosedTrade, ...] = ()
        if isinstance(adapter, HistorySource):  # one fill-history request for both
            fetched, closed = adapter.fetch_history(fills_since, trades_since)
            fills, trades = tuple(fetched), tuple(closed)
        else:
            fills = tuple(adapter.fetch_fills(fills_since))
            if isinstance(adapter, TradeSource):
                trades = tuple(adapter.fetch_trades(trades_since))
        if isinstance(adapter, InstrumentRuleSource):  # with the venue's order rules
            listed = [symbol for symbol in wanted if symbol not in unavailable]
            instrument_fetch = adapter.fetch_instruments(positions, listed)
        else:
            instrument_fetch = InstrumentFetch(
                adapter.instruments(positions) if isinstance(adapter, InstrumentSource) else {}
            )
        underlyings = underlyings_of(positions)
        chains = (
            adapter.fetch_option_chains(underlyings)
            if underlyings and isinstance(adapter, OptionChainSource)
            else ChainFetch()
        )
        return Poll(
            accounts,
            positions,
            bars,
            quotes,
            fills,
            atr_bars,
            unavailable,
            trades,
            instrument_fetch.instruments,
            chains,
            instrument_fetch.notes,
        )

    def build(
        self,
        poll: Poll,
        *,
        now: datetime,
        state: BuilderState,
        regime: Regime,
        health: Sequence[SourceHealth] = (),
        drifted_accounts: frozenset[str] = frozenset(),
    ) -> BuildResult:
        """The Snapshot of ``poll`` as of ``now``; DataError / SnapshotError when unusable."""
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        fallbacks: list[Fallback] = []
        context = parts.Context(
            self.config,
            now,
            fallbacks,
            self._quality_memos(),
            memos=self._series_memos(),
            poll=poll,
        )
        symbols = sorted(set(poll.bars) | set(poll.quotes))
        market = {symbol: builder_market.market(context, symbol, poll) for symbol in symbols}
        equity, accounts = self._accounts(context, poll, state, drifted_accounts)
        account_ids = frozenset(account.id for account in poll.accounts)
        first_seen, positions, unevaluable, checked = parts.positions(
            context, poll.positions, market, state, poll.unavailable, accounts=account_ids
        )
        streaks, watermark, at_watermark = count_losses(state, poll.fills)
        order_flow = parts.order_flow(context, poll.fills, account_ids, streaks)
        trades, trades_left_out = history.trade_records(
            poll.trades,
            now=now,
            since=cutoff(now, self.config.trade_lookback_s),
            accounts=account_ids,
            max_clock_skew_s=self.config.max_clock_skew_s,
        )
        # Every position the batch made has market data (typed.batch_maker): only the
        # others (options, ...) can mention a symbol beyond the market's.
        unproven = positions if checked.batch is None else checked.batch.others
        mentioned = {*market, *map(_SYMBOL, unproven), *(t.symbol for t in trades)}
        instruments = history.instrument_records(poll.instruments, poll.positions, mentioned)
        document: dict[str, Any] = {
            "as_of": now,
            "accounts": accounts,
            "market": market,
            "system": parts.system(context, market, health),
            "order_flow": order_flow,
            "regime": {
                "name": regime.name,
                "severity": regime.severity,
                "changed_at": regime.changed_at,
            },
            "instruments": instruments,
        }
        built_chains = self._chains_built(poll.option_chains, now)
        if built_chains is not None:  # the same fetch as an earlier build: checked then
            chains_left_out: Sequence[tuple[str, str]] = built_chains.left_out
        else:
            chains, chains_left_out = chain_records(
                poll.option_chains, now, self.config.max_clock_skew_s
            )
            if chains:
                document["option_chains"] = chains
        for where, why in chains_left_out:
            fallbacks.append(parts.Fallback(where, "left out", why))
        for where, value, why in poll.instrument_notes:  # the venue's order rules
            fallbacks.append(parts.Fallback(where, value, why))
        # Every value is checked against the validator's rules (venue and file data are
        # untrusted): the positions as built, the rest of the document field by field;
        # cerberus itself only runs to report a problem (engine/snapshot/built).
        snapshot = snapshot_from_typed(
            document, positions, source=f"poll at {now.isoformat()}", checked=checked
        )
        snapshot = replace(snapshot, trades=trades)  # checked by builder_history
        if built_chains is not None:
            snapshot = replace(snapshot, option_chains=built_chains.chains)
        elif poll.option_chains.chains:
            self._memos.chains = _ChainsBuilt(
                poll.option_chains, tuple(chains_left_out), snapshot.option_chains, now
            )
        new_state = BuilderState(
            equity=equity,
            losing_streaks=streaks,
            fills_seen_until=watermark,
            fill_ids_at_watermark=at_watermark,
            first_seen=first_seen,
            polled_until=now,
        )
        left_out = (*unevaluable, *trades_left_out)
        return BuildResult(snapshot, new_state, tuple(fallbacks), left_out)

    def _accounts(
        self,
        context: parts.Context,
        poll: Poll,
        state: BuilderState,
        drifted: frozenset[str],
    ) -> tuple[dict[str, EquityMarks], list[dict[str, Any]]]:
        day = self.config.trading_day(context.now)
        marks_by_account: dict[str, EquityMarks] = {}
        records = []
        for account in poll.accounts:
            previous = state.equity.get(account.id)
            if previous is None:
                marks = EquityMarks(day, account.equity_usd, account.equity_usd)
                if account.day_start_equity_usd is None or account.peak_equity_usd is None:
                    context.fallback(
                        f"accounts[{account.id}].day_start_equity_usd",
                        account.equity_usd,
                        "first poll of the account: the equity now stands in for the day's "
                        "opening equity and the peak, so earlier losses today are not seen",
                    )
            else:
                marks = previous.update(account.equity_usd, day)
            marks_by_account[account.id] = marks
            records.append(
                {
                    "id": account.id,
                    "type": account.type,
                    "equity_usd": account.equity_usd,
                    "cash_usd": account.cash_usd,
                    "day_start_equity_usd": _first(
                        account.day_start_equity_usd, marks.day_start_equity_usd
                    ),
                    "peak_equity_usd": _first(account.peak_equity_usd, marks.peak_equity_usd),
                    "realized_pnl_usd": account.realized_pnl_usd,
                    "unrealized_pnl_usd": account.unrealized_pnl_usd,
                    "drift_flag": account.id in drifted,
                }
            )
        return marks_by_account, records


def _first(reported: Decimal | None, tracked: Decimal) -> Decimal:
    return tracked if reported is None else reported
