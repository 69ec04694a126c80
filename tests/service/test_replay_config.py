"""The replay feed's --config: the shipped example loads, and a key it does not know is
refused (a misspelt `positions:` would otherwise replay an empty book in silence)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.adapters.sources import ManualClock
from bastion.engine.errors import UsageError
from bastion.service.feeds import REPLAY_SETTINGS, make_feed, read_config
from tests.conftest import POLICIES, ROOT

Run = Callable[..., tuple[int, str, str]]
EXAMPLE = ROOT / "examples" / "replay" / "replay.yaml"


def test_read_config_when_shipped_example_then_replay_feed_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """examples/replay/replay.yaml (the README's) holds only known settings and builds a
    replay feed with its bars and book, from the repository root."""
    monkeypatch.chdir(ROOT)
    config = read_config(EXAMPLE)
    assert set(config) - {"regime", "apiVersion", "kind"} <= set(REPLAY_SETTINGS)
    feed = make_feed("replay", config, wall=ManualClock(), speed=86400.0, seed=0, environ={})
    assert feed.regime_name == "normal"


def test_make_feed_when_replay_config_has_unknown_key_then_usage_error_names_it() -> None:
    """A misspelt key is refused with the key and the settings there are."""
    config = {"bars": {"SPY": "examples/replay/SPY.csv"}, "positon": "positions.json"}
    with pytest.raises(UsageError, match=r"unknown setting 'positon'; the settings are bars"):
        make_feed("replay", config, wall=ManualClock(), speed=60.0, seed=0, environ={})


def test_serve_when_replay_config_misspelt_then_exit_2(
    run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bastion serve --adapter replay` with an unknown key exits 2 before serving."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "replay.yaml"
    spy = ROOT / "examples" / "replay" / "SPY.csv"
    config.write_text(f"bars: {{SPY: {spy}}}\npositon: x.json\n")
    code, _, err = run_cli(
        "serve", "--once", "--no-audit", "--policies", str(POLICIES), "--adapter", "replay",
        "--config", str(config),
    )  # fmt: skip
    assert code == 2
    assert "unknown setting 'positon'" in err
