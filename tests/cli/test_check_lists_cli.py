"""`bastion check` with an order list or a modify: the JSON answer, state, exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from bastion.engine.state import State
from tests.conftest import POLICIES, ROOT

Run = Callable[..., tuple[int, str, str]]
BRACKET = ROOT / "examples" / "check" / "bracket"
MODIFY = ROOT / "examples" / "check" / "modify"


def _check(run_cli: Run, case: Path, request: str, *args: str) -> tuple[int, str, str]:
    return run_cli(
        "check",
        "--policies",
        str(POLICIES),
        "--snapshot",
        str(case / "snapshot.json"),
        "--request",
        str(case / request),
        *args,
    )


def test_check_when_bracket_json_then_every_leg_with_role_and_the_list_decision(
    run_cli: Run,
) -> None:
    """--format json: the list's outcome, three legs with index and role, the list's
    audit record naming each leg's decision."""
    code, out, err = _check(run_cli, BRACKET, "request.json", "--format", "json")
    assert code == 0, err
    answer = json.loads(out)["order_list"]
    assert (answer["outcome"], answer["approved"]) == ("downsized", True)
    legs = answer["legs"]
    assert [(leg["index"], leg["role"]) for leg in legs] == [
        (0, "entry"),
        (1, "stop_loss"),
        (2, "take_profit"),
    ]
    assert [leg["approved_size"] for leg in legs] == ["110", "50", "50"]
    record = answer["decision"]
    assert record["subject"]["scope"] == "order_list"
    assert [check["check"] for check in record["trace"]] == [
        "orders[0] entry",
        "orders[1] stop_loss",
        "orders[2] take_profit",
    ]


def test_check_when_list_denied_with_state_out_then_state_unchanged_exit_1(
    run_cli: Run, tmp_path: Path
) -> None:
    """A denied list is a question answered no: the state written remembers nothing."""
    out_state = tmp_path / "state.json"
    code, _, _ = _check(run_cli, BRACKET, "wrong-side-request.json", "--state-out", str(out_state))
    assert code == 1
    assert not State.from_dict(json.loads(out_state.read_text())).authority


def test_check_when_list_unreadable_then_exit_2_naming_the_leg(
    run_cli: Run, tmp_path: Path
) -> None:
    """A leg that breaks the request schema: exit 2, its path in the list named."""
    document = json.loads((BRACKET / "request.json").read_text())
    document["orders"][2]["action"] = "sell"
    (tmp_path / "request.json").write_text(json.dumps(document))
    (tmp_path / "snapshot.json").write_text((BRACKET / "snapshot.json").read_text())
    code, _, err = _check(run_cli, tmp_path, "request.json")
    assert code == 2
    assert "orders[2].action" in err


def test_check_when_modify_explained_then_its_own_rate_not_the_submit_rate(run_cli: Run) -> None:
    """--explain: a modify raising the order shows the modify-rate check (and the limits
    on its added units); one lowering it adds no exposure; neither counts as a submit."""
    state = str(MODIFY / "state.json")
    code, out, _ = _check(run_cli, MODIFY, "request.json", "--state", state, "--explain")
    assert code == 1
    assert "limit.modify_rate: modifies 0 < 100" in out
    assert "✗ limit.max_per_asset" in out and "limit.submit_rate" not in out
    code, out, _ = _check(run_cli, MODIFY, "smaller-request.json", "--state", state, "--explain")
    assert code == 0
    assert "modify adds no exposure" in out and "limit.submit_rate" not in out
