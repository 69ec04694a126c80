"""The docs are executed: every ```console command of README.md and PLAYBOOKS.md runs.

One test per ``##`` section, in a scratch copy of the repository (see doc_runner): each
command must exit as the block says (0 unless ``<!-- docs-test: exit=N -->``) and print
the output lines the document shows under it. A failure names the command's file:line,
the command, its exit code and the tail of its output; all failures of a section are
reported together. The selected sections run a few at a time before the first test
reports (a session fixture); blocks inside a section run in document order. The
convention is in README "Development" and doc_blocks.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.docs.doc_blocks import Block, DocFormatError, output_matches, parse_document
from tests.docs.doc_runner import (
    ROOT,
    Outcome,
    Server,
    check,
    describe,
    make_scratch,
    offline_environ,
    run_block,
    start_server,
    stop_server,
)

DOCUMENTS = ("README.md", "PLAYBOOKS.md")
# System tools the documents' commands run, and the Debian package that has each.
SYSTEM_TOOLS = {"curl": "curl", "promtool": "prometheus"}
# Sections run side by side: each is a few processes waiting on each other, one at a time.
WORKERS = max(2, min(4, os.cpu_count() or 2))


def _sections() -> Iterator[Any]:
    for document in DOCUMENTS:
        try:
            blocks = parse_document(ROOT / document)
        except DocFormatError as error:
            yield pytest.param(document, [], str(error), id=f"{document}: format")
            continue
        sections: dict[str, list[Block]] = {}
        for block in blocks:
            sections.setdefault(block.section, []).append(block)
        for title, members in sections.items():
            slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower() or "top"
            yield pytest.param(document, members, None, id=f"{document}#{slug}")


def _run_section(blocks: list[Block], scratch: Path) -> list[str]:
    """Every failure of the section's blocks, described; background servers stopped."""
    env = offline_environ(scratch)
    failures: list[str] = []
    servers: list[Server] = []
    for tool, package in SYSTEM_TOOLS.items():
        uses = [c for b in blocks for c in b.commands if re.search(rf"\b{tool}\b", c.text)]
        if uses and shutil.which(tool, path=env["PATH"]) is None:
            return [
                f"{uses[0].where}: {tool} is not installed (Debian package {package}; "
                "CI's .ci/run installs it)"
            ]
    try:
        for block in blocks:
            if block.format_error is not None:
                failures.append(block.format_error)
                continue
            if block.skip_reason is not None:
                continue
            if block.background:
                server, problem = start_server(block, scratch, env)
                servers.append(server)
                if problem is not None:
                    failures.append(_server_failure(server, block, problem))
                    break
                continue
            ports = {server.documented_port: server.port for server in servers}
            for outcome in run_block(block, scratch, env, ports):
                failure = check(outcome, block.exit_code)
                if failure is not None:
                    failures.append(failure)
    finally:
        for server in servers:
            code = stop_server(server)
            if code != 0 and not failures:
                failures.append(
                    _server_failure(server, None, f"stopped with SIGTERM, it exited with {code}")
                )
    for server in servers:
        missing = output_matches(server.command.expected, server.output())
        if missing is not None:
            failures.append(
                _server_failure(server, None, f"its output has no line matching {missing!r}")
            )
    return failures


def _server_failure(server: Server, block: Block | None, problem: str) -> str:
    outcome = Outcome(server.command, server.process.returncode, server.output())
    return describe(outcome, block.exit_code if block else 0, f"background server: {problem}")


TEST_NAME = "test_run_doc_commands_when_section_runs_then_exit_codes_and_output_match"


@pytest.fixture(scope="session")
def section_failures(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[str]]:
    """The failures of every selected section, run a few at a time (they share nothing)."""
    selected: dict[str, list[Block]] = {}
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "originalname", None) == TEST_NAME and callspec is not None:
            blocks = callspec.params["blocks"]
            if any(block.skip_reason is None for block in blocks):
                selected[callspec.id] = blocks

    def run(section: str) -> list[str]:
        scratch = make_scratch(tmp_path_factory.mktemp("docs") / "repo")
        return _run_section(selected[section], scratch)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(zip(selected, pool.map(run, selected), strict=True))


@pytest.mark.parametrize(("document", "blocks", "format_error"), list(_sections()))
def test_run_doc_commands_when_section_runs_then_exit_codes_and_output_match(
    document: str,
    blocks: list[Block],
    format_error: str | None,
    request: pytest.FixtureRequest,
    section_failures: dict[str, list[str]],
) -> None:
    """Every console command of one document section exits and prints as documented."""
    assert format_error is None, format_error
    if all(block.skip_reason is not None for block in blocks):
        reasons = "; ".join(f"{b.where}: {b.skip_reason}" for b in blocks)
        pytest.skip(f"every block of this section is skipped: {reasons}")
    failures = section_failures[request.node.callspec.id]
    if failures:
        pytest.fail(
            f"{len(failures)} documented command(s) in {document} did not work:\n\n"
            + "\n\n".join(failures),
            pytrace=False,
        )


@pytest.mark.parametrize("document", DOCUMENTS)
def test_parse_doc_when_read_then_it_holds_runnable_commands(document: str) -> None:
    """Each document parses under the convention and has commands to run (none lost)."""
    blocks = parse_document(ROOT / document)
    commands = [c for b in blocks if b.skip_reason is None for c in b.commands if not c.excluded]
    assert commands, f"{document}: no ```console commands found"


def test_skip_doc_block_when_skipped_then_reason_is_given() -> None:
    """Skips are rare and say why: list them so a reviewer sees each one."""
    skipped = [
        block
        for document in DOCUMENTS
        for block in parse_document(ROOT / document)
        if block.skip_reason is not None
    ]
    assert all(len(block.skip_reason or "") >= 10 for block in skipped), [
        (block.where, block.skip_reason) for block in skipped
    ]
    # seven: a pip install from an index, the NautilusTrader peer benchmark (installs it
    # from an index), docker compose, git history, three that need a Kubernetes cluster;
    # each new one must say why it cannot run here
    assert len(skipped) <= 7, [block.where for block in skipped]
