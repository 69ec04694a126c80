"""Which way a policy change moves protection: loosens, tightens, or neutral (review).

One rule per field, decided from the field's meaning (README "Reviewing a change"
lists them). Rules are matched on the field's path with list items as `*`
(`spec.breakers.*.threshold`), first match wins, most specific first. A field no
rule knows is "neutral": the diff still shows it, the officer decides. Where a
change both loosens and tightens (an action list losing one entry and gaining
another), it is reported as loosening: the reviewer must look at it.

The general rules, after the specific ones:
- a `max_*` value (and every value of a `max_*` map): higher loosens;
- a `min_*` value: higher tightens;
- something removed (a breaker, a level, a limit, a whole policy in enforce mode)
  loosens; a breaker, level, limit or policy added tightens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from bastion.engine.policy.kinds.breakers import DEFAULT_SIZE_FACTOR
from bastion.engine.policy.kinds.limits import parse_rate
from bastion.engine.policy.vocabulary import BREAKER_ACTIONS, REGIME_SEVERITIES, SEVERITIES

LOOSENS, TIGHTENS, NEUTRAL = "loosens", "tightens", "neutral"
_OPPOSITE = {LOOSENS: TIGHTENS, TIGHTENS: LOOSENS, NEUTRAL: NEUTRAL}


@dataclass(frozen=True, slots=True)
class Delta:
    """One change as a rule sees it."""

    kind: str
    path: tuple[str, ...]
    generic: tuple[str, ...]
    change: str  # added | removed | changed
    old: Any
    new: Any
    old_parent: Mapping[str, Any]
    new_parent: Mapping[str, Any]

    @property
    def field(self) -> str:
        return self.path[-1] if self.path else ""


@dataclass(frozen=True, slots=True)
class Verdict:
    direction: str
    reason: str


Rule = Callable[[Delta], Verdict | None]


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return Decimal(str(value))


def higher(looser: bool, up: str, down: str) -> Rule:
    """A number where a higher value loosens (`looser`) or tightens; `up` / `down` say
    what a higher / lower value does, for people."""

    def rule(delta: Delta) -> Verdict | None:
        if delta.change != "changed":
            return presence(delta)
        old, new = _number(delta.old), _number(delta.new)
        if old is None or new is None:
            return None
        rises = new > old
        direction = LOOSENS if rises == looser else TIGHTENS
        return Verdict(direction, f"higher: {up}" if rises else f"lower: {down}")

    return rule


def ranked(strongest_first: Sequence[str], weaker: str, stronger: str) -> Rule:
    """A word from an ordered list: moving toward its end loosens."""

    def rule(delta: Delta) -> Verdict | None:
        if delta.change != "changed":
            return presence(delta)
        if delta.old not in strongest_first or delta.new not in strongest_first:
            return None
        loosens = strongest_first.index(delta.new) > strongest_first.index(delta.old)
        why = weaker if loosens else stronger
        return Verdict(LOOSENS if loosens else TIGHTENS, f"{delta.old} → {delta.new}: {why}")

    return rule


def flag(true_tightens: bool, why: str) -> Rule:
    """A boolean: true protects more (`true_tightens`) or less."""

    def rule(delta: Delta) -> Verdict | None:
        if delta.change != "changed":
            return presence(delta, inverted=not true_tightens)
        if not isinstance(delta.old, bool) or not isinstance(delta.new, bool):
            return None
        direction = TIGHTENS if delta.new == true_tightens else LOOSENS
        return Verdict(direction, f"{str(delta.new).lower()}: {why}")

    return rule


def members(added: str, why: str) -> Rule:
    """A list of words: entries added move protection as `added` says, removed the other way."""

    def rule(delta: Delta) -> Verdict | None:
        if delta.change != "changed":
            return presence(delta, inverted=added == LOOSENS)
        if not isinstance(delta.old, list) or not isinstance(delta.new, list):
            return None
        gained = [x for x in delta.new if x not in delta.old]
        lost = [x for x in delta.old if x not in delta.new]
        parts = [f"+{x}" for x in gained] + [f"-{x}" for x in lost]
        if not parts:
            return Verdict(NEUTRAL, "same entries in another order: check the order matters")
        directions = {added} if gained else set()
        directions |= {_OPPOSITE[added]} if lost else set()
        direction = LOOSENS if LOOSENS in directions else directions.pop()
        return Verdict(direction, f"{' '.join(parts)}: {why}")

    return rule


def neutral(why: str) -> Rule:
    def rule(delta: Delta) -> Verdict | None:
        return Verdict(NEUTRAL, why)

    return rule


def presence(delta: Delta, *, inverted: bool = False) -> Verdict:
    """Something added or removed as a whole: a removal loosens, unless `inverted`."""
    what = "a protection" if not inverted else "an exception to protection"
    value = delta.old if delta.change == "removed" else delta.new
    if isinstance(value, Mapping) and value.get("enabled") is False:
        return Verdict(NEUTRAL, f"{delta.change} while disabled (enabled: false): no effect")
    if delta.change == "removed":
        direction = TIGHTENS if inverted else LOOSENS
        return Verdict(direction, f"removed: {what} is gone")
    direction = LOOSENS if inverted else TIGHTENS
    return Verdict(direction, f"added: {what}")


def _threshold(op_field: str) -> Rule:
    """A breaker threshold or a `when` value: which way depends on the comparison."""

    def rule(delta: Delta) -> Verdict | None:
        if delta.change != "changed":
            return None
        op = delta.new_parent.get(op_field) or delta.old_parent.get(op_field)
        if op in (">", ">="):
            return higher(True, f"trips later ({op})", f"trips sooner ({op})")(delta)
        if op in ("<", "<="):
            return higher(False, f"trips sooner ({op})", f"trips later ({op})")(delta)
        return Verdict(NEUTRAL, f"compared with {op}: review")

    return rule


def _comparison(delta: Delta) -> Verdict | None:
    sense = {">=": ("up", 1), ">": ("up", 0), "<=": ("down", 1), "<": ("down", 0)}
    if delta.change != "changed" or delta.old not in sense or delta.new not in sense:
        return None
    (old_way, old_inclusive), (new_way, new_inclusive) = sense[delta.old], sense[delta.new]
    if old_way != new_way:
        return Verdict(NEUTRAL, "the comparison now points the other way: review")
    direction = TIGHTENS if new_inclusive > old_inclusive else LOOSENS
    return Verdict(
        direction,
        f"{delta.old} → {delta.new}: trips "
        f"{'at' if new_inclusive else 'only beyond'} the threshold",
    )


def _scope(delta: Delta) -> Verdict | None:
    """scope.account_types etc.: a missing field means "all"."""
    if delta.change == "added":
        return Verdict(LOOSENS, "narrowed from all to the listed values")
    if delta.change == "removed":
        return Verdict(TIGHTENS, "widened to all")
    return members(TIGHTENS, "the policy covers more (+) or fewer (-)")(delta)


def _rate(delta: Delta) -> Verdict | None:
    if delta.change != "changed":
        return presence(delta)
    try:
        old, new = parse_rate(str(delta.old)), parse_rate(str(delta.new))
    except ValueError:
        return None
    old_per_s, new_per_s = old.count / old.window_s, new.count / new.window_s
    if old_per_s == new_per_s:
        return Verdict(NEUTRAL, "same rate over another window: burstiness changes")
    direction = LOOSENS if new_per_s > old_per_s else TIGHTENS
    return Verdict(
        direction,
        "more orders allowed per second"
        if new_per_s > old_per_s
        else "fewer orders allowed per second",
    )


def _deny_on_error(delta: Delta) -> Verdict | None:
    if delta.change != "changed":
        return None
    if delta.old == "deny":
        return Verdict(LOOSENS, f"deny → {delta.new}: an error no longer denies")
    if delta.new == "deny":
        return Verdict(TIGHTENS, f"{delta.old} → deny: an error denies")
    return Verdict(NEUTRAL, "another way to handle errors: review")


def _size_factor(delta: Delta) -> Verdict | None:
    """reduce_size's share of the units an order may add; absent is the default (0.5)."""
    old = DEFAULT_SIZE_FACTOR if delta.change == "added" else _number(delta.old)
    new = DEFAULT_SIZE_FACTOR if delta.change == "removed" else _number(delta.new)
    if old is None or new is None:
        return None
    if old == new:
        return Verdict(NEUTRAL, f"the same factor ({new}; absent means {DEFAULT_SIZE_FACTOR})")
    if new > old:
        return Verdict(LOOSENS, f"{old} → {new}: a tripped breaker cuts orders less")
    return Verdict(TIGHTENS, f"{old} → {new}: a tripped breaker cuts orders more")


