"""The loader's per-file memo (engine/policy/loader.py `_PARSED`): a reload reads every
file again, but parses and schema-checks only those whose text changed — and says
exactly what it said without the memo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.lint.runner import lint_paths, load_policy_set
from bastion.engine.policy import loader
from bastion.engine.policy.yamlsource import load_documents

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", folder)
    return folder


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The file names the loader parsed (its memo emptied first)."""
    monkeypatch.setattr(loader, "_PARSED", {})
    monkeypatch.setattr(loader, "_SCHEMA", {})
    seen: list[str] = []
    real = loader.load_documents

    def counted(text: str, name: str) -> object:
        seen.append(Path(name).name)
        return real(text, name)

    monkeypatch.setattr(loader, "load_documents", counted)
    return seen


def _said(folder: Path) -> tuple[object, ...]:
    result = lint_paths([folder])
    return tuple(result.findings), tuple(result.policies)


def test_unchanged_files_when_loaded_again_then_not_parsed_and_same_result(
    policies: Path, parses: list[str]
) -> None:
    first = _said(policies)
    files = len(parses)
    assert files >= 5
    assert _said(policies) == first
    assert len(parses) == files  # nothing parsed the second time


def test_one_file_edited_when_loaded_again_then_only_it_parsed_and_its_finding_reported(
    policies: Path, parses: list[str]
) -> None:
    clean = _said(policies)
    limits = policies / "limits.yaml"
    text = limits.read_text()
    assert "max_daily_drawdown_pct: 10" in text
    limits.write_text(text.replace("max_daily_drawdown_pct: 10", "max_daily_drawdown_pct: -3"))
    parses.clear()
    findings, _ = _said(policies)
    assert parses == ["limits.yaml"]
    assert any(f.file.endswith("limits.yaml") and f.severity == "error" for f in findings)
    limits.write_text(text)  # back as it was: the first parse of that text is reused
    parses.clear()
    assert _said(policies) == clean
    assert parses == []


def test_same_text_under_another_name_when_loaded_then_parsed_for_that_name(
    policies: Path, parses: list[str]
) -> None:
    _, before = _said(policies)
    (policies / "limits.yaml").rename(policies / "limits-renamed.yaml")
    parses.clear()
    findings, after = _said(policies)
    assert parses == ["limits-renamed.yaml"]
    assert all("limits.yaml" not in f.file for f in findings)  # never the old name
    assert len(after) == len(before)


def test_emptied_file_when_memo_warm_then_still_bst017(policies: Path, parses: list[str]) -> None:
    _said(policies)
    (policies / "limits.yaml").write_text("# emptied\n")
    findings, _ = _said(policies)
    assert [f.code for f in findings if f.file.endswith("limits.yaml")] == ["BST017"]


def test_full_load_and_compile_when_done_then_cached_documents_unchanged(
    policies: Path, parses: list[str]
) -> None:
    """The memo hands the same document objects to every load: nothing may change them
    (compared with the files parsed afresh, outside the loader)."""
    compile_policy_set(load_policy_set([policies])).close()
    compile_policy_set(load_policy_set([policies])).close()
    assert loader._PARSED
    for (name, text), parsed in loader._PARSED.items():
        fresh = [d for d in load_documents(text, name) if d.data.get("kind") != "PolicyTest"]
        assert [d.data for d, _ in parsed.documents] == [d.data for d in fresh], name
