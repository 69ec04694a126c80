"""Stage: files -> documents -> schema-checked, `extends`-resolved Policy objects.

Reading policy files is engine/'s only I/O. Problems are collected as findings
(the linter reports them; the service refuses a set that has any error), so one
broken file never hides the problems of the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bastion.engine.errors import PolicyError
from bastion.engine.lint.findings import CODES, Finding, did_you_mean
from bastion.engine.lint.schema_check import check_envelope, check_schema, policy_name
from bastion.engine.policy import schema_dsl
from bastion.engine.policy.envelope import kind_schema
from bastion.engine.policy.extends import overlay
from bastion.engine.policy.kinds import ALL_KINDS, SET_KIND
from bastion.engine.policy.model import Policy, Scope, content_version
from bastion.engine.policy.sources import POLICY_SUFFIXES, SourceFile, list_sources
from bastion.engine.policy.yamlsource import (
    Positions,
    SourceDocument,
    load_documents,
    read_text,
)
from bastion.engine.policytest.schema import TEST_KIND

__all__ = [
    "POLICY_SUFFIXES",
    "SERVICE_CONFIG_KINDS",
    "LoadResult",
    "declares_kind",
    "discover",
    "is_service_config",
    "is_test_file",
    "load_policies",
    "read_documents",
]
# How often a set is read again when a ConfigMap's `..data` was swapped while reading.
READ_ATTEMPTS = 5
# A file that is not a policy names its kind on a top-level line; read this far.
_HEAD_BYTES = 16_384
# Service configuration read by `bastion serve` (not a policy): `bastion lint` checks it
# with its own rules (service.alerting.lint, adapters.replay_config), the loader passes
# it by.
SERVICE_CONFIG_KINDS = ("AlertPolicy", "ReplayFeed")


def declares_kind(path: str | Path, *kinds: str) -> bool:
    """Whether a YAML file says `kind: K` on a top-level line, for one of `kinds` (read
    from its first 16 KiB; an unreadable file declares nothing)."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return False
    return _kind_line(kinds).search(head) is not None


