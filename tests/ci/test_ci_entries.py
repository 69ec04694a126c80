"""The CI entries (action.yml, ci/gitlab-bastion.yml, examples/ci/bastion.yml,
.pre-commit-hooks.yaml): they parse, the example uses only the action's inputs, and
every `bastion ...` command they run is a real sub-command with real flags (parsed by
the real argparse parser of cli/main.py, nothing executed)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.cli.main import build_parser
from tests.conftest import ROOT

ACTION = ROOT / "action.yml"
GITLAB = ROOT / "ci" / "gitlab-bastion.yml"
EXAMPLE = ROOT / "examples" / "ci" / "bastion.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
# What each shell word stands for in CI (a sample value): an unknown `$WORD` fails.
SAMPLES: dict[str, list[str]] = {
    "$BASTION_PATHS": ["policies"],
    "$BASTION_TEST_PATHS": ["policies/tests"],
    "${strict[@]}": ["--strict"],
    "$strict": ["--strict"],
    "$BASTION_BASE": ["HEAD~1"],
    "$BASTION_HEAD": ["HEAD"],
    "$CI_MERGE_REQUEST_DIFF_BASE_SHA": ["HEAD~1"],
    "$CI_COMMIT_SHA": ["HEAD"],
}
_SHELL_STOPS = (">", ">>", "|", "||", "&&", ";", "2>&1")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _scripts(path: Path) -> list[str]:
    """Every shell script text the file runs (action steps' `run`, GitLab scripts)."""
    data = _load(path)
    if path == ACTION:
        return [step["run"] for step in data["runs"]["steps"] if "run" in step]
    found: list[str] = []
    for job in data.values():
        if isinstance(job, dict):
            for key in ("before_script", "script", "after_script"):
                found.extend(job.get(key, []))
    return found


def _commands(path: Path) -> list[list[str]]:
    """The argv of every `bastion ...` command, shell variables replaced by samples."""
    commands = []
    for script in _scripts(path):
        for raw in script.splitlines():
            line = raw.strip()
            if not line.startswith("bastion "):
                continue
            argv: list[str] = []
            for word in shlex.split(line):
                if word in _SHELL_STOPS:
                    break
                if "$" in word:
                    assert word in SAMPLES, f"{path.name}: no sample for {word!r} in {line!r}"
                    argv.extend(SAMPLES[word])
                else:
                    argv.append(word)
            commands.append(argv)
    return commands


@pytest.mark.parametrize("path", [ACTION, GITLAB, EXAMPLE, HOOKS], ids=lambda p: p.name)
def test_parse_when_ci_file_read_then_it_is_yaml(path: Path) -> None:
    """Each CI file is valid YAML with content."""
    assert _load(path)


@pytest.mark.parametrize("path", [ACTION, GITLAB], ids=lambda p: p.name)
def test_commands_when_ci_file_read_then_each_parses_with_the_real_cli(path: Path) -> None:
    """`bastion lint/test/diff ...` with their flags are accepted by cli/main.py's parser."""
    commands = _commands(path)
    assert {argv[1] for argv in commands} >= {"lint", "diff", "test"}
    for argv in commands:
        try:
            args = build_parser().parse_args(argv[1:])
        except SystemExit as exit_:  # argparse: an unknown command or flag
            pytest.fail(f"{path.name}: {shlex.join(argv)} is not a bastion command ({exit_})")
        assert args.command == argv[1]


def test_action_when_linting_then_sarif_github_and_markdown_formats_are_used() -> None:
    """The action writes SARIF, annotates with --format github, diffs in markdown."""
    formats = {
        (argv[1], argv[argv.index("--format") + 1])
        for argv in _commands(ACTION)
        if "--format" in argv
    }
    assert {("lint", "sarif"), ("lint", "github"), ("diff", "markdown")} <= formats


def test_action_when_installing_then_it_installs_from_its_own_ref() -> None:
    """pip installs the action's checkout (github.action_path), never a package index name."""
    runs = "\n".join(_scripts(ACTION))
    assert 'pip install --disable-pip-version-check "${{ github.action_path }}"' in runs
    assert "bastion-risk" not in runs


def test_gitlab_when_linting_then_code_quality_report_is_codeclimate() -> None:
    """The lint job writes --format codeclimate to the file its codequality report names."""
    job = _load(GITLAB)["bastion-lint"]
    report = job["artifacts"]["reports"]["codequality"]
    assert any(
        argv[:4] == ["bastion", "lint", "--format", "codeclimate"] for argv in _commands(GITLAB)
    )
    assert any(f"> {report}" in line for line in job["script"])


def test_example_when_using_the_action_then_every_input_exists() -> None:
    """Inputs the example passes are declared in action.yml; outputs it reads exist."""
    action = _load(ACTION)
    workflow = _load(EXAMPLE)
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    ours = [step for step in steps if "/bastion@" in step.get("uses", "")]
    assert ours, "the example does not use the action"
    for step in ours:
        assert set(step.get("with", {})) <= set(action["inputs"])
        assert re.fullmatch(r"[\w.-]+/bastion@[0-9a-f]{40}", step["uses"].split()[0])
    read = re.findall(r"steps\.bastion\.outputs\.([\w-]+)", EXAMPLE.read_text())
    assert read and set(read) <= set(action["outputs"])


def test_action_when_inputs_declared_then_each_is_used() -> None:
    """No dead input: every declared input is referenced by the action's steps."""
    action = _load(ACTION)
    text = yaml.safe_dump(action["runs"]) + yaml.safe_dump(action.get("outputs", {}))
    for name in action["inputs"]:
        assert f"inputs.{name}" in text, name


def test_hooks_when_read_then_entries_are_real_commands() -> None:
    """The pre-commit hooks' entry + args parse with the real CLI."""
    for hook in _load(HOOKS):
        argv = [*shlex.split(hook["entry"]), *hook.get("args", [])]
        args = build_parser().parse_args(argv[1:])
        assert args.command == "lint"


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("### Policy linting in CI")
    return text[start : text.index("\n## ", start)]


def test_readme_when_ci_section_read_then_snippets_parse_and_name_real_inputs() -> None:
    """README "Policy linting in CI": its yaml snippets parse, the action snippet passes
    only declared inputs, pins a commit, and the files it names exist."""
    section = _readme_section()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", section, re.S)]
    assert len(blocks) >= 4  # action, GitLab include, pre-commit (local and by rev)
    inputs = set(_load(ACTION)["inputs"])
    action_steps = [
        step
        for block in blocks
        if isinstance(block, dict)
        for step in block.get("steps", [])
        if "/bastion@" in step.get("uses", "")
    ]
    assert action_steps and all(set(s.get("with", {})) <= inputs for s in action_steps)
    assert all("<40-character commit hash>" in s["uses"] for s in action_steps)
    for path in ("action.yml", "ci/gitlab-bastion.yml", "examples/ci/bastion.yml"):
        assert f"`{path}`" in section and (ROOT / path).is_file(), path
    assert "rev: <40-character commit hash>" in section


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        (ACTION, "vendor.github-actions"),
        (EXAMPLE, "vendor.github-workflows"),
        (GITLAB, "vendor.gitlab-ci"),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else value,
)
def test_schema_when_ci_file_checked_then_vendor_schema_accepts_it(path: Path, schema: str) -> None:
    """GitHub's action / workflow and GitLab's CI schemas, as vendored (offline) by
    check-jsonschema (the bench extra), accept the files: a misspelt key fails."""
    tool = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if tool is None:
        pytest.skip("check-jsonschema is not installed (pip install -e '.[bench]')")
    done = subprocess.run(
        [tool, "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
