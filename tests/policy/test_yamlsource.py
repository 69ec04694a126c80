"""The safe, bounded, position-keeping YAML loader."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from bastion.engine.errors import PolicyError
from bastion.engine.policy.yamlsource import MAX_FILE_BYTES, load_documents, read_text


def _load_one(text: str) -> object:
    return load_documents(text, "t.yaml")[0]


def _error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load_documents(text, "t.yaml")
    return caught.value


def test_load_when_nested_values_then_every_pointer_has_line_and_column() -> None:
    """Values and keys are located by JSON pointer, 1-based."""
    document = load_documents("a:\n  b: [1, {c: x}]\n", "t.yaml")[0]
    assert document.data == {"a": {"b": [1, {"c": "x"}]}}
    at = document.locate("/a/b/1/c")
    assert (at.line, at.column) == (2, 14)
    key = document.locate("/a/b", key=True)
    assert (key.line, key.column) == (2, 3)


def test_locate_when_pointer_unknown_then_nearest_ancestor() -> None:
    """A pointer the file did not write falls back to its closest written parent."""
    document = load_documents("a:\n  b: 1\n", "t.yaml")[0]
    at = document.locate("/a/missing/deeper")
    assert (at.line, at.column) == (2, 3)


def test_load_when_python_tag_then_error_and_nothing_executes(tmp_path: Path) -> None:
    """`!!python/object/apply` is refused before anything could run."""
    marker = tmp_path / "pwned"
    error = _error(f'x: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert error.code == "BST002" and "!!python/object/apply:os.system" in error.message
    assert not marker.exists()


def test_load_when_custom_local_tag_then_error() -> None:
    """Any non-standard tag is refused."""
    assert _error("x: !secret abc\n").code == "BST002"


def test_load_when_duplicate_key_then_error_at_second_key() -> None:
    """The second occurrence is reported, naming the first."""
    error = _error("a: 1\nb: 2\na: 3\n")
    assert (error.code, error.line, error.column) == ("BST003", 3, 1)
    assert "line 1" in error.message


def test_load_when_billion_laughs_then_fails_fast_with_bounded_memory() -> None:
    """An alias bomb is stopped after MAX_NODES values, quickly and without blowing up."""
    lines = ["a: &a [" + ", ".join(["lol"] * 10) + "]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    error = _error("\n".join(lines) + "\n")
    elapsed = time.perf_counter() - started
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert error.code == "BST004" and "alias" in error.message
    assert elapsed < 5, "bounded work: a full expansion would be 10**9 values"
    assert grown_mib < 200


def test_load_when_recursive_alias_then_depth_error() -> None:
    """A structure containing itself is refused, not recursed into forever."""
    assert _error("a: &a [*a]\n").code == "BST004"


def test_load_when_merge_key_then_explicit_keys_win() -> None:
    """`<<: *base` merges; keys written next to it override the merged ones."""
    document = load_documents("base: &b {x: 1, y: 2}\nover:\n  <<: *b\n  y: 3\n", "t.yaml")[0]
    assert document.data["over"] == {"x": 1, "y": 3}
    assert document.locate("/over/y").line == 4


def test_load_when_yes_no_scalars_then_recorded_for_hints() -> None:
    """YAML 1.1 booleans spelled yes/no/on/off are remembered, keys stay text."""
    document = load_documents("on: yes\ncountry: NO\nflag: true\n", "t.yaml")[0]
    assert document.data == {"on": True, "country": False, "flag": True}
    assert document.positions.yaml11_bools == {"/on", "/country"}


def test_load_when_timestamp_then_kept_as_text() -> None:
    """Dates stay strings so the result is plain JSON data."""
    assert load_documents("d: 2026-11-21\n", "t.yaml")[0].data == {"d": "2026-11-21"}


@pytest.mark.parametrize("text", [".inf", "-.inf", ".nan", ".NaN"])
def test_load_when_non_finite_number_then_error(text: str) -> None:
    """Infinities and NaN never reach a threshold."""
    assert _error(f"x: {text}\n").code == "BST008"


def test_load_when_syntax_error_then_line_and_column_of_problem() -> None:
    """A YAML syntax error names where the parser gave up."""
    error = _error("a:\n  b: [1, 2\n")
    assert error.code == "BST001" and error.line == 3


def test_load_when_several_documents_then_each_is_returned() -> None:
    """`---` separates policies in one file."""
    documents = load_documents("a: 1\n---\nb: 2\n", "t.yaml")
    assert [d.data for d in documents] == [{"a": 1}, {"b": 2}]
    assert documents[1].locate("/b").line == 3


def test_read_when_file_over_limit_then_error_names_size(tmp_path: Path) -> None:
    """Files over the policy size limit are refused before parsing."""
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(PolicyError) as caught:
        read_text(big)
    assert caught.value.code == "BST005" and "split" in caught.value.message


def test_read_when_latin1_bytes_then_error_with_line_and_column(tmp_path: Path) -> None:
    """An encoding error points at the offending byte."""
    path = tmp_path / "p.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(PolicyError) as caught:
        read_text(path)
    assert (caught.value.code, caught.value.line, caught.value.column) == ("BST006", 2, 7)


def test_read_when_directory_given_as_file_then_unreadable_error(tmp_path: Path) -> None:
    """An OS error while reading becomes BST009 naming the file."""
    with pytest.raises(PolicyError) as caught:
        read_text(tmp_path)
    assert caught.value.code == "BST009"


def test_read_when_utf8_bom_then_ignored(tmp_path: Path) -> None:
    """Editors on Windows add a BOM; it is not part of the content."""
    path = tmp_path / "p.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert read_text(path) == "a: 1\n"


def test_load_when_repeated_many_times_then_memory_stays_flat() -> None:
    """Parsing keeps nothing behind: 300 loads of a policy grow memory by under 5 MiB."""
    text = (Path(__file__).resolve().parents[2] / "policies" / "breakers.yaml").read_text()
    load_documents(text, "warm-up.yaml")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for index in range(300):
        load_documents(text, f"p{index}.yaml")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 5
