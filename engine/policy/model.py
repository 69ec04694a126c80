"""The loaded policy: envelope fields, the kind's frozen spec, its version."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion.engine.policy.yamlsource import Location, Positions, canonical_json


@dataclass(frozen=True, slots=True)
class Scope:
    """What a policy covers. None in a field means "all"."""

    account_types: frozenset[str] | None = None
    symbols: frozenset[str] | None = None
    strategies: frozenset[str] | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> Scope:
        data = data or {}

        def field_set(name: str) -> frozenset[str] | None:
            values = data.get(name)
            return None if values is None else frozenset(str(v) for v in values)

        return cls(field_set("account_types"), field_set("symbols"), field_set("strategies"))

    def overlaps(self, other: Scope) -> bool:
        """True when some (account type, symbol, strategy) is covered by both."""
        pairs = (
            (self.account_types, other.account_types),
            (self.symbols, other.symbols),
            (self.strategies, other.strategies),
        )
        return all(a is None or b is None or bool(a & b) for a, b in pairs)

    def covers(
        self,
        *,
        account_type: str | None = None,
        symbol: str | None = None,
        strategy: str | None = None,
    ) -> bool:
        """True when the subject falls in this scope.

        A dimension the subject does not have (a portfolio has no symbol) matches
        only a scope that does not restrict it: a `com`-only overlay never governs
        the whole portfolio.
        """
        checks = (
            (self.account_types, account_type),
            (self.symbols, symbol),
            (self.strategies, strategy),
        )
        return all(allowed is None or value in allowed for allowed, value in checks)

    def describe(self) -> str:
        parts = [
            f"{label}={','.join(sorted(values))}"
            for label, values in (
                ("account_types", self.account_types),
                ("symbols", self.symbols),
                ("strategies", self.strategies),
            )
            if values is not None
        ]
        return " ".join(parts) or "everything"


def content_version(document: Mapping[str, Any]) -> str:
    """sha256 of the canonical content: formatting and comments never change it."""
    digest = hashlib.sha256(canonical_json(document).encode()).hexdigest()
    return f"sha256:{digest}"


@dataclass(frozen=True, slots=True)
class Policy:
    kind: str
    name: str
    owner: str
    description: str
    scope: Scope
    extends: str | None
    mode: str
    precedence: int
    spec: Any  # the kind's frozen spec dataclass
    version: str
    source: Location
    document: Mapping[str, Any] = field(compare=False, repr=False)  # resolved, with defaults
    positions: Positions = field(compare=False, repr=False)

    @property
    def short_version(self) -> str:
        return self.version.removeprefix("sha256:")[:12]

    def locate(self, pointer: str, *, key: bool = False) -> Location:
        return self.positions.locate(pointer, key=key)


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Every policy that is live together. Its version hashes its members' versions
    (and the PolicySet declaration's, when the set has one: policies/bastion.yaml)."""

    policies: tuple[Policy, ...]
    declaration: Policy | None = None

    @property
    def version(self) -> str:
        members = sorted(f"{p.kind}/{p.name}@{p.version}" for p in self.members)
        return content_version({"policies": members})

    @property
    def members(self) -> tuple[Policy, ...]:
        """The policies and the declaration: every file's content the set depends on."""
        return self.policies if self.declaration is None else (*self.policies, self.declaration)

    def of_kind(self, kind: str) -> tuple[Policy, ...]:
        return tuple(p for p in self.policies if p.kind == kind)

    def get(self, kind: str, name: str) -> Policy | None:
        return next((p for p in self.policies if p.kind == kind and p.name == name), None)
