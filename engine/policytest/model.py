"""A policy test file read and checked: its schema, then the parts the schema cannot say.

Every problem is a `TestFileError` naming file:line:col and the fix (the CLI exits 2).
Numbers written in YAML are kept exact (a float becomes the Decimal of its text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema

from bastion.engine.errors import BastionError, PolicyError
from bastion.engine.policy.yamlsource import SourceDocument, load_documents, read_text
from bastion.engine.policytest.schema import POLICYTEST_SCHEMA, TEST_KIND

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_RESET_BY = "bastion-test"
DEFAULT_RESET_REASON = "policy test"


class TestFileError(BastionError):
    """A test file (or a file it names) cannot be read or is malformed. Exit 2."""

    __test__ = False  # not a pytest class

    def __init__(self, message: str, *, file: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"{file}:{line}:{column}: {message}")
        self.file, self.line, self.column, self.message = file, line, column, message


@dataclass(frozen=True, slots=True)
class Place:
    """Where a part of the test file is, for messages."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def error(self, message: str) -> TestFileError:
        return TestFileError(message, file=self.file, line=self.line, column=self.column)


@dataclass(frozen=True, slots=True)
class Reset:
    breaker: str  # BREAKER@SCOPE:ID
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderCheck:
    name: str
    order: Mapping[str, Any]
    expect: Mapping[str, Any]
    place: Place
    repeat: int = 1


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    at: datetime | None
    after: timedelta | None
    snapshot: str | Mapping[str, Any] | None  # a path (relative to the file) or inline
    edits: tuple[tuple[str, Place], ...]
    resets: tuple[Reset, ...]
    checks: tuple[OrderCheck, ...]
    expect: Mapping[str, Mapping[str, str]]
    place: Place
    evaluate: bool = True


@dataclass(frozen=True, slots=True)
class PolicyTestCase:
    name: str
    description: str
    steps: tuple[Step, ...]
    place: Place


@dataclass(frozen=True, slots=True)
class TestFile:
    __test__ = False  # not a pytest class

    path: Path
    name: str
    policies: Path  # resolved against the file's folder
    snapshot: str | Mapping[str, Any] | None
    tests: tuple[PolicyTestCase, ...]
    place: Place

    def resolve(self, relative: str) -> Path:
        return (self.path.parent / relative).resolve()


def exact(value: Any) -> Any:
    """YAML floats as exact Decimals (the text written), recursively."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [exact(item) for item in value]
    return value


def is_test_document(data: object) -> bool:
    return isinstance(data, dict) and data.get("kind") == TEST_KIND


def load_test_file(path: str | Path) -> TestFile:
    """Read and check one test file; TestFileError at the first problem."""
    file = str(path)
    try:
        documents = load_documents(read_text(Path(path)), file)
    except PolicyError as error:
        raise TestFileError(
            error.message, file=file, line=error.line or 1, column=error.column or 1
        ) from error
    if len(documents) != 1 or not is_test_document(documents[0].data):
        raise TestFileError(
            f"not a policy test: expected one YAML document with kind: {TEST_KIND} "
            "(schemas/policytest.schema.json)",
            file=file,
        )
    document = documents[0]
    _check_schema(document)
    return _build(Path(path), document)


def _place(document: SourceDocument, pointer: str) -> Place:
    at = document.locate(pointer)
    return Place(document.file, at.line or 1, at.column or 1)


def _check_schema(document: SourceDocument) -> None:
    validator = jsonschema.Draft202012Validator(POLICYTEST_SCHEMA)
    errors = sorted(validator.iter_errors(document.data), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    error = jsonschema.exceptions.best_match(errors)
    pointer = "".join(f"/{part}" for part in error.absolute_path)
    where = pointer or "the file"
    place = _place(document, pointer)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        unknown = [key for key in error.instance if key not in known]
        if unknown:  # point at the misspelt key itself, and say what is allowed
            at = document.locate(f"{pointer}/{unknown[0]}", key=True)
            place = Place(document.file, at.line or 1, at.column or 1)
            where = f"{pointer}/{unknown[0]}"
            allowed = ", ".join(sorted(known))
            raise place.error(
                f"{where}: unknown key {unknown[0]!r}; allowed here: {allowed} "
                "(schemas/policytest.schema.json)"
            )
    raise place.error(f"{where}: {error.message} (schemas/policytest.schema.json)")


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if match is None:  # the schema already refused it
        raise ValueError(text)
    return timedelta(seconds=float(Decimal(match[1]) * _UNIT_S[match[2]]))


def parse_time(text: str, place: Place) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise place.error(f"{text!r} is not an ISO 8601 time like 2026-11-20T15:30:00Z") from error
    if value.tzinfo is None:
        raise place.error(f"{text!r} has no timezone; add Z or +00:00")
    return value


def _build(path: Path, document: SourceDocument) -> TestFile:
    data = document.data
    tests = tuple(
        _build_test(document, f"/tests/{index}", test) for index, test in enumerate(data["tests"])
    )
    names = [test.name for test in tests]
    for test in tests:
        if names.count(test.name) > 1:
            raise test.place.error(f"test name {test.name!r} is used twice; names must differ")
    return TestFile(
        path=path,
        name=data["metadata"]["name"],
        policies=(path.parent / data.get("policies", "..")).resolve(),
        snapshot=exact(data.get("snapshot")),
        tests=tests,
        place=_place(document, ""),
    )


def _build_test(document: SourceDocument, pointer: str, data: dict[str, Any]) -> PolicyTestCase:
    steps = tuple(
        _build_step(document, f"{pointer}/steps/{index}", step)
        for index, step in enumerate(data["steps"])
    )
    return PolicyTestCase(
        data["name"], data.get("description", ""), steps, _place(document, pointer)
    )


def _build_step(document: SourceDocument, pointer: str, data: dict[str, Any]) -> Step:
    place = _place(document, pointer)
    if "at" in data and "after" in data:
        raise place.error("a step has `at` or `after`, not both")
    resets = []
    for item in data.get("reset", []):
        if isinstance(item, str):
            resets.append(Reset(item, DEFAULT_RESET_BY, DEFAULT_RESET_REASON))
        else:
            resets.append(
                Reset(
                    item["breaker"],
                    item.get("by", DEFAULT_RESET_BY),
                    item.get("reason", DEFAULT_RESET_REASON),
                )
            )
    checks = tuple(
        OrderCheck(
            check.get("name", f"check {index + 1}"),
            exact(check["order"]),
            exact(check.get("expect", {})),
            _place(document, f"{pointer}/checks/{index}"),
            check.get("repeat", 1),
        )
        for index, check in enumerate(data.get("checks", []))
    )
    edits = tuple(
        (line, _place(document, f"{pointer}/set/{index}"))
        for index, line in enumerate(data.get("set", []))
    )
    return Step(
        name=data.get("name", ""),
        at=parse_time(data["at"], _place(document, f"{pointer}/at")) if "at" in data else None,
        after=parse_duration(data["after"]) if "after" in data else None,
        snapshot=exact(data.get("snapshot")),
        edits=edits,
        resets=tuple(resets),
        checks=checks,
        expect=exact(data.get("expect", {})),
        place=place,
        evaluate=data.get("evaluate", True),
    )