_SEVERITY = tuple(reversed(SEVERITIES))
_RULES: tuple[tuple[str, str, Rule], ...] = (
    # (kind or *, generic path, rule): the first match decides.
    (
        "*",
        "mode",
        ranked(
            ("enforce", "shadow"), "shadow records decisions, never blocks", "decisions take effect"
        ),
    ),
    ("*", "scope*", _scope),
    ("*", "precedence", neutral("decides which policy wins where scopes overlap: review")),
    ("*", "extends", neutral("another base policy: see the field changes")),
    ("*", "metadata*", neutral("who owns the policy; no effect on decisions")),
    ("BreakerPolicy", "spec.breakers.*.threshold", _threshold("comparison")),
    ("BreakerPolicy", "spec.breakers.*.when*.value", _threshold("op")),
    ("BreakerPolicy", "spec.breakers.*.comparison", _comparison),
    ("BreakerPolicy", "spec.breakers.*.when*.op", _comparison),
    ("BreakerPolicy", "spec.breakers.*.when*", neutral("the trip condition changed: review")),
    ("BreakerPolicy", "spec.breakers.*.metric", neutral("the breaker watches another metric")),
    (
        "BreakerPolicy",
        "spec.breakers.*.action",
        ranked(BREAKER_ACTIONS, "a weaker action", "a stronger action"),
    ),
    (
        "BreakerPolicy",
        "spec.breakers.*.severity",
        ranked(_SEVERITY, "a quieter alert", "a louder alert"),
    ),
    (
        "BreakerPolicy",
        "spec.breakers.*.cooldown_s",
        higher(False, "stays tripped longer", "re-arms sooner"),
    ),
    (
        "BreakerPolicy",
        "spec.breakers.*.reset",
        ranked(("manual", "auto"), "re-arms by itself", "waits for an operator"),
    ),
    ("BreakerPolicy", "spec.breakers.*.scope", neutral("evaluated for another subject")),
    ("BreakerPolicy", "spec.breakers.*.size_factor", _size_factor),
    (
        "EscalationPolicy",
        "spec.levels.*.breach_atr",
        higher(True, "the level starts later", "starts sooner"),
    ),
    (
        "EscalationPolicy",
        "spec.levels.*.interval_s",
        higher(True, "checked less often", "checked more often"),
    ),
    ("EscalationPolicy", "spec.levels.*.actions", members(TIGHTENS, "what the level does")),
    (
        "EscalationPolicy",
        "spec.deescalation.*",
        higher(False, "steps down later", "steps down sooner"),
    ),
    ("EscalationPolicy", "spec.atr*", neutral("how ATR is measured: review")),
    ("EscalationPolicy", "spec.reference", neutral("breach measured from another price")),
    ("LimitPolicy", "spec.trading_states.*", members(LOOSENS, "order actions allowed")),
    ("LimitPolicy", "spec.kill_switch.on_drift", flag(True, "trip on drift")),
    ("LimitPolicy", "spec.include_manual_positions", flag(True, "manual positions count")),
    ("LimitPolicy", "spec.region.*_allowed", flag(False, "allowed by the region")),
    ("LimitPolicy", "spec.region.code", neutral("region code, for people")),
    ("LimitPolicy", "spec.orders.submit_rate", _rate),
    ("LimitPolicy", "spec.orders.modify_rate", _rate),
    (
        "LimitPolicy",
        "spec.orders.pending_ttl_s",
        higher(False, "pending orders count longer", "count shorter"),
    ),
    (
        "LimitPolicy",
        "spec.on_breach",
        ranked(("deny", "downsize"), "approves a smaller order", "denies instead of downsizing"),
    ),
    ("LimitPolicy", "spec.sizing*", neutral("how a size is computed: review")),
    ("LimitPolicy", "spec.risk.borrowing.allowed", flag(False, "exposure above equity allowed")),
    (
        "LimitPolicy",
        "spec.risk.borrowing.max_leverage",
        higher(True, "more exposure above equity allowed", "less exposure above equity"),
    ),
    ("LimitPolicy", "spec.risk.borrowing", lambda d: presence(d, inverted=True)),
    (
        "LimitPolicy",
        "spec.instruments.*.*_size",
        higher(False, "a coarser grid: fewer prices or sizes pass", "a finer grid"),
    ),
    ("ProtectionPolicy", "spec.regime_override", lambda d: presence(d, inverted=True)),
    ("ProtectionPolicy", "spec.regime_override.enabled", flag(False, "overrides bypass")),
    ("ProtectionPolicy", "spec.regime_override.may_bypass", members(LOOSENS, "bypassable")),
    (
        "ProtectionPolicy",
        "spec.regime_override.min_severity",
        ranked(
            tuple(reversed(REGIME_SEVERITIES)),
            "a milder regime may override",
            "a more severe regime is needed",
        ),
    ),
    (
        "ProtectionPolicy",
        "spec.regime_override.cooldown_s",
        higher(False, "fewer overrides", "more overrides"),
    ),
    ("ProtectionPolicy", "spec.*.enabled", flag(True, "the protection runs")),
    ("ProtectionPolicy", "spec.core_asset_immunity.*", members(TIGHTENS, "immune assets")),
    ("ProtectionPolicy", "spec.hierarchy", members(TIGHTENS, "protections checked")),
    ("ProtectionPolicy", "spec.on_error", _deny_on_error),
    (
        "ProtectionPolicy",
        "spec.*.duration_days",
        higher(False, "protects longer", "protects shorter"),
    ),
    (
        "ProtectionPolicy",
        "spec.*.window_days",
        higher(False, "looks back longer", "looks back less"),
    ),
    (
        "ProtectionPolicy",
        "spec.history.*.lookback_s",
        higher(False, "looks back longer", "looks back less"),
    ),
    ("ProtectionPolicy", "spec.history.*.lock_s", higher(False, "locks longer", "locks shorter")),
    (
        "ProtectionPolicy",
        "spec.history.*.trade_limit",
        higher(True, "needs more trades", "fires with fewer trades"),
    ),
    ("ProtectionPolicy", "spec.history.*.only_per_side", flag(False, "locks one side only")),
    (
        "ProtectionPolicy",
        "spec.history.*.required_profit_pct",
        higher(False, "a higher profit floor", "a lower profit floor"),
    ),
    ("RollPolicy", "spec.triggers.*", higher(True, "rolls later", "rolls sooner")),
    ("RollPolicy", "spec.urgency.*", higher(True, "urgent later", "urgent sooner")),
    ("RollPolicy", "spec.economics.max_*", higher(True, "pays more to roll", "pays less to roll")),
    (
        "RollPolicy",
        "spec.economics.min_*",
        higher(False, "demands more credit", "demands less credit"),
    ),
    ("RollPolicy", "spec.*", neutral("roll targets and costs: review")),
    ("PolicySet", "spec.*", members(TIGHTENS, "what the set must contain")),
)


