"""RuleSpecs compiled to one durable-rules ruleset; facts matched synchronously in batches.

How a match works (and why):

- Every rule becomes one durable-rules rule over *facts*, not events: an event is
  consumed by the first rule that fires, a fact fires every rule it satisfies.
- A batch of facts is asserted in one call into a fresh session; each fact carries its
  index ``i`` and only the fields the rules compare, renamed ``f0, f1, ...`` (`facts`).
- Each rule has ``cap`` set, so one action returns every fact it matched in the chunk;
  we read the rule name and the ``i`` values from the action's JSON and never run a
  Python callback. Nothing is swallowed, nothing is deferred to a thread.
- A sentinel fact (``i = -1``) matched by a sentinel rule guarantees at least one action
  per session, which initialises the session's action context; the session is then
  deleted. Deleting a session that never ran an action frees uninitialised pointers in
  durable-rules 2.0.28 (see `_native.delete_state`).

Lifecycle: no `durable.engine.Host` is ever created, so no thread is started. Each
CompiledRuleset owns one C ruleset and frees it on `close()` or when it is garbage
collected; 1,000 recompilations leave thread count and memory flat (tests/rules). After
any C failure the ruleset is discarded without touching its session and rebuilt from
its definition on the next call: a small leak, instead of trusting a half-run session.

The trade-off, measured: a Host per policy version leaks two timer threads each; one
long-lived Host cannot delete a ruleset, so 1,000 reloads cost ~520 MB and its timer
threads spend ~20 % of a core walking dead rulesets. A fixed pool of ruleset slots, or
one ruleset per rule shape with thresholds passed in the facts, would work around that
but moves the thresholds out of the rules engine. Calling the C layer directly costs a
dependency on its function-level API: pinned, confined to `_native`, covered by tests.

Conditions are evaluated by the Rete network in C; Python only checks and encodes
the values (`values`, `facts`) and reads back which rules fired.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bastion.engine.errors import RuleEngineError
from bastion.engine.rules import _native
from bastion.engine.rules.facts import FactEncoder, classifier, equality_only_fields
from bastion.engine.rules.spec import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Kind,
    Ref,
    RuleSpec,
    Threshold,
    field_kinds,
    parameters,
    to_negation_normal_form,
)
from bastion.engine.rules.values import encode, normalize

CHUNK_SIZE = 256  # facts per session; bounds C memory (~8 KB per stored fact)
LIVE_FACTS = 32  # facts match_one's kept session holds before it is renewed
# match_one's memo, per ruleset (each cleared when full): ~300 bytes an answer, a few KB
# a set of parameters' values (one per policy pair sharing the ruleset: a 50 x 50 grid
# shares a ruleset between up to ~2,500 pairs); a ruleset meets few classes of facts.
MEMO_SIZE = 2048  # remembered answers, every set of parameters' values together
MEMO_PARAMETERS = 4096  # sets of parameters' values with a memo
MAX_FIELDS = 200  # durable-rules keeps at most 255 properties per fact
# durable-rules links a node's children in a 512-slot hash table and its lookup loop has
# no exit when the table is full: the 513th distinct condition under one node makes
# create_ruleset spin forever. Comparisons + `any` groups bound the children of any node.
MAX_CONDITION_NODES = 500
SENTINEL_RULE = "s"
_SENTINEL_FACT = '{"i":-1}'
_FACT_INDEX = re.compile(r'"i":(\d+)')
_DURABLE_OP = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte", "!=": "$neq"}
_EMPTY: frozenset[str] = frozenset()


class _Handle:
    """The C ruleset behind one CompiledRuleset; also what its finalizer releases."""

    __slots__ = ("definition_json", "name", "value")

    def __init__(self, name: str, definition_json: str) -> None:
        self.name = name
        self.definition_json = definition_json
        self.value: int | None = None

    def open(self) -> int:
        if self.value is None:
            self.value = _native.create_ruleset(self.name, self.definition_json)
        return self.value

    def release(self) -> None:
        """Free the ruleset; sessions are already deleted (or deliberately abandoned)."""
        handle, self.value = self.value, None
        if handle is not None:
            with contextlib.suppress(RuleEngineError):  # never raise from a finalizer
                _native.delete_ruleset(handle)


class CompiledRuleset:
    """Rules compiled into durable-rules; `match` tells, per fact, which rules hold.

    Thread-safe (one lock per instance; the C engine holds the GIL throughout anyway)
    and deterministic: the result depends only on the rules and the facts.
    """

    def __init__(self, specs: Sequence[RuleSpec]) -> None:
        specs = tuple(specs)
        kinds = field_kinds(specs)
        if len(kinds) > MAX_FIELDS:
            raise RuleEngineError(f"the rules compare {len(kinds)} fields; at most {MAX_FIELDS}")
        # Parameters (thresholds carried in the fact, `spec.Ref`) are not read from the
        # fact: `params` encodes their values once, `match_one` appends them.
        params = sorted(parameters(specs))
        self.param_keys: Mapping[str, str] = {name: f"t{n}" for n, name in enumerate(params)}
        self._facts = _encoder(
            tuple(sorted((k, v) for k, v in kinds.items() if k not in self.param_keys))
        )
        keys = {**self._facts.keys, **self.param_keys}
        self.rule_ids: tuple[str, ...] = tuple(spec.rule_id for spec in specs)
        self.field_kinds: Mapping[str, Kind] = dict(sorted(kinds.items()))
        self._rule_by_name = {f"r{index}": spec.rule_id for index, spec in enumerate(specs)}
        definition = {SENTINEL_RULE: _rule({"$lt": {"i": 0}})}
        nodes = 1
        for index, spec in enumerate(specs):
            condition = to_negation_normal_form(spec.condition)
            nodes += _condition_nodes(condition)
            definition[f"r{index}"] = _rule(_durable_condition(spec.rule_id, condition, keys))
        if nodes > MAX_CONDITION_NODES:
            raise RuleEngineError(
                f"the rules hold {nodes} comparisons and `any` groups; one ruleset takes at "
                f"most {MAX_CONDITION_NODES} (durable-rules hangs beyond 511): split them"
            )
        definition_json = encode(definition)
        self.fingerprint = hashlib.sha256(definition_json.encode()).hexdigest()
        self._handle = _Handle(f"bastion-{self.fingerprint[:16]}", definition_json)
        self._lock = threading.Lock()
        self._closed = False
        self._live_state: int | None = None  # the session match_one keeps open
        self._live_facts = 0  # facts asserted into it so far
        # match_one's encoder: a bool or string field the rules only compare by equality
        # is left out when it is none of the values compared (no rule can hold on it
        # either way; the engine reads fewer fields).
        self._encode_one = self._facts.sparse(equality_only_fields(definition, self._facts.keys))
        # match_one's memo, per parameters' values: the engine's answer for a class of
        # facts it cannot tell apart (`facts.classifier`: every compared value on the
        # same side of every threshold the rules compare it with), made on first use.
        self._memos: dict[str, _Memo] = {}
        self._memo_size = 0  # answers in all of them
        self._handle.open()  # compile errors surface here, not at the first match
        self._finalizer = weakref.finalize(self, self._handle.release)

    def definition(self) -> dict[str, Any]:
        """The durable-rules definition (a fresh copy; field keys as in `field_keys`)."""
        result: dict[str, Any] = json.loads(self._handle.definition_json)
        return result

    @property
    def field_keys(self) -> Mapping[str, str]:
        """Fact field path → the short key the engine sees (``f0``, ``f1``, ...)."""
        return dict(self._facts.keys)

    @property
    def closed(self) -> bool:
        return self._closed

    def params(self, values: Mapping[str, Threshold]) -> str:
        """The parameters' values as `match_one` appends them to a fact: each written
        exactly as a threshold in the rule is (`normalize`, then `encode`), so that the
        engine compares the same two doubles. Raises RuleEngineError for a missing,
        unknown or unusable value."""
        if set(values) != set(self.param_keys):
            raise RuleEngineError(
                f"parameters {sorted(values)} given; the rules take {sorted(self.param_keys)}"
            )
        pieces = []
        for name, key in self.param_keys.items():
            value = values[name]
            if isinstance(value, bool | str | Ref):
                raise RuleEngineError(f"parameter {name!r}: expected a number, got {value!r}")
            pieces.append(f',"{key}":{encode(normalize(value, f"parameter {name!r}"))}')
        return "".join(pieces)

    def match(self, facts: Sequence[Mapping[str, Any]], params: str = "") -> list[frozenset[str]]:
        """For each fact, in order, the ids of the rules whose condition holds.

        Every field a rule compares must be present in every fact with the kind the
        rule compares it to (a number, never a bool or a numeric string). Raises
        RuleEngineError naming the fact and field otherwise, or when the engine fails;
        callers turn that into the conservative decision. `params`: as for `match_one`.
        """
        encode = self._facts.encode
        encoded = [encode(index, fact) for index, fact in enumerate(facts)]
        if params:
            encoded = [text[:-1] + params + "}" for text in encoded]
        elif self.param_keys:
            raise RuleEngineError(f"ruleset {self.fingerprint[:12]}: parameters required")
        matched: dict[int, list[str]] = {}  # only the facts some rule matched
        with self._lock:
            if self._closed:
                raise RuleEngineError(f"ruleset {self.fingerprint[:12]} is closed")
            self._end_live_session()
            for start in range(0, len(encoded), CHUNK_SIZE):
                chunk = encoded[start : start + CHUNK_SIZE]
                self._match_chunk("[" + _SENTINEL_FACT + "," + ",".join(chunk) + "]", matched)
        result = [_EMPTY] * len(encoded)
        for index, rule_ids in matched.items():
            result[index] = frozenset(rule_ids)
        return result

    def match_one(self, fact: Mapping[str, Any], params: str = "") -> frozenset[str]:
        """`match` for one fact, on a session kept open between calls.

        The session is started with the sentinel (so its action context is
        initialised); then each fact is asserted under the next index and its actions
        drained. Rules match one fact each, so the facts already in the session never
        fire again; after LIVE_FACTS facts the session is deleted and a new one started
        (cheaper than retracting each fact, and its memory stays bounded). About twice
        as fast as a fresh session per fact — what `can_execute` needs, one request at a
        time. Any failure discards the session and the ruleset, as `match` does.
        `params`: the parameters' values, as `params` wrote them (rules with `Ref`s).

        A fact the engine cannot tell apart from one it already matched (the memo's
        classifier, `facts.classifier`: each compared value on the same side of each of
        its thresholds, bools and strings equal) gets that match's answer without a
        second call: durable-rules decided it once for the whole class
        (tests/rules/test_match_one_memo.py).
        """
        memo = self._memos.get(params)
        if memo is None:
            memo = self._new_memo(params)
        classify, answers = memo
        key = None
        if classify is not None:
            try:
                key = classify(fact)
            except Exception:  # an unusual value: the engine decides (or refuses it)
                key = None
            else:
                known = answers.get(key)
                if known is not None and not self._closed:
                    return known
        fired = self._match_one(fact, params)
        if key is not None:
            if self._memo_size >= MEMO_SIZE:
                for _, kept in self._memos.values():
                    kept.clear()
                self._memo_size = 0
            answers[key] = fired
            self._memo_size += 1
        return fired

    def _new_memo(self, params: str) -> _Memo:
        """The classifier for these parameters' values (each `Ref` to a parameter read
        as the constant `params` gives it, as the engine reads it) and an empty memo.
        No classifier (every fact to the engine) when the rules compare two fields of
        the fact, or the parameters are not what `params` writes."""
        classify = None
        with contextlib.suppress(Exception):  # anything unusual: the engine decides
            definition = json.loads(self._handle.definition_json)
            if params:
                values = json.loads("{" + params[1:] + "}")
                if set(values) != set(self.param_keys.values()):
                    raise ValueError("parameters")
                definition = _with_constants(definition, values)
            classify = classifier(definition, self._facts.keys, self.field_kinds)
        memo: _Memo = (classify, {})
        if len(self._memos) >= MEMO_PARAMETERS:
            self._memos.clear()
            self._memo_size = 0
        self._memos[params] = memo
        return memo

    def _match_one(self, fact: Mapping[str, Any], params: str) -> frozenset[str]:
        """The engine's answer for one fact, on the kept session (`match_one`)."""
        try:
            encoded = self._encode_one(0, fact)
        except Exception:  # the checked path: in full, or the error naming facts[0]
            encoded = self._facts.encode(0, fact)
        if params:
            encoded = encoded[:-1] + params + "}"
        elif self.param_keys:
            raise RuleEngineError(f"ruleset {self.fingerprint[:12]}: parameters required")
        with self._lock:
            if self._closed:
                raise RuleEngineError(f"ruleset {self.fingerprint[:12]} is closed")
            handle = self._handle.open()
            try:
                if self._live_state is None or self._live_facts >= LIVE_FACTS:
                    self._end_live_session()
                    self._live_state = self._start_live_session(handle)
                if self._live_facts:  # a fresh index: durable-rules ignores a repeated fact
                    encoded = f'{{"i":{self._live_facts}' + encoded[6:]  # after '{"i":0'
                self._live_facts += 1
                frames = _native.assert_and_drain(handle, self._live_state, encoded)
                fired = [self._rule_by_name[frame[2 : frame.index('"', 2)]] for frame in frames]
            except Exception as error:
                self._live_state = None
                self._handle.release()  # never reuse a half-run session; rebuild next call
                if isinstance(error, RuleEngineError):
                    raise
                raise RuleEngineError(f"rules engine: {type(error).__name__}: {error}") from error
        return frozenset(fired) if fired else _EMPTY

    def _start_live_session(self, handle: int) -> int:
        _, state = _native.assert_fact(handle, _SENTINEL_FACT)
        frames = _native.start_action(handle, state)
        if frames is None:
            raise RuleEngineError("rules engine: the sentinel rule did not fire")
        while frames is not None:
            frames = _native.complete_and_start_action(handle, state)
        self._live_facts = 0
        return state

    def _end_live_session(self) -> None:
        """Delete the kept session (its action context is initialised: safe to delete)."""
        if self._live_state is not None and self._handle.value is not None:
            self._live_state = None
            _native.delete_state(self._handle.value)
        self._live_state = None

    def close(self) -> None:
        """Free the C ruleset now (idempotent). Dropping the last reference does it too."""
        with self._lock:
            self._closed = True
            with contextlib.suppress(RuleEngineError):
                self._end_live_session()
            self._finalizer()

    def __enter__(self) -> CompiledRuleset:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _match_chunk(self, payload: str, matched: dict[int, list[str]]) -> None:
        handle = self._handle.open()
        try:
            result, state = _native.assert_facts(handle, payload)
            if result not in (_native.RULES_OK, _native.EVENT_NOT_HANDLED):
                raise RuleEngineError(f"rules engine: unexpected assert result {result}")
            frames = _native.start_action(handle, state)
            if frames is None:
                raise RuleEngineError("rules engine: the sentinel rule did not fire")
            while frames is not None:
                name = frames[2 : frames.index('"', 2)]
                if name != SENTINEL_RULE:
                    rule_id = self._rule_by_name[name]
                    for fact_index in _FACT_INDEX.findall(frames):
                        matched.setdefault(int(fact_index), []).append(rule_id)
                frames = _native.complete_and_start_action(handle, state)
            _native.delete_state(handle)
        except Exception as error:
            self._handle.release()  # never delete a half-run session; rebuild next call
            if isinstance(error, RuleEngineError):
                raise
            raise RuleEngineError(f"rules engine: {type(error).__name__}: {error}") from error


