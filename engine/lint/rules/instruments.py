"""BST506-BST509: a LimitPolicy whose exposure, borrowing or instrument rules contradict
each other, so that some orders can never pass (or a cap can never be reached).

Instrument entries are read as the checks apply them: a symbol or asset-class entry
takes each rule it does not set from "*". A contradiction is reported once, at the
entry that holds at least one of its two sides (one inherited wholly from "*" is
reported at "*").
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_CEILING, Decimal

from bastion.engine.lint.findings import Finding
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.kinds.limits import INSTRUMENT_RULE_NAMES, InstrumentRules, LimitSpec
from bastion.engine.policy.model import Policy

_HUNDRED = Decimal(100)
EVERY = "*"

Side = tuple[Decimal, str]  # a value and the entry key that sets it


def check(policy: Policy) -> Iterator[Finding]:
    spec: LimitSpec = policy.spec
    yield from _borrowing(policy, spec)
    entries = dict(spec.instruments)
    for key, own in spec.instruments:
        rules = _effective(key, own, entries.get(EVERY))
        yield from _notional(policy, spec, key, rules)
        yield from _quantity(policy, key, rules)


def _borrowing(policy: Policy, spec: LimitSpec) -> Iterator[Finding]:
    cap = spec.max_per_asset_pct
    if not spec.borrowing_allowed and cap > _HUNDRED:
        yield finding(
            policy,
            "BST506",
            "/spec/risk/max_per_asset_pct",
            f"max_per_asset_pct {cap} is above 100 % of equity, but risk.borrowing is not "
            "allowed: set risk.borrowing {allowed: true, max_leverage: "
            f"{_leverage_for(cap)}}} or lower it to 100 at most",
        )
    elif spec.borrowing_allowed and cap > _HUNDRED * spec.max_leverage:
        yield finding(
            policy,
            "BST506",
            "/spec/risk/max_per_asset_pct",
            f"max_per_asset_pct {cap} is above 100 × risk.borrowing.max_leverage "
            f"{spec.max_leverage} = {_HUNDRED * spec.max_leverage} %: raise max_leverage to "
            f"{_leverage_for(cap)} or lower the cap",
        )
    if spec.borrowing_allowed and not spec.margin_allowed:
        yield finding(
            policy,
            "BST507",
            "/spec/risk/borrowing/allowed",
            "risk.borrowing is allowed but region.margin_allowed is false: every order stays "
            "within the account's cash, so exposure above equity is never reached",
        )


def _leverage_for(cap: Decimal) -> Decimal:
    return (cap / _HUNDRED).quantize(Decimal("0.01"), rounding=ROUND_CEILING).normalize()


def _effective(
    key: str, own: InstrumentRules, every: InstrumentRules | None
) -> dict[str, Side | None]:
    """Each rule of the entry, as (value, the key that sets it), inheriting from "*"."""
    rules: dict[str, Side | None] = {}
    for name in INSTRUMENT_RULE_NAMES:
        value = getattr(own, name)
        if value is not None:
            rules[name] = (value, key)
        elif every is not None and key != EVERY and getattr(every, name) is not None:
            rules[name] = (getattr(every, name), EVERY)
        else:
            rules[name] = None
    return rules


def _pointer(key: str, name: str) -> str:
    return f"/spec/instruments/{key.replace('~', '~0').replace('/', '~1')}/{name}"


def _where(key: str, low: Side, high: Side | None, low_name: str, high_name: str) -> str | None:
    """The pointer to report at, or None when neither side is this entry's own."""
    if low[1] == key:
        return _pointer(key, low_name)
    if high is not None and high[1] == key:
        return _pointer(key, high_name)
    return None


def _named(key: str, name: str, side: Side) -> str:
    where = "" if side[1] == key else f' (from "{side[1]}")'
    return f"{name} {side[0]}{where}"


def _notional(
    policy: Policy, spec: LimitSpec, key: str, rules: dict[str, Side | None]
) -> Iterator[Finding]:
    low, high = rules["min_notional_usd"], rules["max_notional_usd"]
    if low is None:
        return
    if high is not None and low[0] > high[0]:
        at = _where(key, low, high, "min_notional_usd", "max_notional_usd")
        if at is not None:
            yield finding(
                policy,
                "BST508",
                at,
                f'instruments "{key}": {_named(key, "min_notional_usd", low)} is above '
                f"{_named(key, 'max_notional_usd', high)}: every order is denied",
            )
    cap = spec.max_notional_per_order_usd
    if cap is not None and low[0] > cap and low[1] == key:
        yield finding(
            policy,
            "BST508",
            _pointer(key, "min_notional_usd"),
            f'instruments "{key}": min_notional_usd {low[0]} is above '
            f"orders.max_notional_per_order_usd {cap}: every order is denied or cut below "
            "the minimum",
        )


def _quantity(policy: Policy, key: str, rules: dict[str, Side | None]) -> Iterator[Finding]:
    least, most, lot = rules["min_quantity"], rules["max_quantity"], rules["lot_size"]
    if most is None:
        return
    if least is not None and least[0] > most[0]:
        at = _where(key, least, most, "min_quantity", "max_quantity")
        if at is not None:
            yield finding(
                policy,
                "BST509",
                at,
                f'instruments "{key}": {_named(key, "min_quantity", least)} is above '
                f"{_named(key, 'max_quantity', most)}: every order is denied",
            )
        return
    if lot is None:
        return
    smallest = lot[0]
    if least is not None:  # the smallest whole number of lots at or above the minimum
        smallest = (least[0] / lot[0]).to_integral_value(rounding=ROUND_CEILING) * lot[0]
    if smallest > most[0]:
        at = _where(key, lot, most, "lot_size", "max_quantity")
        if at is None and least is not None and least[1] == key:
            at = _pointer(key, "min_quantity")
        if at is not None:
            yield finding(
                policy,
                "BST509",
                at,
                f'instruments "{key}": the smallest order on {_named(key, "lot_size", lot)}'
                + (f" and {_named(key, 'min_quantity', least)}" if least is not None else "")
                + f" is {smallest} units, above {_named(key, 'max_quantity', most)}: every "
                "order is denied",
            )
