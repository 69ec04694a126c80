"""Exposure per sector and per asset class (LEAN's MaximumSectorExposure): the exposure
of every symbol in the order's sector (asset class), the order included, is at most the
group's cap in per cent of equity. Size limits: an order that breaks one is downsized.

The caps are `{group: pct}` maps; the key "*" caps every group not named (so one cap for
every sector is `{"*": 20}`, and a named group may be given a different cap). Groups
come from the snapshot's `instruments`; a position of a symbol without an instrument
record counts in no group.

Fail closed: under any cap, an order for a symbol whose group is unknown — no instrument
record, or (for sectors) an equity with no sector — is denied: it might belong to a
capped group, and an unclassified symbol must not be a way around the cap. Sectors
classify equities: an instrument of another asset class (crypto, fx, …) with no sector
is in no sector and outside every sector cap (it is still under the asset-class caps).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import ClassVar

from bastion.engine.authority.book import HUNDRED, ZERO, AccountBook
from bastion.engine.authority.controls.base import (
    ADDS,
    Context,
    Fact,
    Limit,
    is_,
    measures_of,
    units,
    worded,
)
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.rules import AllOf, Compare, Condition, RuleSpec
from bastion.engine.snapshot.model import Instrument

EVERY = "*"  # the cap of every group not named
UNKNOWN: None = None


class GroupExposure(Limit):
    """One cap per group of symbols; subclasses say which group a symbol is in."""

    setting: ClassVar[str]  # the policy field, for reasons
    noun: ClassVar[str]  # "sector" / "asset class"
    prefix: ClassVar[str]  # fact fields: <prefix>, <prefix>_unknown, <prefix>_pct

    def caps(self, spec: LimitSpec) -> tuple[tuple[str, Decimal], ...]:
        raise NotImplementedError

    def group(self, instrument: Instrument | None) -> str | None:
        """The symbol's group; "" for none (outside every cap); None when unknown."""
        raise NotImplementedError

    # -- the shape -------------------------------------------------------------------

    def owns(self, rule_id: str) -> bool:
        return rule_id == self.id or rule_id.startswith(f"{self.id}.")

    def _group_of(self, ctx: Context) -> str | None:
        return self.group(ctx.snapshot.instruments.get(ctx.request.symbol))

    def _cap(self, spec: LimitSpec, group: str) -> Decimal | None:
        caps = dict(self.caps(spec))
        if group in caps:
            return caps[group]
        return caps.get(EVERY) if group else None

    def fill(self, fact: Fact, ctx: Context, spec: LimitSpec) -> None:
        group = self._group_of(ctx)
        prefix = self.prefix
        fact[prefix] = group or ""
        fact[f"{prefix}_unknown"] = group is None
        if not group:
            fact[f"{prefix}_pct"] = ZERO
            return
        m = ctx.measures or measures_of(ctx, spec)
        fact[f"{prefix}_pct"] = m.pct(self._used(ctx, group) + m.added_value)

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        caps = self.caps(spec)
        if not caps:
            return []
        prefix = self.prefix
        pct, named = f"{prefix}_pct", [group for group, _ in caps if group != EVERY]
        rules = [RuleSpec(self.id, AllOf(ADDS, is_(f"{prefix}_unknown")))]
        for group, cap in caps:
            member: list[Condition] = (
                [Compare(prefix, "==", group)]
                if group != EVERY
                else [Compare(prefix, "!=", ""), *(Compare(prefix, "!=", n) for n in named)]
            )
            over = AllOf(ADDS, *member, Compare(pct, ">", cap))
            rules.append(RuleSpec(f"{self.id}.{group}", over))
        return rules

    def fired(self, fired: Collection[str], ctx: Context) -> str | None:
        group = self._group_of(ctx)
        if group is None:
            return self.id if self.id in fired else None
        for rule in (f"{self.id}.{group}", f"{self.id}.{EVERY}"):
            if rule in fired:
                return rule
        return None

    def configured_for(self, rule_ids: Collection[str], ctx: Context) -> bool:
        if self.id not in rule_ids:
            return False
        group = self._group_of(ctx)
        return (
            group is None
            or f"{self.id}.{group}" in rule_ids
            or (bool(group) and f"{self.id}.{EVERY}" in rule_ids)
        )

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Decimal:
        return self._cap(spec, self._group_of(ctx) or "") or ZERO

    def passed(self, ctx: Context, spec: LimitSpec, fact: Fact) -> str:
        group = self._group_of(ctx)
        if group is None:  # cannot pass: fired
            return self.blocked(ctx, spec)
        return f"{self.noun} {group}: " + super().passed(ctx, spec, fact)

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        symbol = ctx.request.symbol
        group = self._group_of(ctx)
        if group is None:
            return (
                f"{symbol} has no {self.noun} in the snapshot's instruments: under "
                f"{self.setting} an order for it is denied (fail closed); add "
                f"instruments.{symbol}.{self.prefix} to the snapshot"
            )
        cap = self._cap(spec, group) or ZERO
        m = ctx.measures or measures_of(ctx, spec)
        return worded(
            "{} {} exposure {} USD > {} {} % ({} USD)",
            self.noun,
            group,
            self._used(ctx, group) + m.delta * m.price,
            self.setting.removesuffix("_pct"),
            cap,
            ctx.book.account.equity_usd * cap / HUNDRED,
        )

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal:
        group = self._group_of(ctx)
        if group is None:
            return ZERO  # unknown: nothing may be added
        cap = self._cap(spec, group) or ZERO
        m = ctx.measures or measures_of(ctx, spec)
        budget = ctx.book.account.equity_usd * cap / HUNDRED
        return units(budget - self._used(ctx, group), m.price)

    def _used(self, ctx: Context, group: str) -> Decimal:
        return _exposures(ctx.book, ctx.snapshot.instruments, self.group).get(group, ZERO)


