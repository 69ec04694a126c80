"""The one shape of every order control: what it reads, the rules it adds, what it allows.

A control is a limit (from the LimitPolicy) or a protection (from the ProtectionPolicy).
Each is one module in this folder holding one instance of a subclass of `Limit` or
`Protection`; the registry (`controls/__init__.py`) lists them in check order. It says:

- `id`: its rule id ("limit.max_per_asset"; a protection by its policy name);
- `fields`: the fact fields it reads, with what they hold, and `fill`: how it computes
  them from the request's `Context` (called only for the actions its rules can hold for);
- `rules(spec)`: the RuleSpecs it contributes for a LimitSpec / ProtectionSpec;
- `allows(ctx, spec)`: for a size limit, how many units the order may change by under it
  (None for a limit that blocks outright);
- `passed` / `blocked`: the wording of its pass and block reasons, called only when the
  reasons are read (the walk wraps them in `functools.partial`).

Nothing here raises on bad data: the caller (`check.can_execute`) turns any exception
into a denial.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from bastion.engine.authority.book import HUNDRED, ZERO, AccountBook
from bastion.engine.authority.request import OrderRequest
from bastion.engine.decision import render_value, shown
from bastion.engine.policy.kinds.limits import LimitSpec
from bastion.engine.policy.kinds.protection import ProtectionSpec
from bastion.engine.policy.vocabulary import REGIME_SEVERITIES
from bastion.engine.rules import AnyOf, Compare, Condition, RuleSpec
from bastion.engine.snapshot import Snapshot

if TYPE_CHECKING:  # instrument_rules reads Context: the type only
    from bastion.engine.authority.instrument_rules import Rules

Detail = str | Callable[[], str]
Fact = dict[str, Any]
SEVERITY_RANK = {name: rank for rank, name in enumerate(REGIME_SEVERITIES)}
NEVER_S = 10**12  # "no override yet": idle for longer than any cooldown
INFINITE = Decimal("Infinity")
_MICROSECOND = timedelta(microseconds=1)
_DAY_US = Decimal(86_400_000_000)


@dataclass(slots=True)
class Measures:
    """The quantities every exposure limit reads, computed once per order that adds
    exposure (and only when a LimitPolicy governs it)."""

    equity: Decimal
    delta: Decimal  # units the order adds
    price: Decimal
    unit_risk: Decimal  # ATR × atr_multiple (per unit of the order)
    added_value: Decimal
    added_risk: Decimal
    exposure: Decimal  # the symbol's exposure now (manual positions included)

    def pct(self, value: Decimal) -> Decimal:
        """`value` in per cent of equity (no equity: everything positive is too much)."""
        equity = self.equity
        if equity > 0:
            return value / equity * HUNDRED
        return ZERO if value <= 0 else HUNDRED * 1000


@dataclass(slots=True)
class Context:
    """Everything one request's checks read, computed once."""

    request: OrderRequest
    account_id: str
    book: AccountBook
    price: Decimal | None
    atr: Decimal | None
    current: Decimal
    target: Decimal
    requested: Decimal | None
    sized_from_volatility: bool
    trading_state: str
    grace_since: datetime | None
    entry_at: datetime | None
    round_trips: int
    override_idle_s: Decimal | int
    submits: int
    key: str  # "account/symbol"
    now: datetime
    snapshot: Snapshot
    measures: Measures | None = None  # set by the fact builder for an order adding exposure
    modifies: int = 0  # modifications in the modify-rate window (set for a modify only)
    # (limits, the instrument's rules): `instrument_rules.rules_of`, looked up once
    instrument: tuple[LimitSpec | None, Rules] | None = None


def measures_of(ctx: Context, limits: LimitSpec) -> Measures:
    book = ctx.book
    delta = ctx.target - ctx.current
    price = ctx.price if ctx.price is not None else ZERO
    atr = ctx.atr if ctx.atr is not None else ZERO
    multiple = limits.atr_multiple
    held = book.symbols.get(ctx.request.symbol)
    return Measures(  # the products in the order the limits have always computed them
        book.account.equity_usd,
        delta,
        price,
        atr * multiple,
        delta * price,
        delta * atr * multiple,
        held.exposure_usd if held else ZERO,
    )


