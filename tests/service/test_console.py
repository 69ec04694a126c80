"""The console's lines: subject, breaker or level id, value vs threshold, action and the
trading state that results, once per change; reload lines; the summary at stop."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bastion.engine.decision import Decision
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import Regime, load_snapshot
from bastion.engine.state import TRIPPED, BreakerState, State
from bastion.service.console import Console, JsonSink, TextSink, mode_for, reload_line
from bastion.service.console_lines import ConsoleLines, short
from bastion.service.console_summary import ResetHint, RunSummary
from bastion.service.reloader import PolicyReloaded, ReloadRejected
from tests.conftest import POLICIES, ROOT

CRASH = ROOT / "examples" / "snapshots" / "crash-day.json"
T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def crash() -> tuple[tuple[Decision, ...], State]:
    """The crash-day snapshot evaluated from an empty state: trips, HALTED accounts."""
    compiled = compile_policy_set(load_policy_set([POLICIES]))
    snapshot = load_snapshot(CRASH)
    try:
        return evaluate(compiled, snapshot, State(), snapshot.as_of)
    finally:
        compiled.close()


def test_line_when_breaker_trips_then_names_subject_id_value_threshold_action_and_state(
    crash: tuple[tuple[Decision, ...], State],
) -> None:
    """A trip line: `TRIP account:gen-01 daily_loss_usd account.daily_loss_usd = X vs >=
    1000 -> halt_all => gen-01 HALTED`."""
    decisions, state = crash
    lines = ConsoleLines().of_cycle(T0, decisions, state)
    (trip,) = [
        line
        for line in lines
        if line.event == "breaker_tripped" and line.rule == "daily_loss_usd"
        if line.subject == "account:gen-01"
    ]
    assert trip.text.startswith("TRIP    account:gen-01  daily_loss_usd  account.daily_loss_usd = ")
    assert trip.threshold == ">= 1000" and " vs >= 1000" in trip.text
    assert trip.action == "halt_all" and "-> halt_all" in trip.text
    assert trip.trading_state == "gen-01 HALTED" and trip.text.endswith("=> gen-01 HALTED")


def test_line_when_trading_state_changes_then_from_to_and_why_never_lowercase_echo(
    crash: tuple[tuple[Decision, ...], State],
) -> None:
    """`STATE account:gen-01 ACTIVE -> HALTED (breaker ...)`, not `HALTED -> halted`."""
    decisions, state = crash
    lines = ConsoleLines().of_cycle(T0, decisions, state)
    changes = [line for line in lines if line.event == "trading_state_changed"]
    assert changes
    for line in changes:
        assert " -> " in line.text and "halted" not in line.text and "reducing" not in line.text
    gen = next(line for line in changes if line.subject == "account:gen-01")
    assert "ACTIVE -> HALTED" in gen.text and "breaker" in gen.text


def test_lines_when_same_decision_twice_in_a_cycle_then_printed_once(
    crash: tuple[tuple[Decision, ...], State],
) -> None:
    """No duplicate line within a cycle."""
    decisions, state = crash
    lines = ConsoleLines().of_cycle(T0, (*decisions, *decisions), state)
    texts = [line.text for line in lines]
    assert len(texts) == len(set(texts))


def test_lines_when_roll_advice_repeats_then_said_once_until_it_changes(
    crash: tuple[tuple[Decision, ...], State],
) -> None:
    """The same roll advice every cycle is one line; a different one is a new line."""
    decisions, state = crash
    advice = ("roll SPY 2027-01-08 P 560",)
    rolls = [replace(decisions[0], kind="roll", rule="urgency:low", outcome="roll", reasons=advice)]
    lines = ConsoleLines()
    first = lines.of_cycle(T0, rolls, state)
    again = lines.of_cycle(T0 + timedelta(minutes=1), rolls, state)
    changed = [replace(rolls[0], reasons=("a different candidate",))]
    third = lines.of_cycle(T0 + timedelta(minutes=2), changed, state)
    assert len(first) == len(rolls) and again == [] and len(third) == 1


def test_lines_when_regime_changes_then_one_line_naming_old_and_new() -> None:
    """The sim's regime is shown: once at a non-normal start, then at every change."""
    lines, state = ConsoleLines(), State()
    calm = Regime("calm", "low", T0)
    selloff = Regime("selloff", "high", T0)
    assert [line.text for line in lines.of_cycle(T0, (), state, calm)] == [
        "REGIME  market  calm (severity low)"
    ]
    assert lines.of_cycle(T0, (), state, calm) == []
    (line,) = lines.of_cycle(T0, (), state, selloff)
    assert line.text == "REGIME  market  selloff (severity high) (was calm, low)"
    assert line.severity == "warning"


def test_reload_line_when_reloaded_then_versions_and_files_changed() -> None:
    """A successful reload is a line: old -> new version and each changed file."""
    event = PolicyReloaded(
        "sha256:" + "b" * 64,
        "sha256:" + "a" * 64,
        ("BreakerPolicy/default-breakers",),
        0.2,
        T0,
        "watch",
    )
    line = reload_line(event, {"BreakerPolicy/default-breakers": "policies/breakers.yaml"})
    assert line.event == "policy_reloaded"
    assert "sha256:aaaaaaaaaaaa -> sha256:bbbbbbbbbbbb" in line.text
    assert "BreakerPolicy/default-breakers (policies/breakers.yaml)" in line.text


