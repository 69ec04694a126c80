"""The replay feed's --config (kind: ReplayFeed) is linted like a policy: its schema, and
the files it names, at file:line:col; `serve` refuses a wrong kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.adapters.replay_config import check_replay_settings, is_replay_file, lint_replay_file
from bastion.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "replay" / "replay.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "SPY.csv").write_text("date,open,high,low,close,volume\n", encoding="utf-8")
    path = tmp_path / "replay.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_lint_when_shipped_example_then_no_findings() -> None:
    """The README's replay config is a ReplayFeed and lints clean from the repo root."""
    assert is_replay_file(EXAMPLE)
    assert lint_replay_file(EXAMPLE, base=ROOT) == []


def test_lint_when_key_misspelt_then_schema_error_at_its_line(tmp_path: Path) -> None:
    """`position:` for `positions:` is named at its line, not replayed as an empty book."""
    path = _write(
        tmp_path,
        "apiVersion: bastion/v1\nkind: ReplayFeed\nbars: {SPY: SPY.csv}\nposition: p.json\n",
    )
    findings = lint_replay_file(path, base=tmp_path)
    assert [(f.line, f.severity) for f in findings] == [(4, "error")]
    assert "position" in findings[0].message


def test_lint_when_bars_file_missing_then_bst807_at_the_symbol(tmp_path: Path) -> None:
    """A bars file that does not exist is BST807 at the line that names it."""
    path = _write(
        tmp_path,
        "apiVersion: bastion/v1\nkind: ReplayFeed\nbars:\n  SPY: SPY.csv\n  QQQ: QQQ.csv\n",
    )
    findings = lint_replay_file(path, base=tmp_path)
    assert [(f.code, f.line) for f in findings] == [("BST807", 5)]
    assert "QQQ.csv" in findings[0].message


def test_lint_when_regime_severity_unknown_then_error(tmp_path: Path) -> None:
    """A regime severity outside low / medium / high / critical is a schema error."""
    path = _write(
        tmp_path,
        "apiVersion: bastion/v1\nkind: ReplayFeed\nbars: {SPY: SPY.csv}\n"
        "regime: {name: crash, severity: extreme}\n",
    )
    assert [f.line for f in lint_replay_file(path, base=tmp_path)] == [4]


def test_cli_lint_when_directory_holds_replay_config_then_counted_and_not_a_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bastion lint DIR` checks a ReplayFeed beside policies and never loads it as one."""
    _write(tmp_path, "apiVersion: bastion/v1\nkind: ReplayFeed\nbars: {SPY: MISSING.csv}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["lint", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "BST807" in out
    assert "BST016" not in out  # not read as a policy without apiVersion / kind


def test_check_settings_when_kind_wrong_then_refused() -> None:
    """A replay --config that declares another kind is refused, naming the right one."""
    settings = {"apiVersion": "bastion/v1", "kind": "AlertPolicy", "bars": {}}
    with pytest.raises(ValueError, match="kind: ReplayFeed"):
        check_replay_settings(settings)


def test_check_settings_when_declared_then_keys_dropped() -> None:
    """apiVersion and kind are accepted and removed before the feed reads its settings."""
    settings = {"apiVersion": "bastion/v1", "kind": "ReplayFeed", "bars": {"SPY": "x"}}
    check_replay_settings(settings)
    assert settings == {"bars": {"SPY": "x"}}
