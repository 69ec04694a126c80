"""A bounded cache of compiled rulesets, shared by every rule list with the same rules.

Rule lists that are equal (the same RuleSpecs, thresholds of the same types) compile to
the same durable-rules definition, so they share one `CompiledRuleset`: a policy set
with thousands of (protection, limit) pairs compiles each distinct list once, when it
is first needed (`get`), not every pair up front.

The cache holds at most `bound` rulesets, least recently used out first; an evicted
ruleset is closed at once (`CompiledRuleset.close`: its C ruleset is deleted, so the
engine's memory stays bounded — measured: 140,000 create/delete cycles leave RSS flat
and the engine's handle slots are reused). A holder that kept a reference to an
evicted ruleset sees it `closed` and asks again: `get` recompiles it, and it decides
the same (same rules, same definition).

Each entry has a small integer token: `touch(token)` marks it used without hashing the
rules again. The order hot path calls it only once the cache is `crowded` (over half
full): until then no eviction is near and recency is not worth ~100 ns a decision.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from decimal import Decimal

from bastion.engine.errors import RuleEngineError
from bastion.engine.rules.compiler import CompiledRuleset, compile_rules
from bastion.engine.rules.spec import Compare, Condition, Not, RuleSpec

DEFAULT_BOUND = 512  # rulesets; ~100 KB of engine memory each for an order pair's rules


class RulesetCache:
    """Compiled rulesets by their rules, at most `bound` of them (LRU). Thread-safe."""

    def __init__(self, bound: int = DEFAULT_BOUND) -> None:
        if bound < 1:
            raise RuleEngineError(f"a ruleset cache holds at least 1 ruleset, not {bound}")
        self.bound = bound
        self._lock = threading.Lock()
        self._tokens: dict[Hashable, int] = {}  # rules key -> token
        self._entries: OrderedDict[int, tuple[Hashable, CompiledRuleset]] = OrderedDict()
        self._next = 0
        self._closed = False
        self.compiled = 0  # rulesets compiled so far (misses)
        self.evicted = 0
        self.crowded = False  # over half full: holders `touch` what they use

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self, specs: Sequence[RuleSpec]) -> tuple[int, CompiledRuleset]:
        """The token and the ruleset for these rules: the cached one, or compiled now.

        Raises RuleEngineError (from `compile_rules`) for rules the engine refuses."""
        specs = tuple(specs)
        key = rules_key(specs)
        with self._lock:
            if self._closed:
                raise RuleEngineError("the ruleset cache is closed")
            token = self._tokens.get(key)
            if token is not None:
                ruleset = self._entries[token][1]
                if not ruleset.closed:
                    self._entries.move_to_end(token)
                    return token, ruleset
                self._drop(token)  # closed by its holder: compile it again
            ruleset = compile_rules(specs)
            self.compiled += 1
            token = self._next
            self._next += 1
            self._tokens[key] = token
            self._entries[token] = (key, ruleset)
            self.crowded = len(self._entries) > self.bound // 2
            while len(self._entries) > self.bound:
                oldest = next(iter(self._entries))
                self._drop(oldest)
                self.evicted += 1
            return token, ruleset

    def touch(self, token: int) -> None:
        """Mark the entry used now (nothing when it was evicted meanwhile)."""
        try:  # noqa: SIM105  # contextlib.suppress costs more than the move (hot path)
            self._entries.move_to_end(token)
        except KeyError:
            pass

    def _drop(self, token: int) -> None:
        key, ruleset = self._entries.pop(token)
        del self._tokens[key]
        ruleset.close()

    def close(self) -> None:
        """Close every cached ruleset and refuse new ones (idempotent)."""
        with self._lock:
            self._closed = True
            while self._entries:
                self._drop(next(iter(self._entries)))


def rules_key(specs: Sequence[RuleSpec]) -> Hashable:
    """What makes two rule lists compile alike: the specs, and the type of every
    threshold (``5`` and ``Decimal(5)`` are equal in Python but an int and a double to
    the engine)."""
    return (tuple(specs), tuple(_types(spec.condition) for spec in specs))


def _types(condition: Condition) -> Hashable:
    if isinstance(condition, Compare):
        value = condition.value
        return "d" if isinstance(value, Decimal) else type(value).__name__
    if isinstance(condition, Not):
        return _types(condition.condition)
    return tuple(_types(child) for child in condition.conditions)
