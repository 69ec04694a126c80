"""Safe, bounded YAML loading that remembers where every value came from.

PyYAML composes the text into nodes (which carry line/column marks); we then build
plain JSON-compatible values ourselves instead of using its constructor, so that:

- only the standard YAML tags are accepted (`!!python/...` is an error, never run);
- duplicate keys are an error at the second key, not a silent overwrite;
- alias expansion is bounded (a "billion laughs" file fails fast: composing is
  linear in the text, and we count every node we build, aliases included);
- every value and key gets a JSON pointer -> (line, column) entry, so a finding
  about `/spec/levels/2/breach_atr` points at that line, not at the document.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bastion.engine.errors import PolicyError

try:  # libyaml is several times faster; the pure-Python composer is the fallback.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 1_048_576
MAX_NODES = 100_000
MAX_DEPTH = 64

_STANDARD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_STANDARD}{name}" for name in ("str", "int", "float", "bool", "null")}
_TIMESTAMP = f"{_STANDARD}timestamp"
_MAP = f"{_STANDARD}map"
_SEQ = f"{_STANDARD}seq"
_MERGE = f"{_STANDARD}merge"
# YAML 1.1 reads these plain scalars as booleans: `country: NO` becomes false.
_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a file; line and column are 1-based, 0 means "whole file"."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(slots=True)
class Positions:
    """JSON pointer -> Location of the value, and of the key that introduced it."""

    values: dict[str, Location] = field(default_factory=dict)
    keys: dict[str, Location] = field(default_factory=dict)
    # Pointers whose value is a YAML 1.1 boolean spelled yes/no/on/off: a hint for errors.
    yaml11_bools: set[str] = field(default_factory=set)

    def locate(self, pointer: str, *, key: bool = False) -> Location:
        """The closest known place for `pointer`: itself, else its nearest ancestor."""
        probe = pointer
        while True:
            if key and probe in self.keys:
                return self.keys[probe]
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return next(iter(self.values.values()), Location("", 0, 0))
            probe = probe.rsplit("/", 1)[0]

    def overlay(self, other: Positions) -> Positions:
        """Positions of `other` where it has them, ours elsewhere (for `extends`)."""
        return Positions(
            values={**self.values, **other.values},
            keys={**self.keys, **other.keys},
            yaml11_bools=(self.yaml11_bools - other.values.keys()) | other.yaml11_bools,
        )


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One YAML document of a file, as plain data plus where each part came from."""

    file: str
    index: int
    data: Any
    positions: Positions

    def locate(self, pointer: str, *, key: bool = False) -> Location:
        return self.positions.locate(pointer, key=key)


def pointer_join(base: str, token: str | int) -> str:
    """RFC 6901: append one reference token to a JSON pointer."""
    text = str(token).replace("~", "~0").replace("/", "~1")
    return f"{base}/{text}"


