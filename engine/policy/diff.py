"""Stage: two loaded policy sets -> what changed in meaning, field by field.

Both sides are compared as the loader resolved them (after `extends`, with the
schema's defaults filled in, breaker `defaults` pushed into each breaker), so a
reformatted file, a moved key or a comment is no change, while an edit in a base
shows on every overlay that inherits it. Lists whose items carry an `id` (or a
`name`) are matched item by item on it, as `extends` merges them; lists of words
(actions, assets) are compared as a whole. Free text (`description`) is ignored.

Each change says where it came from (file:line:col of the new value, or of the old
one for a removal; "default" when no file wrote it) and which way it moves
protection (engine/policy/diff_direction.py). Pure: two sets in, a SetDiff out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from bastion.engine.policy.diff_direction import LOOSENS, NEUTRAL, TIGHTENS, Delta, judge
from bastion.engine.policy.model import Policy, PolicySet
from bastion.engine.policy.yamlsource import Location, pointer_join

IGNORED_KEYS = frozenset({"description"})  # text for people, never read by the engine
ADDED, REMOVED, CHANGED = "added", "removed", "changed"


@dataclass(frozen=True, slots=True)
class Change:
    """One field (or item, or whole policy) whose meaning differs between the sets."""

    path: str  # spec.breakers[daily_loss_pct].threshold; "" for the whole policy
    change: str  # added | removed | changed
    old: Any  # JSON value; None when added
    new: Any  # JSON value; None when removed
    direction: str  # loosens | tightens | neutral
    reason: str  # why that direction, for people
    where: str  # file:line:col that wrote the value, or "default"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "old": self.old,
            "new": self.new,
            "direction": self.direction,
            "reason": self.reason,
            "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    """The changes of one policy, known by kind and name on both sides."""

    kind: str
    name: str
    status: str  # added | removed | changed
    changes: tuple[Change, ...]
    old_file: str = ""
    new_file: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.key,
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "old_file": self.old_file,
            "new_file": self.new_file,
            "changes": [change.as_dict() for change in self.changes],
        }


@dataclass(frozen=True, slots=True)
class SetDiff:
    """Every policy whose meaning changed, in (kind, name) order."""

    old_label: str
    new_label: str
    policies: tuple[PolicyDiff, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        return bool(self.policies)

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(change for policy in self.policies for change in policy.changes)

    def count(self, direction: str) -> int:
        return sum(1 for change in self.changes if change.direction == direction)

    def summary(self) -> dict[str, int]:
        return {
            "policies": len(self.policies),
            "changes": len(self.changes),
            LOOSENS: self.count(LOOSENS),
            TIGHTENS: self.count(TIGHTENS),
            NEUTRAL: self.count(NEUTRAL),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": self.old_label,
            "new": self.new_label,
            "changed": self.changed,
            "summary": self.summary(),
            "policies": [policy.as_dict() for policy in self.policies],
        }


@dataclass(frozen=True, slots=True)
class _Side:
    """One policy as compared: its normalised document and where each part came from."""

    policy: Policy
    document: Mapping[str, Any]
    aliases: Mapping[str, str]  # normalised pointer -> pointer in the policy's positions

    def where(self, pointer: str) -> str:
        source = self.aliases.get(pointer, pointer)
        if source not in self.policy.positions.values:
            return "default"
        location: Location = self.policy.positions.values[source]
        return str(location)


def _members(policy_set: PolicySet) -> dict[tuple[str, str], Policy]:
    return {(p.kind, p.name): p for p in policy_set.members}


def diff_sets(old: PolicySet, new: PolicySet, old_label: str = "", new_label: str = "") -> SetDiff:
    """What changed in meaning from `old` to `new` (both loaded by the policy loader)."""
    before, after = _members(old), _members(new)
    diffs: list[PolicyDiff] = []
    for key in sorted(before.keys() | after.keys()):
        policy_diff = diff_policies(before.get(key), after.get(key))
        if policy_diff is not None:
            diffs.append(policy_diff)
    return SetDiff(old_label, new_label, tuple(diffs))


def diff_policies(old: Policy | None, new: Policy | None) -> PolicyDiff | None:
    """The changes of one policy, or None when its meaning is the same on both sides."""
    if old is None or new is None:
        return _whole(old, new)
    changes = tuple(_compare(old.kind, _side(old), _side(new)))
    if not changes and compiled_meaning(old) != compiled_meaning(new):
        # Fail closed: never say "no change" when what the engine runs differs.
        changes = (
            Change(
                "spec",
                CHANGED,
                None,
                None,
                NEUTRAL,
                "the compiled policy differs where no field shows it: review",
                str(new.source),
            ),
        )
    if not changes:
        return None
    if old.mode == new.mode != "enforce":  # a shadow policy never blocks either way
        changes = tuple(
            replace(c, direction=NEUTRAL, reason=f"{c.reason} (in {new.mode} mode: never blocks)")
            for c in changes
        )
    return PolicyDiff(old.kind, old.name, CHANGED, changes, old.source.file, new.source.file)


def _whole(old: Policy | None, new: Policy | None) -> PolicyDiff | None:
    """A policy only one side has: one change for the whole of it."""
    present = new if old is None else old
    if present is None:
        return None
    change = ADDED if old is None else REMOVED
    verdict = judge(Delta(present.kind, (), (), change, None, None, _data(old), _data(new)))
    whole = Change(
        "",
        change,
        None if old is None else _summary(old),
        None if new is None else _summary(new),
        verdict.direction,
        verdict.reason,
        str(present.source),
    )
    old_file = "" if old is None else old.source.file
    new_file = "" if new is None else new.source.file
    return PolicyDiff(present.kind, present.name, change, (whole,), old_file, new_file)


def compiled_meaning(policy: Policy) -> Any:
    """What the engine runs: the envelope and the built spec, free text left out."""
    envelope = (policy.mode, policy.scope, policy.precedence)
    return (envelope, _without_text(policy.spec))


def _without_text(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return tuple(
            (f.name, _without_text(getattr(value, f.name)))
            for f in fields(value)
            if f.name not in IGNORED_KEYS
        )
    if isinstance(value, tuple | list):
        return tuple(_without_text(item) for item in value)
    if isinstance(value, frozenset | set):
        return frozenset(_without_text(item) for item in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _without_text(v)) for k, v in value.items()))
    return value


def _data(policy: Policy | None) -> Mapping[str, Any]:
    return {} if policy is None else policy.document


def _summary(policy: Policy) -> str:
    return (
        f"{policy.mode} policy covering {policy.scope.describe()} (version {policy.short_version})"
    )


def _side(policy: Policy) -> _Side:
    """The policy's resolved document, normalised so equal meaning compares equal."""
    document = {k: v for k, v in policy.document.items() if k not in ("apiVersion", "kind")}
    metadata = {k: v for k, v in document.get("metadata", {}).items() if k != "name"}
    document["metadata"] = metadata
    aliases: dict[str, str] = {}
    if policy.kind == "BreakerPolicy":
        document["spec"] = _breakers_with_defaults(document["spec"], aliases)
    return _Side(policy, document, aliases)


