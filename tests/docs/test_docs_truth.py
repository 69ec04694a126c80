"""The documents promise only what exists: flags the CLI has, files the repository holds,
make targets the Makefile defines, and installs from a wheel or a clone — never a
package index or a release tag that does not exist (issue 15.6).

The console commands themselves are run by test_docs_commands; these checks cover the
prose, the ```yaml / ```text examples and the inline `code` around them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bastion.cli.completion import command_tree
from bastion.cli.main import build_parser
from tests.docs.doc_runner import ROOT

DOCUMENTS = (
    "README.md",
    "PLAYBOOKS.md",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
)
# Repository folders whose paths the documents name.
TOP_FOLDERS = (
    "examples/", "policies/", "docs/", "deploy/", "tests/", "bench/", "service/", "engine/",
    "adapters/", "cli/", "schemas/", ".ci/",
)  # fmt: skip
# Paths named that are not in this repository, and why.
ELSEWHERE = {
    "tests/plugins/test_protections.py": "freqtrade's test file, cited as the source",
}
_MENTION = re.compile(r"\bbastion ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?(?P<rest>[^`\n|]*)")
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*)")
_TOPS = "|".join(re.escape(top) for top in TOP_FOLDERS)
_PATH = re.compile(rf"(?<![\w./-])((?:{_TOPS})[\w./*<>{{}}-]*)")
_MAKE = re.compile(r"`make ([a-z][a-z-]*)")
_PIP_INSTALL = re.compile(r"pip install (?P<what>[^`\n]*)")


def _text(document: str) -> str:
    """The document with backslash-continued lines joined (a command spans them)."""
    return re.sub(r"\\\n\s*", " ", (ROOT / document).read_text(encoding="utf-8"))


def _line(text: str, offset: int) -> int:
    return text[:offset].count("\n") + 1


@pytest.mark.parametrize("document", DOCUMENTS)
def test_docs_when_bastion_command_named_then_every_flag_exists(document: str) -> None:
    """`bastion SUBCOMMAND ... --flag` names only flags that sub-command has."""
    nodes = {node.path: node for node in command_tree(build_parser()).walk()}
    text = _text(document)
    wrong = []
    for match in _MENTION.finditer(text):
        path: tuple[str, ...] = ()
        for word in match.group(1, 2):
            if word is None or (*path, word) not in nodes:
                break
            path = (*path, word)
        if not path:
            continue
        known = {flag for option in nodes[path].options for flag in option.flags}
        for flag in _FLAG.findall(match["rest"]):
            if flag not in known:
                wrong.append(
                    f"{document}:{_line(text, match.start())}: bastion {' '.join(path)} {flag}"
                )
    assert not wrong, "flags that do not exist:\n" + "\n".join(wrong)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_docs_when_repository_path_named_then_it_exists(document: str) -> None:
    """Every `examples/...`, `deploy/...`, `tests/...` path named is in the repository."""
    text = (ROOT / document).read_text(encoding="utf-8")
    missing = []
    for match in _PATH.finditer(text):
        path = match.group(1).rstrip(".,:;)")
        if any(char in path for char in "<>{}*") or path in ELSEWHERE:
            continue  # a template or a pattern, or another project's file
        if not (ROOT / path).exists():
            missing.append(f"{document}:{_line(text, match.start())}: {path}")
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_docs_when_make_target_named_then_makefile_defines_it(document: str) -> None:
    """`make TARGET` names a target of the Makefile."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    text = (ROOT / document).read_text(encoding="utf-8")
    named = set(_MAKE.findall(text))
    assert named <= targets, named - targets


@pytest.mark.parametrize("document", DOCUMENTS)
def test_docs_when_install_shown_then_it_is_from_a_wheel_or_a_clone(document: str) -> None:
    """Bastion is on no package index and has no release tag: a `pip install` installs a
    built wheel or a local path, and no pre-commit `rev:` names a version tag."""
    text = (ROOT / document).read_text(encoding="utf-8")
    for match in _PIP_INSTALL.finditer(text):
        what = match["what"].split("#", 1)[0].strip().strip("\"'")
        local = what.endswith(".whl") or what.startswith(("-e ", "./", "/", ".[", "'.["))
        assert local, f"{document}:{_line(text, match.start())}: pip install {what}"
    tags = re.findall(r"^\s*rev:\s*v?\d+\.\d+", text, flags=re.MULTILINE)
    assert not tags, f"{document}: pre-commit rev pinned to a tag that does not exist: {tags}"


def test_pre_commit_hooks_when_read_then_no_release_tag_is_promised() -> None:
    """.pre-commit-hooks.yaml's usage comment pins a commit, not a tag."""
    text = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert not re.search(r"rev:\s*v?\d+\.\d+", text)


def test_docs_paths_when_read_then_documents_exist() -> None:
    """The list of checked documents is not empty and names real files."""
    assert all(Path(ROOT / document).is_file() for document in DOCUMENTS)