class Control:
    """What every control has; see the module docstring."""

    id: ClassVar[str]
    fields: ClassVar[Mapping[str, str]] = {}  # fact field -> what it holds
    # The field its passing check shows, and how a passing value relates to the limit.
    shown_field: ClassVar[str] = ""
    relation: ClassVar[str] = ""
    records_pass: ClassVar[bool] = True  # a passing check in the audit trace

    def owns(self, rule_id: str) -> bool:
        """Whether a rule id is one of this control's rules."""
        return rule_id == self.id

    def fill(self, fact: Fact, ctx: Context, spec: Any) -> None:
        """Add this control's fields to the fact (`spec`: its policy's spec)."""


class Limit(Control):
    """A LimitPolicy control. `blocking` limits deny outright; the others are size
    limits: the order may be made smaller to meet them (`allows`)."""

    blocking: ClassVar[bool] = False
    # Checked for orders that add no exposure too (the submit rate, the size increment).
    any_action: ClassVar[bool] = False

    def rules(self, spec: LimitSpec) -> list[RuleSpec]:
        raise NotImplementedError

    def fired(self, fired: Collection[str], ctx: Context) -> str | None:
        """The id of this control's rule that fired for this request, if any."""
        return self.id if self.id in fired else None

    def configured_for(self, rule_ids: Collection[str], ctx: Context) -> bool:
        """Whether a rule of this control applies to this request (for its passing check)."""
        return self.id in rule_ids

    def limit_value(self, spec: LimitSpec, ctx: Context) -> Any:
        """The configured limit its passing check compares with."""
        raise NotImplementedError

    def passed(self, ctx: Context, spec: LimitSpec, fact: Fact) -> str:
        value = fact[self.shown_field] if self.shown_field in fact else self._value(ctx, spec)
        limit = self.limit_value(spec, ctx)
        shown_value = shown(value) if isinstance(value, Decimal) else render_value(value)
        shown_limit = shown(limit) if isinstance(limit, Decimal) else render_value(limit)
        return f"{self.shown_field} {shown_value} {self.relation} {shown_limit}"

    def _value(self, ctx: Context, spec: LimitSpec) -> Any:
        """The shown field when the fact was built without it (its rules could not hold
        for this action, so only the audit record asks)."""
        scratch: Fact = {}
        self.fill(scratch, ctx, spec)
        return scratch[self.shown_field]

    def blocked(self, ctx: Context, spec: LimitSpec) -> str:
        raise NotImplementedError

    def allows(self, ctx: Context, spec: LimitSpec) -> Decimal | None:
        """Units the order may change the position by under this limit (size limits)."""
        return None


class Protection(Control):
    """A ProtectionPolicy control, checked in the policy's `hierarchy`."""

    label: ClassVar[str]  # in words, for reasons
    final: ClassVar[bool] = False  # a block no regime override may lift

    def rules(self, spec: ProtectionSpec) -> list[RuleSpec]:
        raise NotImplementedError

    def detail(self, ctx: Context, spec: ProtectionSpec) -> str:
        """What the protection says about this request, passing or blocking."""
        raise NotImplementedError


# -- helpers the controls share ---------------------------------------------------------


def is_(name: str, value: bool = True) -> Compare:
    return Compare(name, "==", value)


def action_in(actions: Sequence[str]) -> Condition:
    return AnyOf(*(Compare("action", "==", action) for action in actions))


ADDS = is_("increasing")


def worded(template: str, *values: Decimal | str) -> str:
    """A template filled with values as reasons show them (`shown` for numbers)."""
    return template.format(*(shown(v) if isinstance(v, Decimal) else v for v in values))


def units(money: Decimal, per_unit: Decimal) -> Decimal:
    if per_unit <= 0:
        return INFINITE
    return money / per_unit


def floor_to(units_: Decimal, increment: Decimal) -> Decimal:
    """Rounded down to a multiple of the venue's size increment (never below 0)."""
    if units_ <= 0:
        return ZERO
    return (units_ / increment).to_integral_value(rounding=ROUND_DOWN) * increment


def days(since: datetime | None, now: datetime) -> Decimal:
    if since is None:
        return ZERO
    return Decimal((now - since) // _MICROSECOND) / _DAY_US  # exact: whole microseconds


def seconds(since: datetime, now: datetime) -> Decimal:
    return Decimal((now - since) // _MICROSECOND).scaleb(-6)  # exact: whole microseconds