_Memo = tuple[
    Callable[[Mapping[str, Any]], tuple[Any, ...]] | None, dict[tuple[Any, ...], frozenset[str]]
]


def _with_constants(condition: Any, values: Mapping[str, Any]) -> Any:
    """A durable-rules definition with each reference to a parameter (``{"$m": "t0"}``)
    replaced by the parameter's value; references to fact fields stay."""
    if isinstance(condition, list):
        return [_with_constants(item, values) for item in condition]
    if not isinstance(condition, dict):
        return condition
    if len(condition) == 1 and "$m" in condition and condition["$m"] in values:
        return values[condition["$m"]]
    return {key: _with_constants(value, values) for key, value in condition.items()}


def compile_rules(specs: Sequence[RuleSpec]) -> CompiledRuleset:
    """Validate and compile; raises RuleEngineError naming the rule at fault."""
    return CompiledRuleset(specs)


@functools.lru_cache(maxsize=1024)
def _encoder(kinds: tuple[tuple[str, Kind], ...]) -> FactEncoder:
    """One encoder per set of fields: it holds no state, and writing its fast path
    (`exec`) is most of a compile (~2 ms of ~3) — rulesets over the same fields share it."""
    return FactEncoder(dict(kinds))


def _condition_nodes(condition: Condition) -> int:
    if isinstance(condition, Compare):
        return 1
    assert isinstance(condition, AllOf | AnyOf)
    children = sum(_condition_nodes(child) for child in condition.conditions)
    return children + (1 if isinstance(condition, AnyOf) and len(condition.conditions) > 1 else 0)


def _rule(condition: dict[str, Any]) -> dict[str, Any]:
    return {"all": [{"m": condition}], "cap": CHUNK_SIZE}


def _durable_condition(rule_id: str, condition: Condition, keys: Mapping[str, str]) -> Any:
    if isinstance(condition, Compare):
        where = f"rule {rule_id!r}, field {condition.field!r}"
        key = keys[condition.field]
        value: Any
        if isinstance(condition.value, Ref):  # the same fact's field: {"$m": its key}
            value = {"$m": keys[condition.value.field]}
        else:
            value = normalize(condition.value, where)
        if condition.op == "==":
            return {key: value}
        return {_DURABLE_OP[condition.op]: {key: value}}
    assert isinstance(condition, AllOf | AnyOf)  # negation normal form: no Not left
    children = [_durable_condition(rule_id, child, keys) for child in condition.conditions]
    if len(children) == 1:
        return children[0]
    return {"$and" if isinstance(condition, AllOf) else "$or": children}