def canonical_json(data: Any) -> str:
    """The canonical text a policy version hashes: sorted keys, no whitespace."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def read_text(path: Path, *, max_bytes: int = MAX_FILE_BYTES, name: str | None = None) -> str:
    """The file's text, with size and encoding problems as a PolicyError naming the
    file `name` (default: `path`; a ConfigMap key is read from its version folder)."""
    name = str(path) if name is None else name
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise PolicyError(
                f"file is {size:,} bytes, over the {max_bytes:,}-byte limit for a policy; "
                "split it into several policies",
                file=name,
                code="BST005",
            )
        raw = path.read_bytes()
    except OSError as error:
        raise PolicyError(
            f"cannot read file: {error.strerror or error}", file=name, code="BST009"
        ) from error
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise PolicyError(
            f"not valid UTF-8 (byte 0x{raw[error.start]:02x}); save the file as UTF-8",
            file=name,
            line=line,
            column=column,
            code="BST006",
        ) from error


def load_documents(text: str, file: str) -> list[SourceDocument]:
    """Every document in `text`, or a PolicyError pointing at the first problem."""
    try:
        nodes = list(_compose_all(text))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "invalid YAML"
        raise PolicyError(
            f"YAML syntax error: {problem}",
            file=file,
            line=(mark.line + 1) if mark else 1,
            column=(mark.column + 1) if mark else 1,
            code="BST001",
        ) from error
    except yaml.YAMLError as error:
        raise PolicyError(
            f"YAML error: {error}", file=file, line=1, column=1, code="BST001"
        ) from error
    documents = []
    for index, node in enumerate(nodes):
        builder = _Builder(file)
        data = builder.build(node, "", 0)
        documents.append(SourceDocument(file, index, data, builder.positions))
    return documents


def _compose_all(text: str) -> Iterator[yaml.Node]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node
    finally:
        loader.dispose()


class _Builder:
    """Turns a composed node graph into JSON-compatible data, recording positions."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions = Positions()
        self.count = 0
        # One constructor per document: it caches every node it builds, so a shared
        # one would keep every parse forever (and is not safe across threads).
        self.constructor = yaml.constructor.SafeConstructor()

    def _at(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def _fail(self, node: yaml.Node, message: str, code: str) -> PolicyError:
        at = self._at(node)
        return PolicyError(message, file=self.file, line=at.line, column=at.column, code=code)

    def build(self, node: yaml.Node, pointer: str, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(
                node,
                f"more than {MAX_NODES:,} values once anchors and aliases are expanded; "
                "this looks like an alias bomb — remove the repeated aliases",
                "BST004",
            )
        if depth > MAX_DEPTH:
            raise self._fail(
                node,
                f"nested deeper than {MAX_DEPTH} levels (a recursive alias?); flatten it",
                "BST004",
            )
        self.positions.values.setdefault(pointer, self._at(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, pointer, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise self._tag_error(node)
            return [
                self.build(item, pointer_join(pointer, index), depth + 1)
                for index, item in enumerate(node.value)
            ]
        return self._scalar(node, pointer)

    def _tag_error(self, node: yaml.Node) -> PolicyError:
        tag = str(node.tag).replace(_STANDARD, "!!")
        return self._fail(
            node,
            f"tag {tag!r} is not allowed in a policy (only plain YAML data is read, "
            "nothing is ever constructed or executed); remove the tag",
            "BST002",
        )

    def _scalar(self, node: yaml.Node, pointer: str) -> Any:
        tag = node.tag
        if tag == _TIMESTAMP:
            return str(node.value)  # keep dates as text: JSON Schema checks their format
        if tag not in _SCALAR_TAGS:
            raise self._tag_error(node)
        try:
            value = self.constructor.construct_object(node)
        except (yaml.constructor.ConstructorError, ValueError) as error:
            raise self._fail(
                node, f"cannot read value {node.value!r}: {error}", "BST001"
            ) from error
        if isinstance(value, float) and not math.isfinite(value):
            raise self._fail(
                node,
                f"{node.value!r} is not a finite number; policies take finite numbers only",
                "BST008",
            )
        if isinstance(value, bool) and str(node.value).lower() in _YAML11_BOOLS:
            self.positions.yaml11_bools.add(pointer)
        return value

    def _mapping(self, node: yaml.MappingNode, pointer: str, depth: int) -> dict[str, Any]:
        if node.tag != _MAP:
            raise self._tag_error(node)
        result: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)  # after the explicit keys, which win
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._fail(
                    key_node, "a key must be a plain word, not a list or mapping", "BST001"
                )
            key = str(key_node.value)  # keys as written: `on:` stays "on", never True
            child = pointer_join(pointer, key)
            if key in result:
                first = self.positions.keys[child]
                raise self._fail(
                    key_node,
                    f"duplicate key {key!r} (first defined at line {first.line}); "
                    "a later value would silently replace the first — keep one",
                    "BST003",
                )
            self.positions.keys.setdefault(child, self._at(key_node))
            result[key] = self.build(value_node, child, depth + 1)
        for merge in merges:
            for key, value in self._merge_sources(merge, pointer, depth).items():
                result.setdefault(key, value)
        return result

    def _merge_sources(self, node: yaml.Node, pointer: str, depth: int) -> dict[str, Any]:
        """`<<: *base` or `<<: [*a, *b]` — earlier sources win, explicit keys win over all."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise self._fail(source, "`<<` merges mappings only", "BST001")
            for key, value in self._mapping(source, pointer, depth + 1).items():
                merged.setdefault(key, value)
        return merged
