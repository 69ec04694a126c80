"""`bastion eval` text: an action that only repeats the outcome is not printed again."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import POLICIES, ROOT

Run = Callable[..., tuple[int, str, str]]


def test_eval_text_when_trading_state_changes_then_no_lowercase_echo(run_cli: Run) -> None:
    """`trading_state account:gen-01 HALTED: ACTIVE → HALTED ...`, not `HALTED -> halted`."""
    code, out, err = run_cli(
        "eval",
        "--policies",
        str(POLICIES),
        "--snapshot",
        str(ROOT / "examples" / "snapshots" / "crash-day.json"),
    )
    assert code == 0, err
    changes = [line for line in out.splitlines() if line.startswith("trading_state")]
    assert changes
    for line in changes:
        assert " -> halted" not in line and " -> reducing" not in line and " -> active" not in line
    assert any("HALTED: ACTIVE → HALTED" in line for line in changes)
