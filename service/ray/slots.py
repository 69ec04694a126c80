"""What the head of `bastion serve --ray` and its reload barrier share: a partition as
the head sees it (`Slot`), the bounds of a call to a partition, reading the policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bastion.engine.lint.runner import load_policy_set_with_warnings
from bastion.engine.policy.model import PolicySet
from bastion.service.ray.partition import PartitionSpec
from bastion.service.reloader import NoPoliciesError

SERVING, DOWN = "serving", "down"
CALL_TIMEOUT_S = 30.0  # a check or report that waits longer is answered 503
START_TIMEOUT_S = 120.0  # an actor's start (imports, compile, state, first cycle)
REDUCING = "REDUCING"
PLAYBOOK = 'PLAYBOOKS.md "A Ray partition died"'


@dataclass(slots=True)
class Slot:
    """One partition as the head sees it."""

    spec: PartitionSpec
    actor: Any = None
    state: str = DOWN
    restarts: int = 0
    down_since: datetime | None = None
    error: str | None = None
    accounts: list[str] = field(default_factory=list)

    @property
    def index(self) -> int:
        return self.spec.index


REJECT_REASONS = ("lint", "no_policies", "removes_protection", "error")


def read_policies(directory: Path) -> PolicySet:
    """The directory's set, linted as `bastion lint` does (PolicySetError); none: refused."""
    policy_set, _warnings = load_policy_set_with_warnings([directory])
    if not policy_set.policies:
        raise NoPoliciesError(
            "no policy file (*.yaml, *.yml) here; refusing to run without policies",
            file=str(directory),
        )
    return policy_set


def policy_versions(policy_set: PolicySet) -> dict[str, str]:
    """Each policy's version by "Kind/name"."""
    return {f"{p.kind}/{p.name}": p.version for p in policy_set.members}