def test_reload_line_when_refused_then_first_error_and_kept_version() -> None:
    """A refused reload is a line: why, and the version still serving."""
    event = ReloadRejected(
        "sha256:" + "a" * 64, ("policies/x.yaml:3:1: BST101 bad", "y"), 0.1, T0, "watch", "lint"
    )
    line = reload_line(event, {})
    assert line.event == "reload_rejected" and line.severity == "warning"
    assert "BST101 bad (+1 more)" in line.text and "still serving sha256:aaaaaaaaaaaa" in line.text


def test_summary_when_run_ends_then_trips_time_per_state_and_exact_reset_command(
    crash: tuple[tuple[Decision, ...], State],
) -> None:
    """The stop summary: trips, time per trading state, escalations, alerts, and a curl
    that resets each breaker still tripped (with the token header under --auth)."""
    decisions, state = crash
    summary = RunSummary()
    summary.cycle(T0, (), State(trading_states={"gen-01": "ACTIVE"}))
    summary.cycle(T0 + timedelta(minutes=10), decisions, state)
    summary.cycle(T0 + timedelta(minutes=40), (), state)
    hint = ResetHint("http://127.0.0.1:9108/api/v1/breakers/reset", token=True)
    text = "\n".join(summary.lines(state.breakers, {"critical": 3.0}, hint))
    assert "breaker trips: " in text and "daily_loss_usd@account:gen-01" in text
    assert "gen-01     ACTIVE 10m (25%)  REDUCING 0s (0%)  HALTED 30m (75%)  now HALTED" in text
    assert "alerts raised: 3 (critical 3)" in text
    assert (
        'reset: curl -s -H "Authorization: Bearer $BASTION_TOKEN" -d \'{"breaker": '
        '"daily_loss_usd", "subject": "account:gen-01", "by": "YOUR-NAME", "reason": '
        '"WHY IT IS SAFE"}\' http://127.0.0.1:9108/api/v1/breakers/reset' in text
    )
    assert "not kept: no --state file" in text
    fields = summary.fields(state.breakers, {}, hint)
    assert fields["time_in_states_s"]["gen-01"] == {
        "ACTIVE": 600.0,
        "REDUCING": 0.0,
        "HALTED": 1800.0,
    }


def test_summary_when_auto_breaker_held_then_says_it_rearms_once_clear() -> None:
    """A held auto breaker is listed as re-arming by itself once its condition clears, with
    the one request that resets the first of them now."""
    held = BreakerState(TRIPPED, T0, T0, 1, awaiting_clear=True)
    lines = RunSummary().lines({"p:stale_data@system:all": held}, {}, ResetHint())
    assert any("re-arms by itself once its condition clears" in line for line in lines)
    short_list = RunSummary().lines(
        {"p:stale_data@system:all": held}, {}, ResetHint(), auto={"p:stale_data"}
    )
    assert any(line.startswith("    1 reset: auto (re-arm by themselves") for line in short_list)
    # Listed short: not a request each, one request for the first (an operator at 3 a.m.
    # copies it; the others differ only in breaker and subject).
    requests = [line for line in short_list if "curl" in line]
    assert len(requests) == 1
    assert requests[0].startswith("      reset the first now: curl")
    assert '"breaker": "stale_data"' in requests[0]


def test_console_when_text_mode_then_plain_lines_with_market_time(
    capsys: pytest.CaptureFixture[str], crash: tuple[tuple[Decision, ...], State]
) -> None:
    """--log-format console: one plain line per change, `HH:MM:SS LINE`."""
    decisions, state = crash
    console = Console(TextSink())
    for line in console.lines.of_cycle(T0, decisions, state):
        console.sink.line(line)
    out = capsys.readouterr().out
    assert out.startswith("18:45:00 ")  # the decision's market time
    assert "TRIP    account:gen-01  daily_loss_usd" in out


def test_console_when_json_mode_then_nothing_but_json_events(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """JSON mode writes only structured events (a regime change; the summary block)."""
    from bastion.service.logs import configure_logging  # noqa: PLC0415

    configure_logging(json=True)
    sink = JsonSink()
    for line in ConsoleLines().of_cycle(T0, (), State(), Regime("selloff", "high", T0)):
        sink.line(line)
    sink.block("run_summary", ["plain words"], {"cycles": 1})
    out = capsys.readouterr().out
    assert '"event": "regime_changed"' in out and '"event": "run_summary"' in out
    assert "plain words" not in out


def test_mode_when_terminal_or_not_then_live_or_json() -> None:
    """auto: live in a terminal, JSON otherwise; an explicit --log-format wins."""
    assert mode_for("auto", True) == "live" and mode_for("auto", False) == "json"
    assert mode_for("json", True) == "json" and mode_for("console", False) == "text"


def test_short_when_long_decimal_then_two_places_or_four_below_one() -> None:
    """Values as a person reads them; integers and short values untouched."""
    assert short("34.06113537117903930131004367") == "34.06"
    assert short("0.355123") == "0.3551"
    assert (short("1000"), short("1322.38"), short("QQQ")) == ("1000", "1322.38", "QQQ")
