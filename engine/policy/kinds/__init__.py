"""The five policy kinds, registered by the name a file's `kind:` uses. No scanning.

`KINDS` are the policies the engine evaluates. `PolicySet` (policies/bastion.yaml) is
read with the same envelope, schema and loader but never evaluated: `ALL_KINDS` is
every `kind:` a file may declare.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from bastion.engine.policy.kinds import (
    breakers,
    escalation,
    limits,
    policyset,
    protection,
    roll,
)


@dataclass(frozen=True, slots=True)
class KindDef:
    kind: str
    file_stem: str
    title: str
    description: str
    spec_schema: dict[str, Any]
    example_spec: dict[str, Any]
    build: Callable[[Mapping[str, Any]], Any]
    defs: dict[str, Any] = field(default_factory=dict)


def _kind(module: ModuleType) -> KindDef:
    return KindDef(
        kind=module.KIND,
        file_stem=module.FILE_STEM,
        title=module.TITLE,
        description=module.DESCRIPTION,
        spec_schema=module.SPEC_SCHEMA,
        example_spec=module.EXAMPLE_SPEC,
        build=module.build,
        defs=getattr(module, "DEFS", {}),
    )


KINDS: dict[str, KindDef] = {
    definition.kind: definition
    for definition in map(_kind, (escalation, roll, breakers, protection, limits))
}

SET_KIND: KindDef = _kind(policyset)
ALL_KINDS: dict[str, KindDef] = {**KINDS, SET_KIND.kind: SET_KIND}