class PerSector(GroupExposure):
    id: ClassVar[str] = "limit.max_per_sector"
    setting = "max_per_sector_pct"
    noun = "sector"
    prefix = "sector"
    fields: ClassVar = {
        "sector": "the symbol's sector ('' when it has none)",
        "sector_unknown": "the symbol's sector is unknown (no instrument, or an equity without)",
        "sector_pct": "exposure of the symbol's sector after the order",
    }
    shown_field = "sector_pct"
    relation = "≤"

    def caps(self, spec: LimitSpec) -> tuple[tuple[str, Decimal], ...]:
        return spec.max_per_sector_pct

    def group(self, instrument: Instrument | None) -> str | None:
        if instrument is None:
            return UNKNOWN
        if instrument.sector:
            return instrument.sector
        return UNKNOWN if instrument.asset_class == "equity" else ""


class PerAssetClass(GroupExposure):
    id: ClassVar[str] = "limit.max_per_asset_class"
    setting = "max_per_asset_class_pct"
    noun = "asset class"
    prefix = "asset_class"
    fields: ClassVar = {
        "asset_class": "the symbol's asset class",
        "asset_class_unknown": "the symbol has no instrument record",
        "asset_class_pct": "exposure of the symbol's asset class after the order",
    }
    shown_field = "asset_class_pct"
    relation = "≤"

    def caps(self, spec: LimitSpec) -> tuple[tuple[str, Decimal], ...]:
        return spec.max_per_asset_class_pct

    def group(self, instrument: Instrument | None) -> str | None:
        return UNKNOWN if instrument is None else instrument.asset_class


# Exposure per group of one account book, summed once and reused by every request on
# the same book and instruments (kept for the last few, by identity: both are frozen
# for the life of a snapshot).
_lock = threading.Lock()
Grouping = Callable[[Instrument | None], str | None]
_cache: list[tuple[AccountBook, Mapping[str, Instrument], Grouping, dict[str, Decimal]]] = []
_CACHE_SIZE = 16


def _exposures(
    book: AccountBook, instruments: Mapping[str, Instrument], group: Grouping
) -> dict[str, Decimal]:
    """Exposure per group name; `group` is a control's bound `group` method (bound
    methods of one control compare equal)."""
    with _lock:
        for cached_book, cached_instruments, cached_group, totals in _cache:
            if cached_book is book and cached_instruments is instruments and cached_group == group:
                return totals
    totals = {}
    for symbol, held in book.symbols.items():
        name = group(instruments.get(symbol))
        if name:
            totals[name] = totals.get(name, ZERO) + held.exposure_usd
    with _lock:
        _cache.insert(0, (book, instruments, group, totals))
        del _cache[_CACHE_SIZE:]
    return totals


SECTOR: PerSector = PerSector()
ASSET_CLASS: PerAssetClass = PerAssetClass()
