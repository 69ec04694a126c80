"""Roll analysis for option positions: delta, urgency, candidates, economics, a pick.

Pure: no I/O, no clock (``now`` is passed in), frozen inputs and outputs, Decimal money.
One call does it all::

    from bastion.engine.roll import OptionLeg, Side, analyse_roll
    analysis = analyse_roll(leg, roll_policy.spec, now)

1. **Delta** — the leg's own ``delta`` when the snapshot gives one (source
   ``snapshot``); else Black–Scholes–Merton at the leg's implied vol, ACT/365 time
   from ``now``, r = ``risk_free_rate_pct`` / 100, q = the leg's ``dividend_yield`` or
   else ``dividend_yield_pct`` / 100 (source ``computed``). At or after expiry the delta
   is intrinsic: ±1 in the money, 0 otherwise (at the money included). Computed
   |delta| is rounded half-even to 4 decimals before any comparison.
2. **Urgency** — :func:`classify_urgency`: the first of emergency / high / medium /
   low whose minimum |delta| is reached (≥), else ``none``.
3. **Candidates** — from the snapshot's listed chain for the underlying when there is
   one (``chain=``; :mod:`bastion.engine.roll.listed`: listed strikes and expiries
   only, priced at their listed bid/ask, crossed / bid-less / stale quotes left out,
   every candidate ``priced_by: listed``). Without one, a synthetic chain (see
   :mod:`bastion.engine.roll.chain`, every candidate ``priced_by: model``): Friday
   expiries in the policy's DTE window,
   ``strikes_per_expiry`` strikes on the standard increment around the strike whose
   |delta| is nearest the target, same option type, BSM at the leg's implied vol (flat:
   no skew, no term structure). Quotes: the model value ± the current leg's relative
   spread, else ± 1 % (a 2 % spread), rounded outward to the cent, at least $0.01 wide.
   At least 10 synthetic candidates, always; a listed chain may offer none (then
   nothing is recommended, and the reasons say why).
4. **Economics** per share — a short leg buys back the current option and sells the
   candidate, a long leg sells the current and buys the candidate, both at mid; then
   ``net = proceeds − cost − spread_cost_ratio × (both spreads) − 2 × (commission +
   regulatory fees) ÷ contract_multiplier``. Positive is a net credit, negative a debit.
5. **Acceptance** by urgency (:func:`accepts`); only in-band candidates
   (min_abs_delta ≤ |Δ| ≤ max_abs_delta) are ever accepted:

   =========  ==============================================================
   emergency  roll regardless of economics; a debit above max_net_debit_usd
              is accepted and the reason says so
   high       net ≥ −max_net_debit_usd (a credit, or a debit up to the maximum)
   medium     net credit ≥ min_net_credit_usd
   low        net credit ≥ min_net_credit_usd
   none       no roll: nothing is recommended (candidates are still listed)
   =========  ==============================================================

6. **Ranking** (:func:`rank_key`) — acceptable, then in band, then the rest; within
   each, |delta| closest to target, higher net credit, lower probability in the money,
   earlier expiry, lower strike. The first candidate is recommended if acceptable;
   otherwise the reasons say why not ("no economic roll: …").
"""

from __future__ import annotations

from bastion.engine.indicators.greeks import OptionType
from bastion.engine.roll.analysis import analyse_roll, leg_abs_delta, rank_key
from bastion.engine.roll.chain import MIN_CANDIDATES, net_credit_usd
from bastion.engine.roll.listed import MAX_QUOTE_AGE_S, find_chain
from bastion.engine.roll.model import (
    NO_URGENCY,
    URGENCIES,
    DeltaSource,
    OptionLeg,
    PricedBy,
    Quote,
    QuoteSource,
    RollAnalysis,
    RollCandidate,
    Side,
)
from bastion.engine.roll.urgency import accepts, classify_urgency

__all__ = [
    "MAX_QUOTE_AGE_S",
    "MIN_CANDIDATES",
    "NO_URGENCY",
    "URGENCIES",
    "DeltaSource",
    "OptionLeg",
    "OptionType",
    "PricedBy",
    "Quote",
    "QuoteSource",
    "RollAnalysis",
    "RollCandidate",
    "Side",
    "accepts",
    "analyse_roll",
    "classify_urgency",
    "find_chain",
    "leg_abs_delta",
    "net_credit_usd",
    "rank_key",
]
