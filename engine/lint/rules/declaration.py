"""BST606-BST608: the set holds what its PolicySet declaration (bastion.yaml) requires.

Runs when a directory is linted (a directory is a policy set: what `bastion serve`
loads) or when a declaration is among the files. A directory without a declaration
requires every policy kind, so that deleting breakers.yaml can never lint clean.
Files linted one by one (a pre-commit hook) are checked as files only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from bastion.engine.lint.findings import CODES, Finding, did_you_mean
from bastion.engine.lint.rules.base import finding
from bastion.engine.policy.guard import LIMIT_FIELDS, STRATEGY_LIMITS, protected_items
from bastion.engine.policy.kinds.policyset import DEFAULT, ITEM_OF_KIND, PolicySetSpec
from bastion.engine.policy.model import Policy


def check_declaration(
    policies: Sequence[Policy], declarations: Sequence[Policy], directories: Sequence[str]
) -> Iterator[Finding]:
    if not declarations and not directories:
        return
    for extra in declarations[1:]:
        yield finding(
            extra,
            "BST608",
            "",
            f'a second PolicySet "{extra.name}"; the set already has "{declarations[0].name}" '
            f"({declarations[0].source}): keep one",
        )
    declaration = declarations[0] if declarations else None
    spec: PolicySetSpec = declaration.spec if declaration is not None else DEFAULT
    yield from _missing_kinds(policies, declaration, spec, directories)
    if declaration is not None:
        yield from _missing_items(policies, declaration, spec)


def _missing_kinds(
    policies: Sequence[Policy],
    declaration: Policy | None,
    spec: PolicySetSpec,
    directories: Sequence[str],
) -> Iterator[Finding]:
    for kind in spec.required_kinds:
        members = [p for p in policies if p.kind == kind]
        if any(p.mode == "enforce" for p in members):
            continue
        state = (
            f"only in shadow mode ({', '.join(p.name for p in members)})" if members else "missing"
        )
        message = f"required kind {kind} is {state}: the set would run without it"
        if declaration is None:
            where = directories[0]
            yield Finding(
                where,
                1,
                1,
                "BST606",
                CODES["BST606"].severity,
                f"{message}; with no PolicySet declaration every kind is required: restore "
                f"the {kind}, or declare what this set needs in {where}/bastion.yaml "
                "(kind: PolicySet, spec.required_kinds)",
            )
            continue
        index = spec.required_kinds.index(kind)
        pointer = f"/spec/required_kinds/{index}"
        if pointer not in declaration.positions.values:  # the default: all five
            pointer = "/kind"
        yield finding(
            declaration,
            "BST606",
            pointer,
            f"{message}; restore the {kind}, or remove it from spec.required_kinds "
            "(a risk officer's decision)",
        )


_ENABLED = {"breaker": " enabled", "protection": " enabled", "limit": " set"}


def _known_ids(kind: str, present: set[str]) -> list[str]:
    if kind == "LimitPolicy":
        return [*LIMIT_FIELDS, *(item.removeprefix("limit/") for item in present)]
    return sorted(item.partition("/")[2] for item in present)


def _missing_items(
    policies: Sequence[Policy], declaration: Policy, spec: PolicySetSpec
) -> Iterator[Finding]:
    enforced = {policy.kind for policy in policies if policy.mode == "enforce"}
    for kind, ids in spec.minimum:
        if kind in spec.required_kinds and kind not in enforced:
            continue  # the whole kind is missing: BST606 says so once
        item_type = ITEM_OF_KIND[kind]
        present = {
            item
            for policy in policies
            if policy.kind == kind
            for item in protected_items(policy)
            if item.startswith(f"{item_type}/")
        }
        for index, item_id in enumerate(ids):
            if f"{item_type}/{item_id}" in present:
                continue
            hint = did_you_mean(item_id, set(_known_ids(kind, present)) - {item_id})
            if kind == "LimitPolicy":
                if item_id in LIMIT_FIELDS or item_id.startswith(f"{STRATEGY_LIMITS}."):
                    hint = f" (give spec.{item_id} a value in the LimitPolicy)"
                elif not hint:
                    hint = f" — limits are named section.field, e.g. {LIMIT_FIELDS[-3]}"
            yield finding(
                declaration,
                "BST607",
                f"/spec/minimum/{kind}/{index}",
                f"{item_type} {item_id} is required by spec.minimum.{kind} but no {kind} in "
                f"enforce mode has it{_ENABLED.get(item_type, '')}{hint}",
            )
