"""A policy test is never read as a policy: the loader, lint and the service's watcher
skip it, even when it is broken, so editing a test never reloads the service."""

from __future__ import annotations

import shutil
from pathlib import Path

from watchfiles import Change

from bastion.engine.lint.runner import lint_paths
from bastion.engine.policy.loader import is_test_file, load_policies
from bastion.service.policy_watch import PolicyFileFilter
from tests.conftest import POLICIES

BROKEN_TEST = "apiVersion: bastion/v1\nkind: PolicyTest\ntests: [unclosed\n"


def test_load_when_policy_dir_holds_tests_then_they_are_not_policies() -> None:
    """policies/ with policies/tests/ loads the same policies and version as without."""
    with_tests = load_policies([POLICIES])
    assert with_tests.findings == []
    assert all(policy.kind != "PolicyTest" for policy in with_tests.policies)
    assert with_tests.files == 7


def test_lint_when_a_test_file_is_broken_then_policy_set_still_clean(tmp_path: Path) -> None:
    """A broken test (YAML error) in the policy directory is no finding of the set."""
    shutil.copytree(POLICIES, tmp_path / "policies", ignore=shutil.ignore_patterns("tests"))
    (tmp_path / "policies" / "tests").mkdir()
    (tmp_path / "policies" / "tests" / "broken.yaml").write_text(BROKEN_TEST, encoding="utf-8")
    result = lint_paths([tmp_path / "policies"])
    assert result.findings == ()
    assert result.files == 7


def test_is_test_file_when_kind_line_then_true_else_false(tmp_path: Path) -> None:
    """Recognised by its top-level `kind: PolicyTest` line, quoted or not."""
    test, quoted, policy = tmp_path / "t.yaml", tmp_path / "q.yaml", tmp_path / "p.yaml"
    test.write_text(BROKEN_TEST, encoding="utf-8")
    quoted.write_text('kind: "PolicyTest"  # a suite\n', encoding="utf-8")
    policy.write_text("kind: BreakerPolicy\n# kind: PolicyTest is only a comment here\n")
    assert is_test_file(test) and is_test_file(quoted)
    assert not is_test_file(policy) and not is_test_file(tmp_path / "missing.yaml")


def test_watch_filter_when_test_file_written_then_no_reload(tmp_path: Path) -> None:
    """The watcher ignores writes to a test file; a policy file still triggers."""
    test, policy = tmp_path / "suite.yaml", tmp_path / "limits.yaml"
    test.write_text(BROKEN_TEST, encoding="utf-8")
    policy.write_text("kind: LimitPolicy\n", encoding="utf-8")
    reacts = PolicyFileFilter()
    assert not reacts(Change.modified, str(test))
    assert not reacts(Change.added, str(test))
    assert reacts(Change.modified, str(policy))
