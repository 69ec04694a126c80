"""`bastion diff OLD NEW`: directories and git revisions, formats and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import POLICIES, ROOT

Run = Callable[..., tuple[int, str, str]]
EXAMPLE = ROOT / "docs" / "examples" / "policy-change" / "com-accounts.yaml"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture
def candidate(tmp_path: Path) -> Path:
    """The shipped policies with README's proposed com-accounts.yaml (one loosen, one tighten)."""
    directory = tmp_path / "candidate"
    shutil.copytree(POLICIES, directory)
    shutil.copy(EXAMPLE, directory / "com-accounts.yaml")
    return directory


def git(repo: Path, *args: str) -> None:
    """Run git in the test's own repository (never the project's)."""
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=GIT_ENV)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with two commits of policies/: the second raises one threshold."""
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    shutil.copytree(POLICIES, root / "policies")
    git(root, "add", ".")
    git(root, "commit", "-qm", "base")
    overlay = root / "policies" / "com-accounts.yaml"
    overlay.write_text(overlay.read_text().replace("threshold: 3\n", "threshold: 4\n"))
    git(root, "commit", "-qam", "loosen com daily loss")
    monkeypatch.chdir(root)
    return root


def test_diff_when_same_directory_then_exit_0_no_change(run_cli: Run) -> None:
    """A set against itself: exit 0 and says there is no change in meaning."""
    code, out, _ = run_cli("diff", str(POLICIES), str(POLICIES))
    assert code == 0 and "no change in meaning" in out


def test_diff_when_directories_differ_then_exit_1_with_old_new_and_line(
    run_cli: Run, candidate: Path
) -> None:
    """The README example: two thresholds, loosening first, each with file:line:col."""
    code, out, _ = run_cli("diff", str(POLICIES), str(candidate))
    assert code == 1
    lines = out.splitlines()
    loosen = next(i for i, line in enumerate(lines) if "LOOSENS" in line)
    assert "spec.breakers[daily_loss_pct].threshold: 3 → 4" in lines[loosen]
    assert f"{candidate}/com-accounts.yaml:13:" in lines[loosen + 1]
    assert "tightens  spec.breakers[drawdown].threshold: 10 → 8" in out
    assert "1 policy changed in meaning: 2 changes (1 loosen, 1 tighten, 0 to review)" in out


def test_diff_when_format_json_then_changes_as_data(run_cli: Run, candidate: Path) -> None:
    """JSON: summary counts and one record per change, with direction and where."""
    code, out, _ = run_cli("diff", "--format", "json", str(POLICIES), str(candidate))
    report = json.loads(out)
    assert code == 1 and report["changed"] is True
    assert report["summary"] == {
        "policies": 1,
        "changes": 2,
        "loosens": 1,
        "tightens": 1,
        "neutral": 0,
    }
    (policy,) = report["policies"]
    first = policy["changes"][0]
    assert (first["path"], first["old"], first["new"], first["direction"]) == (
        "spec.breakers[daily_loss_pct].threshold",
        3,
        4,
        "loosens",
    )


def test_diff_when_format_markdown_then_table_per_policy(run_cli: Run, candidate: Path) -> None:
    """Markdown: a warning line when something loosens and a table for the policy."""
    code, out, _ = run_cli("diff", "--format", "markdown", str(POLICIES), str(candidate))
    assert code == 1
    assert "⚠️ **1 change loosens protection.**" in out
    assert "#### `BreakerPolicy/com-breakers` (changed)" in out
    assert "| | Field | Old | New | Why | Where |" in out
    assert "| ⚠️ **loosens** | `spec.breakers[daily_loss_pct].threshold` | 3 | 4 |" in out


def test_diff_when_markdown_and_no_change_then_says_so(run_cli: Run) -> None:
    """Markdown for an unchanged set is one sentence, exit 0."""
    code, out, _ = run_cli("diff", "--format", "markdown", str(POLICIES), str(POLICIES))
    assert code == 0 and "No change in meaning" in out


def test_diff_when_git_revisions_then_reads_trees_from_git(run_cli: Run, repo: Path) -> None:
    """HEAD~1 vs HEAD: the committed change, located as REV:path like git shows it."""
    code, out, _ = run_cli("diff", "HEAD~1", "HEAD", "--", "policies/")
    assert code == 1
    assert "LOOSENS   spec.breakers[daily_loss_pct].threshold: 3 → 4" in out
    assert "HEAD:policies/com-accounts.yaml:19:18" in out
    assert "bastion diff: HEAD~1 -- policies/ → HEAD -- policies/" in out


def test_diff_when_revision_against_work_tree_then_uncommitted_change_shows(
    run_cli: Run, repo: Path
) -> None:
    """`bastion diff HEAD policies/`: the committed set against the edited files."""
    limits = repo / "policies" / "limits.yaml"
    limits.write_text(limits.read_text().replace("max_open_positions: 10", "max_open_positions: 8"))
    code, out, _ = run_cli("diff", "HEAD", "policies/")
    assert code == 1
    assert "tightens  spec.risk.max_open_positions: 10 → 8" in out
    assert "daily_loss_pct" not in out  # committed already: same on both sides


def test_diff_when_revision_only_then_compared_with_work_tree(run_cli: Run, repo: Path) -> None:
    """`bastion diff HEAD` on a clean tree: no change, exit 0."""
    code, out, _ = run_cli("diff", "HEAD")
    assert code == 0 and "no change in meaning" in out


def test_diff_when_commit_only_reformats_then_exit_0(run_cli: Run, repo: Path) -> None:
    """A commit that rewrites comments and layout only is no change in meaning."""
    roll = repo / "policies" / "roll.yaml"
    text = roll.read_text().replace("# ", "#  ").replace("0.50", "0.5")
    roll.write_text("# reformatted\n" + text)
    git(repo, "commit", "-qam", "reformat")
    code, out, _ = run_cli("diff", "HEAD~1", "HEAD")
    assert code == 0 and "no change in meaning" in out


def test_diff_when_unknown_revision_then_exit_2_names_the_fix(run_cli: Run, repo: Path) -> None:
    """A revision that does not exist: exit 2, and how to find the right name."""
    code, _, err = run_cli("diff", "HEAD~9", "HEAD")
    assert code == 2
    assert "'HEAD~9' is neither a directory nor a git revision" in err
    assert "git log --oneline" in err


def test_diff_when_path_missing_at_revision_then_exit_2(run_cli: Run, repo: Path) -> None:
    """A folder the revision does not have: exit 2 with the git command to check."""
    code, _, err = run_cli("diff", "HEAD~1", "HEAD", "--", "nowhere/")
    assert code == 2 and "no files under nowhere/ at that revision" in err


def test_diff_when_not_a_repository_then_exit_2(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a repository a word that is not a directory cannot be a revision."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    code, _, err = run_cli("diff", "main", str(POLICIES))
    assert code == 2 and "not inside a git repository" in err


def test_diff_when_set_does_not_load_then_exit_2_with_first_error(
    run_cli: Run, candidate: Path
) -> None:
    """A broken file: exit 2 naming file:line and pointing at `bastion lint`."""
    (candidate / "roll.yaml").write_text("apiVersion: bastion/v1\nkind: RollPolicy\nspec: [\n")
    code, _, err = run_cli("diff", str(POLICIES), str(candidate))
    assert code == 2
    assert f"{candidate}/roll.yaml:" in err and "bastion lint" in err


def test_diff_help_when_asked_then_explains_exit_codes(run_cli: Run) -> None:
    """--help says what is compared and what the exit codes mean."""
    code, out, _ = run_cli("diff", "--help")
    assert code == 0
    assert "0 no change in meaning, 1 changed, 2 error" in " ".join(out.split())


def test_diff_when_revision_looks_like_an_option_then_exit_2(run_cli: Run, repo: Path) -> None:
    """A word starting with - is never handed to git, where it would be an option."""
    code, _, err = run_cli("diff", "HEAD", "--", "--output=/tmp/x")
    assert code == 2 and "put options before OLD" in err
