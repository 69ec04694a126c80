"""The docs-test convention as the parser reads it (tests/docs/doc_blocks.py)."""

from __future__ import annotations

import pytest

from tests.docs.doc_blocks import DocFormatError, output_matches, parse_text
from tests.docs.doc_runner import point_at


def _doc(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def test_parse_console_block_when_commands_and_output_then_each_command_keeps_its_lines() -> None:
    """`$` lines are commands (with `\\` continuations); the lines under one are its output."""
    blocks = parse_text(
        _doc(
            "## Lint",
            "```console",
            "$ bastion lint \\",
            "    policies/",
            "7 files checked: no problems found",
            "",
            "$ bastion lint --list-codes",
            "```",
        ),
        "README.md",
    )
    [block] = blocks
    assert block.section == "Lint"
    assert [(c.line, c.text, c.expected) for c in block.commands] == [
        (3, "bastion lint \\\n    policies/", ("7 files checked: no problems found",)),
        (7, "bastion lint --list-codes", ()),
    ]
    assert block.commands[0].where == "README.md:3"


def test_parse_directive_when_before_fence_then_block_takes_its_options() -> None:
    """exit=, skip reason= and background/ready= set the block's options."""
    blocks = parse_text(
        _doc(
            "<!-- docs-test: exit=1 -->",
            "```console",
            "$ false",
            "```",
            '<!-- docs-test: skip reason="needs a live Alpaca key" -->',
            "```console",
            "$ bastion serve --adapter alpaca",
            "```",
            "<!-- docs-test: background ready=/healthz -->",
            "```console",
            "$ bastion serve",
            "```",
        ),
        "PLAYBOOKS.md",
    )
    assert [(b.exit_code, b.skip_reason, b.background, b.ready_path) for b in blocks] == [
        (1, None, False, "/readyz"),
        (0, "needs a live Alpaca key", False, "/readyz"),
        (0, None, True, "/healthz"),
    ]


def test_parse_indented_block_when_inside_a_list_item_then_indent_is_removed() -> None:
    """A console block indented under a numbered step reads like any other."""
    [block] = parse_text(
        _doc("1. Step:", "", "   ```console", "   $ bastion lint", "   ok", "   ```"), "P.md"
    )
    assert (block.commands[0].text, block.commands[0].expected) == ("bastion lint", ("ok",))


def test_parse_sh_block_when_found_then_block_carries_format_error() -> None:
    """A ```sh block is refused with the place and the fix, not silently ignored."""
    [block] = parse_text(_doc("## Top", "```sh", "bastion lint", "```"), "README.md")
    assert block.format_error is not None
    assert block.format_error.startswith("README.md:2: ```sh block")
    assert "```console" in block.format_error


def test_parse_text_blocks_when_not_console_then_nothing_is_run() -> None:
    """yaml, python, text and unlabelled blocks are shown, not run."""
    text = _doc("```yaml", "a: 1", "```", "```text", "$ not run", "```", "```", "x", "```")
    assert parse_text(text, "README.md") == []


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (("<!-- docs-test: skip -->", "```console", "$ x", "```"), "skip needs a reason"),
        (("<!-- docs-test: exit=one -->", "```console", "$ x", "```"), "exit= takes a number"),
        (("<!-- docs-test: loud -->", "```console", "$ x", "```"), "unknown docs-test option"),
        (("<!-- docs-test: exit=1 -->", "", "text", "```console", "$ x", "```"), "just before"),
    ],
)
def test_parse_directive_when_malformed_then_error_names_the_line(
    lines: tuple[str, ...], message: str
) -> None:
    """A mistyped directive is an error at its line, never a silently ignored option."""
    problems = [b.format_error for b in parse_text(_doc(*lines), "README.md") if b.format_error]
    assert problems
    assert problems[0].startswith("README.md:1:")
    assert message in problems[0]


def test_parse_document_when_fence_never_closed_then_error() -> None:
    """A fence left open swallows the rest of the document: the whole file is refused."""
    with pytest.raises(DocFormatError, match=r"README\.md:2: this code block is never closed"):
        parse_text(_doc("text", "```console", "$ x"), "README.md")


def test_parse_console_block_when_text_before_first_command_then_error() -> None:
    """Output with no command above it is a mistake in the document."""
    [block] = parse_text(_doc("```console", "output", "$ x", "```"), "README.md")
    assert block.format_error == "README.md:2: a console block starts with a `$ command` line"


def test_parse_background_block_when_two_commands_then_error() -> None:
    """A background block holds its server only."""
    [block] = parse_text(
        _doc("<!-- docs-test: background -->", "```console", "$ a", "$ b", "```"), "R.md"
    )
    assert block.format_error is not None
    assert "exactly one command" in block.format_error


def test_exclude_command_when_make_run_or_test_then_not_run() -> None:
    """`make run` / `make test` are what CI runs, `make dist` what tests/deploy builds;
    other make targets are not excluded."""
    [block] = parse_text(
        _doc("```console", "$ make run   # serve", "$ make test", "$ make dist", "$ make schemas",
             "```"),
        "R.md",
    )  # fmt: skip
    assert [c.excluded for c in block.commands] == [True, True, True, False]


@pytest.mark.parametrize(
    ("expected", "output", "missing"),
    [
        (("a", "c"), "a\nb\nc\n", None),
        (("c", "a"), "a\nb\nc\n", "a"),  # in order
        (("trading states: ... gen-01 ACTIVE ...",), "trading states: x, gen-01 ACTIVE, y", None),
        (('"approved": ...',), '  "approved": true,', None),
        (("blocking: holding_period",), "blocking: none", "blocking: holding_period"),
        (("a.b",), "axb", "a.b"),  # literal, not a regular expression
    ],
)
def test_match_output_when_lines_shown_then_found_in_order_with_wildcards(
    expected: tuple[str, ...], output: str, missing: str | None
) -> None:
    """Each shown line is found in a later line of the output; `...` is anything."""
    assert output_matches(expected, output) == missing


def test_point_at_when_server_moved_then_documented_port_is_replaced() -> None:
    """curl URLs of the documented port go to the port the test's server listens on."""
    text = "curl -s http://127.0.0.1:9108/readyz http://localhost:9108/x http://127.0.0.1:91080/"
    assert point_at(text, {9108: 40123}) == (
        "curl -s http://127.0.0.1:40123/readyz http://localhost:40123/x http://127.0.0.1:91080/"
    )
