"""Find the shell commands of a Markdown document: its ```console blocks.

The convention (README "Development"):

- Commands live in ```console blocks as ``$ command`` lines; a line ending in ``\\``
  continues on the next. The lines after a command, up to the next ``$``, are its
  expected output: each one must be found in a line of the real output (stdout and
  stderr together), in order, where ``...`` stands for anything (the spaces around it
  too). Blank lines are ignored.
- An HTML comment on the line just before the fence sets options for the whole block:
  ``<!-- docs-test: exit=1 -->`` (the exit code every command must have; default 0),
  ``<!-- docs-test: skip reason="needs a live Alpaca key" -->`` (never run; say why),
  ``<!-- docs-test: background -->`` (one long-running command, ``bastion serve``: it is
  started, waited for until its ``/readyz`` answers 200 — ``ready=/healthz`` to wait for
  another path, ``ready_timeout=120`` to wait longer than 30 s (a Ray cluster starting) —
  and kept running for the following blocks of its ``##`` section, then
  stopped with SIGTERM and must exit 0).
- ``make run`` and ``make test`` are not run: they are what CI itself runs; nor is
  ``make dist`` (tests/deploy/test_wheel.py builds and installs the wheel).
- ```sh, ```bash, ```shell and ```zsh blocks are refused: a command there would escape
  the test. Use ```console (run) or ```text (shown only).

Parsing is pure: :func:`parse_document` returns the blocks; a block that breaks the
convention carries its ``format_error`` (file:line and the fix), and a document that
cannot be read as blocks at all (an unclosed fence) raises :class:`DocFormatError`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

RUN_LANGUAGES = frozenset({"console"})
REFUSED_LANGUAGES = frozenset({"sh", "bash", "shell", "zsh", "shell-session"})
# What CI runs itself (`make run`, `make test`), and `make dist`, whose build
# tests/deploy/test_wheel.py runs (a make target here could reinstall the shared venv).
NOT_RUN = ("make run", "make test", "make dist")
PROMPT = "$ "
WILDCARD = "..."

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:(?P<options>.*?)-->\s*$")
_ANY_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test\b")
_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*#*\s*$")


class DocFormatError(ValueError):
    """A document breaks the docs-test convention; the message names file:line."""


@dataclass(frozen=True, slots=True)
class Command:
    """One ``$ command`` of a console block and the output the document shows for it."""

    source: str
    line: int
    text: str
    expected: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def excluded(self) -> bool:
        """True for `make run` / `make test` (CI runs those, not the docs test) and
        `make dist` (tests/deploy/test_wheel.py does)."""
        words = self.text.split("#", 1)[0].split()
        return " ".join(words[:2]) in NOT_RUN


@dataclass(frozen=True, slots=True)
class Block:
    """A ```console block with its options and the ``##`` section it belongs to."""

    source: str
    line: int
    section: str
    commands: tuple[Command, ...]
    exit_code: int = 0
    skip_reason: str | None = None
    background: bool = False
    ready_path: str = "/readyz"
    ready_timeout_s: float | None = None  # None: the runner's default
    format_error: str | None = None  # the block breaks the convention: this says how

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass
class _Options:
    exit_code: int = 0
    skip_reason: str | None = None
    background: bool = False
    ready_path: str = "/readyz"
    ready_timeout_s: float | None = None
    seen: set[str] = field(default_factory=set)


def parse_document(path: Path, name: str | None = None) -> list[Block]:
    """Every console block of the file at `path`, named `name` (default: its file name)."""
    return parse_text(path.read_text(encoding="utf-8"), name or path.name)


def parse_text(text: str, source: str) -> list[Block]:
    """Every console block of `text`, in document order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    section = ""
    pending: tuple[int, _Options] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        number = index + 1
        fence = _FENCE.match(line)
        if fence is None:
            heading = _HEADING.match(line)
            if heading and len(heading["hashes"]) <= 2:
                section = heading["title"]
            try:
                pending = _read_directive(line, number, source, pending)
            except DocFormatError as error:
                # Reported by the section's test, so one mistake does not hide the rest.
                blocks.append(Block(source, number, section, (), format_error=str(error)))
                pending = None
            index += 1
            continue
        end = _closing_fence(lines, index, fence["fence"])
        if end is None:
            raise DocFormatError(f"{source}:{number}: this code block is never closed")
        language = fence["info"].strip().split(" ", 1)[0].lower()
        body = [_dedent(body_line, fence["indent"]) for body_line in lines[index + 1 : end]]
        options = pending[1] if pending else None
        pending = None
        try:
            if language in REFUSED_LANGUAGES:
                raise DocFormatError(
                    f"{source}:{number}: ```{language} block: write commands in a ```console "
                    "block as `$ command` lines (run by tests/docs), or use ```text to only show"
                )
            if language in RUN_LANGUAGES:
                blocks.append(_block(source, number, section, body, options or _Options()))
            elif options is not None:
                raise DocFormatError(
                    f"{source}:{number}: a docs-test comment applies to ```console blocks only"
                )
        except DocFormatError as error:
            # Reported by the section's test, so one bad block does not hide the others.
            blocks.append(Block(source, number, section, (), format_error=str(error)))
        index = end + 1
    try:
        _no_dangling(pending, source)
    except DocFormatError as error:
        blocks.append(Block(source, len(lines), section, (), format_error=str(error)))
    return blocks