@cache
def _kind_line(kinds: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(re.escape(kind) for kind in kinds)
    return re.compile(rf"^kind:[ \t]*[\"']?(?:{names})[\"']?[ \t]*(#.*)?$", re.MULTILINE)


def is_test_file(path: str | Path) -> bool:
    """Whether a YAML file is a policy test (kind: PolicyTest), not a policy: the loader,
    lint and the service's watcher skip it, so a test never reads as a policy (even a
    broken one) and editing it never reloads the service."""
    return declares_kind(path, TEST_KIND)


def is_service_config(path: str | Path) -> bool:
    """Whether a YAML file is a service configuration (kind: AlertPolicy, ReplayFeed), not
    a policy."""
    return declares_kind(path, *SERVICE_CONFIG_KINDS)


@dataclass(slots=True)
class LoadResult:
    files: int = 0
    policies: list[Policy] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # PolicySet declarations (policies/bastion.yaml): loaded like policies, never evaluated.
    declarations: list[Policy] = field(default_factory=list)
    declared: bool = False  # a PolicySet document was read, valid or not


def discover(paths: Sequence[str | Path]) -> list[Path]:
    """Policy files named or found (recursively) under the given paths, sorted.

    Hidden entries are skipped; a ConfigMap directory's keys are found once, by their
    top-level name (engine.policy.sources)."""
    return [source.path for source in list_sources(paths).files]


def _error_finding(error: PolicyError) -> Finding:
    code = error.code if error.code in CODES else "BST007"
    return Finding(error.file, error.line, error.column, code, "error", error.message)


def _empty_file_finding(path: Path) -> Finding:
    return Finding(
        str(path),
        1,
        1,
        "BST017",
        "error",
        "the file is empty (or holds only comments): an emptied policy file would silently "
        "remove every protection it held; restore its content, or delete the file if the "
        "policy is really meant to go",
    )


@dataclass(frozen=True, slots=True)
class _Parsed:
    """What one file's text gave: its documents (each with its envelope problems), or
    the error that stopped it."""

    documents: tuple[tuple[SourceDocument, tuple[Finding, ...]], ...]
    error: PolicyError | None
    empty: bool = False  # no document at all (a policy test alone is not empty)


# (file name, its whole text) -> what it parsed to; and per parsed document, its schema
# findings (by id, the document kept alive beside them). A reload reads every file again
# but a file whose text did not change is neither parsed nor schema-checked again: the
# same text under the same name gives the same documents and findings (pure functions of
# both), and nothing downstream changes a document (tests/policy/test_loader_memo.py).
# Bounded: cleared when full.
_PARSED: dict[tuple[str, str], _Parsed] = {}
_SCHEMA: dict[int, tuple[SourceDocument, list[Finding]]] = {}
_MEMO_FILES = 4_096


def _parse(name: str, text: str) -> _Parsed:
    key = (name, text)
    known = _PARSED.get(key)
    if known is not None:
        return known
    try:
        loaded = load_documents(text, name)
    except PolicyError as error:
        parsed = _Parsed((), error)
    else:
        parsed = _Parsed(
            tuple(
                (document, tuple(check_envelope(document)))
                for document in loaded
                if not (
                    isinstance(document.data, dict) and document.data.get("kind") == TEST_KIND
                )  # a policy test in a multi-document file: never a policy
            ),
            None,
            empty=not loaded,
        )
    if len(_PARSED) >= _MEMO_FILES:
        _PARSED.clear()
        _SCHEMA.clear()
    _PARSED[key] = parsed
    return parsed


def _schema_findings(document: SourceDocument) -> list[Finding]:
    """`check_schema(document)`, once per parsed document (`_PARSED`)."""
    known = _SCHEMA.get(id(document))
    if known is not None and known[0] is document:
        return list(known[1])
    problems = check_schema(document)
    _SCHEMA[id(document)] = (document, problems)
    return list(problems)


def read_documents(files: Iterable[Path | SourceFile], result: LoadResult) -> list[SourceDocument]:
    """Every readable document whose envelope is sound; the rest become findings."""
    documents: list[SourceDocument] = []
    for item in files:
        source = item if isinstance(item, SourceFile) else SourceFile(item, item)
        path = source.read_from
        if is_test_file(path) or is_service_config(path):
            continue
        result.files += 1
        try:
            parsed = _parse(str(source.path), read_text(path, name=str(source.path)))
        except PolicyError as error:  # unreadable: too large, not UTF-8, gone
            result.findings.append(_error_finding(error))
            continue
        if parsed.error is not None:
            result.findings.append(_error_finding(parsed.error))
            continue
        if parsed.empty:  # `: > limits.yaml` must never read as "no limits, no problems"
            result.findings.append(_empty_file_finding(source.path))
        for document, problems in parsed.documents:
            result.findings.extend(problems)
            if not problems:
                documents.append(document)
    return documents


def _read_set(paths: Sequence[str | Path]) -> tuple[LoadResult, list[SourceDocument]]:
    """Every document under `paths`, all from one version of each ConfigMap directory:
    read again when a `..data` was swapped while listing or reading."""
    for _ in range(READ_ATTEMPTS):
        result = LoadResult()
        try:
            listing = list_sources(paths)
            documents = read_documents(listing.files, result)
        except FileNotFoundError:  # the version being listed was removed after a swap
            continue
        if listing.current():
            return result, documents
    raise PolicyError(
        f"the ConfigMap's ..data changed {READ_ATTEMPTS} times while the policies were "
        "being read; they are read again at the next change",
        file=", ".join(str(path) for path in paths),
        code="BST009",
    )


@dataclass(frozen=True, slots=True)
class _Candidate:
    document: SourceDocument
    schema_ok: bool

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.document.data
        return data

    @property
    def name(self) -> str:
        return policy_name(self.document.data)


def load_policies(paths: Sequence[str | Path]) -> LoadResult:
    """Load and resolve every policy under `paths`, collecting findings on the way."""
    result, documents = _read_set(paths)
    candidates: dict[tuple[str, str], _Candidate] = {}
    for document in documents:
        result.declared |= document.data["kind"] == SET_KIND.kind
        problems = _schema_findings(document)
        result.findings.extend(problems)
        key = (document.data["kind"], policy_name(document.data))
        if key in candidates and key[1]:
            at = document.locate("/metadata/name")
            first = candidates[key].document.locate("/metadata/name")
            result.findings.append(
                Finding(
                    document.file,
                    at.line,
                    at.column,
                    "BST605",
                    "error",
                    f'{key[0]} "{key[1]}" is already defined at {first}',
                    "/metadata/name",
                    key[1],
                )
            )
            continue
        candidates[key] = _Candidate(document, schema_ok=not problems)
    resolver = _Resolver(candidates, result)
    for key in candidates:
        resolver.resolve(key)
    result.policies.sort(key=lambda p: (p.kind, p.name))
    return result


class _Resolver:
    """Resolves `extends` chains (with cycle detection) and builds Policy objects."""

    def __init__(self, candidates: dict[tuple[str, str], _Candidate], result: LoadResult):
        self.candidates = candidates
        self.result = result
        self.resolved: dict[tuple[str, str], tuple[dict[str, Any], Positions] | None] = {}

    def _finding(self, candidate: _Candidate, code: str, message: str) -> None:
        at = candidate.document.locate("/extends")
        self.result.findings.append(
            Finding(
                candidate.document.file,
                at.line,
                at.column,
                code,
                CODES[code].severity,
                message,
                "/extends",
                candidate.name,
            )
        )

    def resolve(
        self, key: tuple[str, str], chain: tuple[tuple[str, str], ...] = ()
    ) -> tuple[dict[str, Any], Positions] | None:
        if key in self.resolved:
            return self.resolved[key]
        candidate = self.candidates[key]
        if key in chain:
            cycle = " -> ".join(name for _, name in (*chain[chain.index(key) :], key))
            self._finding(candidate, "BST602", f"extends cycle: {cycle}")
            self.resolved[key] = None
            return None
        merged = self._merged(key, candidate, (*chain, key))
        self.resolved[key] = merged
        if merged is not None and candidate.schema_ok:
            self._build(candidate, *merged)
        return merged

    def _merged(
        self, key: tuple[str, str], candidate: _Candidate, chain: tuple[tuple[str, str], ...]
    ) -> tuple[dict[str, Any], Positions] | None:
        data, positions = candidate.data, candidate.document.positions
        base_name = data.get("extends")
        if not isinstance(base_name, str):
            return data, positions
        base_key = (key[0], base_name)
        if base_key not in self.candidates:
            self._report_missing_base(candidate, key[0], base_name)
            return None
        base = self.resolve(base_key, chain)
        if base is None or not self.candidates[base_key].schema_ok:  # already reported
            return None
        return overlay(base[0], base[1], data, positions)

    def _report_missing_base(self, candidate: _Candidate, kind: str, base_name: str) -> None:
        other_kinds = [k for (k, n) in self.candidates if n == base_name and k != kind]
        if other_kinds:
            self._finding(
                candidate,
                "BST603",
                f'"{base_name}" is a {other_kinds[0]}; a {kind} can only extend a {kind}',
            )
            return
        names = [n for (k, n) in self.candidates if k == kind]
        self._finding(
            candidate,
            "BST601",
            f'extends "{base_name}", but no {kind} has that name{did_you_mean(base_name, names)}',
        )

    def _build(self, candidate: _Candidate, data: dict[str, Any], positions: Positions) -> None:
        document = SourceDocument(
            candidate.document.file, candidate.document.index, data, positions
        )
        if "extends" in data:  # the merged whole must satisfy the full schema too
            problems = check_schema(document, {k: v for k, v in data.items() if k != "extends"})
            if problems:
                self.result.findings.extend(problems)
                return
        kind = ALL_KINDS[data["kind"]]
        complete = schema_dsl.apply_defaults(kind_schema(kind.kind), data)
        complete["spec"] = schema_dsl.apply_defaults(kind.spec_schema, complete["spec"])
        metadata = complete["metadata"]
        # A PolicySet declaration has no mode or precedence: it is never evaluated.
        target = self.result.declarations if kind is SET_KIND else self.result.policies
        target.append(
            Policy(
                kind=kind.kind,
                name=metadata["name"],
                owner=metadata.get("owner", ""),
                description=metadata.get("description", ""),
                scope=Scope.from_data(complete.get("scope")),
                extends=complete.get("extends"),
                mode=complete.get("mode", "enforce"),
                precedence=int(complete.get("precedence", 0)),
                spec=kind.build(complete["spec"]),
                version=content_version(complete),
                source=candidate.document.locate(""),
                document=complete,
                positions=positions,
            )
        )
