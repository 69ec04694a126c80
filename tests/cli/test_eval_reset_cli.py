"""`bastion eval --reset`: only a breaker not armed is reset; anything else is exit 2
naming what is tripped (as POST /api/v1/breakers/reset answers 409)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import POLICIES, ROOT

Run = Callable[..., tuple[int, str, str]]
SNAPSHOTS = ROOT / "examples" / "snapshots"
LATER = "2026-11-20T17:00:00Z"


@pytest.fixture
def tripped_state(run_cli: Run, tmp_path: Path) -> Path:
    """A state in which daily_loss_usd is tripped for gen-01 (the atr-breach snapshot)."""
    state = tmp_path / "state.json"
    code, _, err = run_cli(
        "eval",
        "--policies",
        str(POLICIES),
        "--snapshot",
        str(SNAPSHOTS / "atr-breach.json"),
        "--state-out",
        str(state),
    )
    assert code == 0, err
    return state


def _reset(run_cli: Run, state: Path | None, target: str) -> tuple[int, str, str]:
    with_state = ["--state", str(state)] if state is not None else []
    return run_cli(
        "eval",
        "--policies",
        str(POLICIES),
        "--snapshot",
        str(SNAPSHOTS / "calm.json"),
        *with_state,
        "--now",
        LATER,
        "--reset",
        target,
        "--by",
        "alice",
        "--reason",
        "booked",
    )


def test_eval_reset_when_breaker_misspelt_then_exit_2_naming_tripped_and_known(
    run_cli: Run, tripped_state: Path
) -> None:
    """A typo is not a silent no-op: exit 2, the tripped breaker with its --reset
    argument, and the known breaker ids."""
    code, out, err = _reset(run_cli, tripped_state, "daily_loss_us@account:gen-01")
    assert code == 2 and out == ""
    assert "daily_loss_us is not tripped or cooling down for account:gen-01" in err
    assert "--reset daily_loss_usd@account:gen-01 (tripped)" in err
    assert "no breaker is named 'daily_loss_us'" in err and "daily_loss_usd" in err


def test_eval_reset_when_breaker_armed_for_that_subject_then_exit_2(
    run_cli: Run, tripped_state: Path
) -> None:
    """A real breaker id, but armed for the subject named (another account): exit 2."""
    code, _, err = _reset(run_cli, tripped_state, "daily_loss_usd@account:rev-01")
    assert code == 2
    assert "daily_loss_usd is not tripped or cooling down for account:rev-01" in err
    assert "no breaker is named" not in err
    assert "--reset daily_loss_usd@account:gen-01" in err


def test_eval_reset_when_no_state_given_then_exit_2_saying_all_armed(run_cli: Run) -> None:
    """Without --state every breaker is armed: nothing to reset, exit 2."""
    code, _, err = _reset(run_cli, None, "daily_loss_usd@account:gen-01")
    assert code == 2
    assert "no --state given" in err and "not armed now: none" in err


def test_eval_reset_when_breaker_tripped_then_exit_0_and_recorded(
    run_cli: Run, tripped_state: Path
) -> None:
    """The spelling the error suggests works: the reset is recorded with who and why."""
    code, out, err = _reset(run_cli, tripped_state, "daily_loss_usd@account:gen-01")
    assert code == 0, err
    assert "manually reset by alice: booked" in out
