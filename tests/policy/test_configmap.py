"""Policies from a ConfigMap mounted as a directory: each key once, by its own name."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.engine.policy import loader
from bastion.engine.policy.loader import discover, load_policies
from bastion.engine.policy.sources import data_target, list_sources
from tests.conftest import POLICIES
from tests.policy.configmap_layout import FIRST, SECOND, edited, mount, shipped, swap

Run = Callable[..., tuple[int, str, str]]
KEYS = sorted(shipped())


def descriptions(root: Path) -> dict[str, str]:
    """Each loaded policy's description by name."""
    result = load_policies([root])
    assert [f for f in result.findings if f.severity == "error"] == []
    return {p.name: p.description for p in (*result.policies, *result.declarations)}


def test_discover_when_configmap_layout_then_each_key_found_once_by_its_top_level_name(
    tmp_path: Path,
) -> None:
    """Neither `..data` nor the timestamped folder is walked: one path per key."""
    root = mount(tmp_path / "policies", shipped())
    assert discover([root]) == [root / name for name in KEYS]
    assert [s.read_from for s in list_sources([root]).files] == [
        root / FIRST / name for name in KEYS
    ]


def test_load_when_configmap_layout_then_each_policy_loaded_once(tmp_path: Path) -> None:
    """No BST605 "already defined": the set loads as the plain directory does."""
    root = mount(tmp_path / "policies", shipped())
    result = load_policies([root])
    plain = load_policies([POLICIES])
    assert result.findings == []
    assert result.files == len(KEYS)
    assert [(p.kind, p.name, p.version) for p in result.policies] == [
        (p.kind, p.name, p.version) for p in plain.policies
    ]


def test_lint_when_configmap_directory_then_each_file_checked_once_and_exit_0(
    tmp_path: Path, run_cli: Run
) -> None:
    """`bastion lint DIR` on a ConfigMap mount checks as many files as there are keys."""
    root = mount(tmp_path / "policies", shipped())
    code, out, _ = run_cli("lint", str(root))
    assert code == 0
    assert f"{len(KEYS)} files checked: no problems found" in out


def test_lint_when_a_key_is_broken_then_the_finding_names_the_top_level_path(
    tmp_path: Path, run_cli: Run
) -> None:
    """file:line:col names `DIR/limits.yaml`, never the hidden folder it is read from."""
    files = shipped()
    files["limits.yaml"] = "kind: [unclosed\n"
    root = mount(tmp_path / "policies", files)
    code, out, _ = run_cli("lint", str(root))
    assert code == 1
    assert f"{root / 'limits.yaml'}:" in out
    assert ".." not in out.replace(str(tmp_path), "")


def test_load_when_dot_files_and_dot_folders_then_never_loaded(tmp_path: Path) -> None:
    """`.old/limits.yaml` and `.limits.yaml` are hidden: never policies (no BST605)."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root)
    shutil.copytree(POLICIES, root / ".old")
    shutil.copy(POLICIES / "limits.yaml", root / ".limits.yaml")
    result = load_policies([root])
    assert result.findings == []
    assert all(".old" not in str(p) and ".limits" not in str(p) for p in discover([root]))


def test_discover_when_a_hidden_directory_is_named_then_it_is_walked(tmp_path: Path) -> None:
    """Only entries *below* a named directory are skipped for being hidden."""
    root = tmp_path / ".bastion" / "policies"
    shutil.copytree(POLICIES, root)
    assert [p.name for p in discover([root])] == [
        *KEYS,
        *sorted(p.name for p in (POLICIES / "tests").glob("*.yaml")),
    ]


def test_load_when_data_swapped_while_reading_then_only_the_new_version_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A swap (old folder removed too) after the third file was read: read it all again."""
    root = mount(tmp_path / "policies", shipped())
    reads = 0
    real_read_text = loader.read_text

    def read_text_then_swap(path: Path, **options: object) -> str:
        nonlocal reads
        reads += 1
        text = real_read_text(path, **options)  # type: ignore[arg-type]
        if reads == 3:
            swap(root, edited(shipped()))
        return text

    monkeypatch.setattr(loader, "read_text", read_text_then_swap)
    found = descriptions(root)
    assert found["default-breakers"].startswith("(v2) ")
    assert found["default-roll"].startswith("(v2) ")
    assert reads == 2 * len(KEYS)  # the first pass, then the whole set again
    assert data_target(root) == root / SECOND


def test_load_when_read_at_every_step_of_a_swap_then_one_version_and_never_a_missing_key(
    tmp_path: Path,
) -> None:
    """Between the rename and the new top-level symlinks, a new key is still loaded;
    before the rename the old set is read whole, after it the new one."""
    old = shipped()
    new = {
        **edited(old),
        "extra-breakers.yaml": old["com-accounts.yaml"].replace(
            "name: com-breakers", "name: extra-breakers"
        ),
    }
    root = mount(tmp_path / "policies", old)
    seen: list[tuple[bool, int]] = []

    def load() -> None:
        found = descriptions(root)
        seen.append((found["default-breakers"].startswith("(v2) "), len(found)))

    swap(root, new, pause=load)
    load()
    old_count, new_count = len(old), len(new)
    assert seen == [(False, old_count), (False, old_count), *[(True, new_count)] * 4]


def test_policy_test_discover_when_configmap_mount_then_each_test_file_once(
    tmp_path: Path,
) -> None:
    """`bastion test` on a ConfigMap mount of test files finds each once, by its top-level
    name (not again through `..data` and the timestamped folder)."""
    from bastion.cli.policy_test import discover as discover_tests  # noqa: PLC0415

    tests_dir = POLICIES / "tests"
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(tests_dir.glob("*.yaml"))}
    root = mount(tmp_path / "cm", files)
    found = discover_tests([str(root)])
    assert sorted(p.name for p in found) == sorted(files)
    assert all(p.parent == root for p in found)
