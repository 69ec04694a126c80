"""The only place Bastion calls durable-rules: its C engine, driven synchronously.

`durable.engine.Ruleset` is a thin Python layer over the extension module
`durable_rules_engine`; `durable.engine.Host` adds two endless timer threads (for
timers and for queued asynchronous actions) and has no way to delete a ruleset. We use
neither layer. We call the C functions `Ruleset` calls, in its order (without
`update_state`: our actions never change session state), plus `delete_ruleset`, which
the C module has and the Python layer never exposes.
The version is pinned (``durable-rules==2.0.28``); a bump is reviewed against this file.

Every C failure surfaces as RuleEngineError with the engine's error code explained.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, cast

from bastion.engine.errors import RuleEngineError

# The C extension ships no type stubs; import it as an explicitly untyped module.
_engine: Any = importlib.import_module("durable_rules_engine")

SID = "0"  # durable-rules' default session id; each of our rulesets uses only this one

# Result codes of assert_* (rules.h): handled, no rule matched a message, duplicate fact.
RULES_OK, EVENT_NOT_HANDLED, EVENT_OBSERVED = 0, 1, 2

_CODES = {
    101: "out of memory",
    102: "unexpected JSON type",
    103: "identifier too long",
    104: "unexpected value",
    106: "too many rules in one ruleset",
    107: "too many `exists` tests under one condition",
    108: "more than 256 rules share one identical condition",
    109: "rule without a qualifier",
    111: "invalid ruleset handle (already deleted?)",
    112: "too many live rulesets (131,071 at most)",
    113: "too many expressions in one condition",
    201: "unparsable JSON value",
    202: "unparsable JSON (Infinity, or an unknown operator)",
    203: "unparsable JSON number",
    204: "unparsable JSON object (a float with an exponent but no decimal point?)",
    205: "unparsable JSON array",
    302: "too many properties in one fact",
    309: "session not found",
}
_CODE = re.compile(r"error code: (\d+)")


def _fail(action: str, error: BaseException) -> RuleEngineError:
    match = _CODE.search(str(error))
    code = int(match.group(1)) if match else 0
    explained = _CODES.get(code, str(error) or type(error).__name__)
    suffix = f" (durable-rules error {code})" if code else ""
    return RuleEngineError(f"rules engine: cannot {action}: {explained}{suffix}")


def create_ruleset(name: str, definition_json: str) -> int:
    try:
        return cast(int, _engine.create_ruleset(name, definition_json))
    except (_engine.error, MemoryError) as error:
        raise _fail("compile the ruleset", error) from error


def delete_ruleset(handle: int) -> None:
    """Free the Rete network. Safe with live sessions: it never reads their contents."""
    try:
        _engine.delete_ruleset(handle)
    except (_engine.error, MemoryError) as error:
        raise _fail("delete the ruleset", error) from error


def assert_facts(handle: int, facts_json: str) -> tuple[int, int]:
    """Assert a JSON array of facts; returns (result code, session state offset)."""
    try:
        return cast(tuple[int, int], _engine.assert_facts(handle, facts_json))
    except (_engine.error, MemoryError) as error:
        raise _fail("assert the facts", error) from error


def assert_fact(handle: int, fact_json: str) -> tuple[int, int]:
    """Assert one JSON fact; returns (result code, session state offset)."""
    try:
        return cast(tuple[int, int], _engine.assert_fact(handle, fact_json))
    except (_engine.error, MemoryError) as error:
        raise _fail("assert the fact", error) from error


def start_action(handle: int, state_offset: int) -> str | None:
    """The first pending action's result frames as JSON, or None when nothing matched."""
    try:
        result = _engine.start_action_for_state(handle, state_offset)
    except (_engine.error, MemoryError) as error:
        raise _fail("start an action", error) from error
    return None if result is None else cast(str, result[1])


def complete_and_start_action(handle: int, state_offset: int) -> str | None:
    """Mark the current action done and return the next one's frames, or None."""
    try:
        return cast("str | None", _engine.complete_and_start_action(handle, state_offset))
    except (_engine.error, MemoryError) as error:
        raise _fail("complete an action", error) from error


def assert_and_drain(handle: int, state_offset: int, fact_json: str) -> list[str]:
    """Assert one fact into a kept session and run every action it triggers.

    Returns each fired action's result frames (JSON), in firing order. The fact stays
    in the session (the caller renews the session every few facts: cheaper than a
    retract each time); each fact must differ from those before it in the session
    (durable-rules ignores a repeated fact), which the caller's running index ensures.
    One Python call for what `CompiledRuleset.match_one` needs on the order hot path.
    """
    try:
        result = _engine.assert_fact(handle, fact_json)[0]
        if result not in (RULES_OK, EVENT_NOT_HANDLED):
            raise RuleEngineError(f"rules engine: unexpected assert result {result}")
        fired = []
        started = _engine.start_action_for_state(handle, state_offset)
        if started is not None:
            frames: str | None = started[1]
            while frames is not None:
                fired.append(frames)
                frames = _engine.complete_and_start_action(handle, state_offset)
    except (_engine.error, MemoryError) as error:
        raise _fail("match the fact", error) from error
    return fired


def delete_state(handle: int) -> None:
    """Free the session and every fact in it.

    Only call this on a session on which an action was started and drained: the C code
    leaves a new session's action context uninitialised and `delete_state` frees it, so
    deleting a session that never ran an action frees garbage pointers (a segfault or
    heap corruption, depending on what the allocator reused). The compiler guarantees
    an action with a sentinel fact that always matches.
    """
    try:
        _engine.delete_state(handle, SID)
    except (_engine.error, MemoryError) as error:
        raise _fail("delete the session", error) from error