def _read_directive(
    line: str, number: int, source: str, pending: tuple[int, _Options] | None
) -> tuple[int, _Options] | None:
    """The options waiting for the next fence, after reading one line of prose."""
    directive = _DIRECTIVE.match(line)
    if directive:
        _no_dangling(pending, source)
        return number, _parse_options(directive["options"], f"{source}:{number}")
    if _ANY_DIRECTIVE.search(line):
        raise DocFormatError(
            f"{source}:{number}: a docs-test comment must be alone on its line, "
            "as <!-- docs-test: OPTIONS -->"
        )
    if line.strip():
        _no_dangling(pending, source)
        return None
    return pending


def _no_dangling(pending: tuple[int, _Options] | None, source: str) -> None:
    if pending is not None:
        raise DocFormatError(
            f"{source}:{pending[0]}: a docs-test comment must come on the line just before "
            "a ```console block"
        )


def _closing_fence(lines: list[str], start: int, opening: str) -> int | None:
    for index in range(start + 1, len(lines)):
        stripped = lines[index].strip()
        if stripped.startswith(opening[0] * len(opening)) and not stripped.strip(opening[0]):
            return index
    return None


def _dedent(line: str, indent: str) -> str:
    return line[len(indent) :] if line.startswith(indent) else line.lstrip()


def _parse_options(raw: str, where: str) -> _Options:
    options = _Options()
    try:
        words = shlex.split(raw)
    except ValueError as error:
        raise DocFormatError(f"{where}: unreadable docs-test options ({error})") from error
    index = 0
    while index < len(words):
        word = words[index]
        key, _, value = word.partition("=")
        if key in options.seen:
            raise DocFormatError(f"{where}: docs-test option {key!r} given twice")
        options.seen.add(key)
        if key == "exit":
            if not value.isdigit():
                raise DocFormatError(f"{where}: exit= takes a number, e.g. exit=1")
            options.exit_code = int(value)
        elif key == "skip":
            reason = words[index + 1] if index + 1 < len(words) else ""
            if not reason.startswith("reason=") or not reason.partition("=")[2].strip():
                raise DocFormatError(f'{where}: skip needs a reason: skip reason="why"')
            options.skip_reason = reason.partition("=")[2].strip()
            index += 1
        elif key == "background" and not value:
            options.background = True
        elif key == "ready" and value.startswith("/"):
            options.ready_path = value
        elif key == "ready_timeout" and value.isdigit() and 0 < int(value) <= 300:
            options.ready_timeout_s = float(value)
        else:
            raise DocFormatError(
                f"{where}: unknown docs-test option {word!r}; known: exit=N, "
                'skip reason="why", background, ready=/path, ready_timeout=SECONDS (1-300)'
            )
        index += 1
    return options


def _block(source: str, line: int, section: str, body: list[str], options: _Options) -> Block:
    commands: list[Command] = []
    text: list[str] = []
    start = 0
    expected: list[str] = []
    continued = False
    for offset, raw in enumerate(body, start=1):
        number = line + offset
        if continued:
            text.append(raw)
            continued = raw.rstrip().endswith("\\")
            continue
        if raw.startswith(PROMPT) or raw.rstrip() == PROMPT.strip():
            if text:
                commands.append(Command(source, start, "\n".join(text), tuple(expected)))
            text, start, expected = [raw[len(PROMPT) :]], number, []
            continued = raw.rstrip().endswith("\\")
        elif not text:
            if raw.strip():
                raise DocFormatError(
                    f"{source}:{number}: a console block starts with a `$ command` line"
                )
        elif raw.strip():
            expected.append(raw.strip())
    if continued:
        raise DocFormatError(f"{source}:{start}: the command's last line ends with `\\`")
    if text:
        commands.append(Command(source, start, "\n".join(text), tuple(expected)))
    if not commands:
        raise DocFormatError(f"{source}:{line}: an empty ```console block")
    if any(not command.text.strip() for command in commands):
        raise DocFormatError(f"{source}:{line}: a `$` line without a command")
    if options.background and len(commands) != 1:
        raise DocFormatError(
            f"{source}:{line}: a background block holds exactly one command (the server)"
        )
    return Block(
        source,
        line,
        section,
        tuple(commands),
        exit_code=options.exit_code,
        skip_reason=options.skip_reason,
        background=options.background,
        ready_path=options.ready_path,
        ready_timeout_s=options.ready_timeout_s,
    )


def output_matches(expected: tuple[str, ...], output: str) -> str | None:
    """None when every expected line matches a line of `output`, in order; else the first
    expected line that does not (``...`` in an expected line stands for anything)."""
    actual = [line.strip() for line in output.splitlines()]
    position = 0
    for wanted in expected:
        # `...` stands for anything, the spaces around it included.
        parts = [part.strip() for part in wanted.split(WILDCARD)]
        pattern = re.compile(".*?".join(re.escape(part) for part in parts if part))
        while position < len(actual) and not pattern.search(actual[position]):
            position += 1
        if position == len(actual):
            return wanted
        position += 1
    return None