def _under_bound(delta: Delta) -> Verdict | None:
    """`max_*` / `min_*` fields, and the entries of a `max_*` map (per strategy, sector)."""
    for token in reversed(delta.path):
        if token.startswith(("max_", "min_")) and delta.change == "removed":
            return Verdict(LOOSENS, f"removed: the {token} limit is gone")
        if token.startswith(("max_", "min_")) and delta.change == "added":
            return Verdict(TIGHTENS, f"added: a new {token} limit")
        if token.startswith("max_"):
            return higher(True, f"{token} allows more", f"{token} allows less")(delta)
        if token.startswith("min_"):
            return higher(False, f"{token} demands more", f"{token} demands less")(delta)
    return None


def judge(delta: Delta) -> Verdict:
    """The direction of one change, and why."""
    if not delta.path:  # a whole policy
        mode = (delta.old_parent or delta.new_parent).get("mode", "enforce")
        if mode != "enforce":
            return Verdict(NEUTRAL, f"a {mode} policy {delta.change}: it never blocks")
        if delta.change == "removed":
            return Verdict(LOOSENS, "removed: every protection of this enforce policy is gone")
        return Verdict(TIGHTENS, "added: a new policy in enforce mode")
    dotted = ".".join(delta.generic)
    for kind, pattern, rule in _RULES:
        if kind in ("*", delta.kind) and fnmatchcase(dotted, pattern):
            verdict = rule(delta)
            if verdict is not None:
                return verdict
            break
    bound = _under_bound(delta)
    if bound is not None:
        return bound
    if delta.change != "changed":
        return presence(delta)
    return Verdict(NEUTRAL, "no rule says which way this field protects: review")