def _breakers_with_defaults(spec: Mapping[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    """Each breaker with its effective cooldown and reset; `spec.defaults` dropped.

    Moving `cooldown_s: 3600` from `defaults` into every breaker changes nothing:
    the loader's build applies the defaults the same way.
    """
    defaults = spec.get("defaults", {})
    breakers = []
    for index, breaker in enumerate(spec.get("breakers", [])):
        effective = dict(breaker)
        for name in ("cooldown_s", "reset"):
            if name not in effective and name in defaults:
                effective[name] = defaults[name]
                aliases[f"/spec/breakers/{index}/{name}"] = f"/spec/defaults/{name}"
        breakers.append(effective)
    return {**{k: v for k, v in spec.items() if k != "defaults"}, "breakers": breakers}


def _item_key(*lists: Sequence[Any]) -> str | None:
    """`id` (or `name`) when every item of every list is a mapping that has it."""
    for key in ("id", "name"):
        if all(isinstance(item, dict) and key in item for items in lists for item in items):
            return key
    return None


def same(old: Any, new: Any) -> bool:
    """Equal in meaning: 5 and 5.0 are the same number; true is never 1."""
    old_number, new_number = _number(old), _number(new)
    if old_number is not None and new_number is not None:
        return old_number == new_number
    if isinstance(old, dict) and isinstance(new, dict):
        keys = (old.keys() | new.keys()) - IGNORED_KEYS
        return all(k in old and k in new and same(old[k], new[k]) for k in keys)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(same(a, b) for a, b in zip(old, new, strict=True))
    return type(old) is type(new) and bool(old == new)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:  # pragma: no cover - the loader refuses non-finite numbers
        return None


@dataclass(frozen=True, slots=True)
class _At:
    """One place being compared: its pointer on each side and its names for people."""

    old_pointer: str
    new_pointer: str
    path: tuple[str, ...]  # display tokens: ("spec", "breakers", "[daily_loss_pct]")
    generic: tuple[str, ...]  # rule tokens: ("spec", "breakers", "*")

    def child(self, old_token: str | int, new_token: str | int, label: str, rule: str) -> _At:
        return _At(
            pointer_join(self.old_pointer, old_token),
            pointer_join(self.new_pointer, new_token),
            (*self.path, label),
            (*self.generic, rule),
        )

    @property
    def display(self) -> str:
        return "".join(
            t if t.startswith("[") or i == 0 else f".{t}" for i, t in enumerate(self.path)
        )


def _compare(kind: str, old: _Side, new: _Side) -> Iterator[Change]:
    root = _At("", "", (), ())
    yield from _walk(kind, old, new, old.document, new.document, {}, {}, root)


def _walk(
    kind: str,
    old_side: _Side,
    new_side: _Side,
    old: Any,
    new: Any,
    old_parent: Mapping[str, Any],
    new_parent: Mapping[str, Any],
    at: _At,
) -> Iterator[Change]:
    if same(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            if key in IGNORED_KEYS:
                continue
            child = at.child(key, key, key, key)
            if key not in new:
                yield _change(kind, old_side, new_side, REMOVED, old[key], None, old, new, child)
            elif key not in old:
                yield _change(kind, old_side, new_side, ADDED, None, new[key], old, new, child)
            else:
                yield from _walk(kind, old_side, new_side, old[key], new[key], old, new, child)
        return
    if isinstance(old, list) and isinstance(new, list):
        key = _item_key(old, new) if old and new else _item_key(old or new)
        structured = any(isinstance(item, dict | list) for item in [*old, *new])
        if key is not None:
            yield from _walk_keyed(kind, old_side, new_side, old, new, key, at)
            return
        if structured:
            yield from _walk_indexed(kind, old_side, new_side, old, new, at)
            return
    yield _change(kind, old_side, new_side, CHANGED, old, new, old_parent, new_parent, at)


def _walk_keyed(
    kind: str,
    old_side: _Side,
    new_side: _Side,
    old: list[Any],
    new: list[Any],
    key: str,
    at: _At,
) -> Iterator[Change]:
    old_index = {item[key]: index for index, item in enumerate(old)}
    new_index = {item[key]: index for index, item in enumerate(new)}
    for name in [*old_index, *(n for n in new_index if n not in old_index)]:
        i, j = old_index.get(name, -1), new_index.get(name, -1)
        child = at.child(i, j, f"[{name}]", "*")
        if j < 0:
            yield _change(kind, old_side, new_side, REMOVED, old[i], None, {}, {}, child)
        elif i < 0:
            yield _change(kind, old_side, new_side, ADDED, None, new[j], {}, {}, child)
        else:
            yield from _walk(kind, old_side, new_side, old[i], new[j], {}, {}, child)


def _walk_indexed(
    kind: str, old_side: _Side, new_side: _Side, old: list[Any], new: list[Any], at: _At
) -> Iterator[Change]:
    for index in range(max(len(old), len(new))):
        child = at.child(index, index, f"[{index}]", "*")
        if index >= len(new):
            yield _change(kind, old_side, new_side, REMOVED, old[index], None, {}, {}, child)
        elif index >= len(old):
            yield _change(kind, old_side, new_side, ADDED, None, new[index], {}, {}, child)
        else:
            yield from _walk(kind, old_side, new_side, old[index], new[index], {}, {}, child)


def _change(
    kind: str,
    old_side: _Side,
    new_side: _Side,
    change: str,
    old: Any,
    new: Any,
    old_parent: Mapping[str, Any],
    new_parent: Mapping[str, Any],
    at: _At,
) -> Change:
    verdict = judge(Delta(kind, at.path, at.generic, change, old, new, old_parent, new_parent))
    where = old_side.where(at.old_pointer) if change == REMOVED else new_side.where(at.new_pointer)
    if where == "default" and change == CHANGED:
        # The line that set the old value was deleted: point at where it was.
        was = old_side.where(at.old_pointer)
        where = "default" if was == "default" else f"default (was set at {was})"
    return Change(at.display, change, old, new, verdict.direction, verdict.reason, where)
