"""The PolicySet declaration in lint: an empty file or a set missing a required kind is
never "no problems found"; files linted one by one are checked as files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from bastion.engine.lint.runner import PolicySetError, lint_paths, load_policy_set
from bastion.engine.policy.envelope import declaration_schema
from tests.conftest import POLICIES

Run = Callable[..., tuple[int, str, str]]
ROLL = "apiVersion: bastion/v1\nkind: RollPolicy\nmetadata: {name: r}\nspec: {}\n"


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(POLICIES, directory)
    return directory


@pytest.mark.parametrize("content", ["", "\n\n", "# all commented out\n# apiVersion: x\n"])
def test_lint_strict_when_policy_file_empty_then_bst017_never_no_problems(
    run_cli: Run, shipped: Path, content: str
) -> None:
    """`: > policies/limits.yaml` then `bastion lint --strict`: an error, exit 1."""
    (shipped / "limits.yaml").write_text(content)
    for target in (shipped, shipped / "limits.yaml"):
        code, out, _ = run_cli("lint", "--strict", str(target))
        assert code == 1 and "BST017" in out and "no problems found" not in out


def test_lint_strict_when_directory_without_breakers_then_bst606(
    run_cli: Run, shipped: Path
) -> None:
    """`rm policies/breakers.yaml policies/com-accounts.yaml`: the required kind is missing."""
    (shipped / "breakers.yaml").unlink()
    (shipped / "com-accounts.yaml").unlink()
    code, out, _ = run_cli("lint", "--strict", str(shipped))
    assert code == 1 and "BST606 required kind BreakerPolicy is missing" in out
    assert "no problems found" not in out


def test_lint_when_only_roll_and_no_declaration_then_every_other_kind_missing(
    run_cli: Run, tmp_path: Path
) -> None:
    """Without bastion.yaml, a directory must hold all five kinds."""
    (tmp_path / "roll.yaml").write_text(ROLL)
    code, out, _ = run_cli("lint", str(tmp_path))
    assert code == 1 and out.count("BST606") == 4 and "RollPolicy is" not in out
    assert f"declare what this set needs in {tmp_path}/bastion.yaml" in out


def test_lint_when_files_named_one_by_one_then_set_completeness_not_checked(
    run_cli: Run, tmp_path: Path
) -> None:
    """A pre-commit hook passes files: each is checked as a file, not as a whole set."""
    (tmp_path / "roll.yaml").write_text(ROLL)
    code, out, _ = run_cli("lint", str(tmp_path / "roll.yaml"))
    assert code == 0 and "no problems found" in out


def test_lint_when_declaration_named_with_files_then_checked_against_them(
    run_cli: Run, tmp_path: Path
) -> None:
    """Naming bastion.yaml among the files checks those files against it."""
    (tmp_path / "roll.yaml").write_text(ROLL)
    (tmp_path / "bastion.yaml").write_text(
        "apiVersion: bastion/v1\nkind: PolicySet\nmetadata: {name: s}\n"
        "spec: {required_kinds: [RollPolicy, LimitPolicy]}\n"
    )
    code, out, _ = run_cli("lint", str(tmp_path / "roll.yaml"), str(tmp_path / "bastion.yaml"))
    assert code == 1 and "required kind LimitPolicy is missing" in out


def test_lint_when_declaration_omits_required_kinds_then_default_all_five_at_kind(
    tmp_path: Path,
) -> None:
    """A declaration that leaves required_kinds out requires all five, reported at `kind:`."""
    (tmp_path / "roll.yaml").write_text(ROLL)
    (tmp_path / "bastion.yaml").write_text(
        "apiVersion: bastion/v1\nkind: PolicySet\nmetadata: {name: s}\nspec: {}\n"
    )
    result = lint_paths([tmp_path])
    missing = [f for f in result.findings if f.code == "BST606"]
    assert len(missing) == 4
    assert {(f.file, f.line, f.path) for f in missing} == {
        (str(tmp_path / "bastion.yaml"), 2, "/kind")
    }


def test_lint_when_declaration_has_unknown_field_then_schema_error(tmp_path: Path) -> None:
    """The declaration is schema-checked: no mode, scope or extends on a PolicySet."""
    (tmp_path / "roll.yaml").write_text(ROLL)
    (tmp_path / "bastion.yaml").write_text(
        "apiVersion: bastion/v1\nkind: PolicySet\nmetadata: {name: s}\nmode: shadow\n"
        "spec: {required_kinds: [RollPolicy]}\n"
    )
    assert [f.code for f in lint_paths([tmp_path]).findings] == ["BST011"]


def test_load_policy_set_when_required_kind_missing_then_refused_to_start(
    shipped: Path,
) -> None:
    """Startup (`bastion serve`) uses the same lint: a missing kind is PolicySetError."""
    (shipped / "protection.yaml").unlink()
    with pytest.raises(PolicySetError, match="BST606"):
        load_policy_set([shipped])


def test_load_policy_set_when_shipped_then_declaration_part_of_the_version() -> None:
    """The shipped set carries its declaration, and the declaration counts in its version."""
    policy_set = load_policy_set([POLICIES])
    assert policy_set.declaration is not None and policy_set.declaration.name == "bastion"
    assert policy_set.declaration not in policy_set.policies
    without = type(policy_set)(policy_set.policies)
    assert without.version != policy_set.version


def test_declaration_schema_when_built_then_envelope_without_mode_scope_extends() -> None:
    """The PolicySet schema has apiVersion, kind, metadata and spec only."""
    properties = declaration_schema()["properties"]
    assert set(properties) == {"apiVersion", "kind", "metadata", "spec"}


def test_declaration_example_when_linted_then_clean_beside_the_shipped_policies(
    tmp_path: Path,
) -> None:
    """The schema's example declaration is a valid bastion.yaml for the shipped set."""
    directory = tmp_path / "policies"
    shutil.copytree(POLICIES, directory)
    example = declaration_schema()["examples"][0]
    (directory / "bastion.yaml").write_text(yaml.safe_dump(example))
    result = lint_paths([directory])
    assert result.findings == () and result.declarations[0].name == "bastion"
