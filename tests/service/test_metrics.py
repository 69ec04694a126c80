"""ServiceMetrics: values from real decisions and state, label clean-up, exposition."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bastion.engine.decision import Decision
from bastion.engine.evaluation.compiled import CompiledPolicySet, compile_policy_set
from bastion.engine.evaluation.evaluate import evaluate, fail_safe
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.snapshot import load_snapshot
from bastion.engine.state import ARMED, COOLDOWN, TRIPPED, BreakerState, EscalationState, State
from bastion.service.metrics import ServiceMetrics
from tests.conftest import POLICIES, ROOT

SNAPSHOTS = ROOT / "examples" / "snapshots"
AT = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def compiled() -> Iterator[CompiledPolicySet]:
    result = compile_policy_set(load_policy_set([POLICIES]))
    yield result
    result.close()


def _evaluated(compiled: CompiledPolicySet, name: str) -> tuple[tuple[Decision, ...], State]:
    snapshot = load_snapshot(SNAPSHOTS / f"{name}.json")
    return evaluate(compiled, snapshot, State(), snapshot.as_of)


def _value(metrics: ServiceMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def _label_sets(metrics: ServiceMetrics, name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    ]


def _escalated(level: int, policy: str = "default-escalation") -> EscalationState:
    return EscalationState(level, f"level-{level}", AT, Decimal(level), policy)


def test_evaluation_done_when_crash_day_evaluated_then_decisions_counted_by_kind_outcome_mode(
    compiled: CompiledPolicySet,
) -> None:
    """Every decision of a real evaluation lands in bastion_decisions_total."""
    decisions, state = _evaluated(compiled, "crash-day")
    metrics = ServiceMetrics()
    metrics.evaluation_done(0.004, decisions, state, 30.0)
    expected = Counter((d.kind, d.outcome, d.mode) for d in decisions)
    assert expected  # the example trips breakers and escalates
    for (kind, outcome, mode), count in expected.items():
        labels = {"kind": kind, "outcome": outcome, "mode": mode}
        assert _value(metrics, "bastion_decisions_total", **labels) == count
    assert _value(metrics, "bastion_evaluations_total") == 1
    assert _value(metrics, "bastion_evaluation_errors_total") == 0
    assert _value(metrics, "bastion_evaluation_seconds_count") == 1
    assert _value(metrics, "bastion_evaluation_seconds_sum") == pytest.approx(0.004)
    assert _value(metrics, "bastion_polling_interval_seconds") == 30.0


def test_evaluation_done_when_state_escalated_then_level_gauges_per_position(
    compiled: CompiledPolicySet,
) -> None:
    """Each escalated position has its level; the per-level counts add up."""
    decisions, state = _evaluated(compiled, "crash-day")
    metrics = ServiceMetrics()
    metrics.evaluation_done(0.001, decisions, state, 30.0)
    for position, escalated in state.escalations.items():
        labels = {"position": position, "policy": escalated.policy, "mode": "enforce"}
        assert _value(metrics, "bastion_escalation_level", **labels) == escalated.level
    by_level = Counter(str(e.level) for e in state.escalations.values())
    for level, count in by_level.items():
        assert _value(metrics, "bastion_positions_by_level", level=level, mode="enforce") == count


def test_evaluation_done_when_breakers_tripped_then_state_gauge_labelled_from_key(
    compiled: CompiledPolicySet,
) -> None:
    """Breaker keys `policy:breaker@scope:id` become breaker, subject and policy labels."""
    decisions, state = _evaluated(compiled, "atr-breach")
    metrics = ServiceMetrics()
    metrics.evaluation_done(0.001, decisions, state, 30.0)
    assert list(state.breakers) == ["default-breakers:daily_loss_usd@account:gen-01"]
    labels = {
        "breaker": "daily_loss_usd",
        "subject": "account:gen-01",
        "policy": "default-breakers",
    }
    assert _value(metrics, "bastion_breaker_state", **labels) == 2
    assert _value(metrics, "bastion_trading_state", account="gen-01") == 2
    assert _value(metrics, "bastion_trading_state", account="rev-01") == 0


def test_evaluation_done_when_breaker_armed_or_cooling_down_then_values_0_and_1() -> None:
    """Armed is 0, cooldown 1, tripped 2; REDUCING is 1."""
    state = State(
        breakers={
            "p:a@account:x": BreakerState(ARMED),
            "p:b@account:x": BreakerState(COOLDOWN),
            "p:c@account:x": BreakerState(TRIPPED),
        },
        trading_states={"x": "REDUCING"},
    )
    metrics = ServiceMetrics()
    metrics.evaluation_done(0.001, (), state, 300.0)
    for breaker, value in (("a", 0), ("b", 1), ("c", 2)):
        labels = {"breaker": breaker, "subject": "account:x", "policy": "p"}
        assert _value(metrics, "bastion_breaker_state", **labels) == value
    assert _value(metrics, "bastion_trading_state", account="x") == 1


def test_evaluation_done_when_shadow_policy_escalates_then_mode_shadow_and_bare_position() -> None:
    """A shadow policy's key `position@policy` is split; it is counted apart from enforce."""
    state = State(
        escalations={"SPY-1": _escalated(1), "SPY-1@trial": _escalated(3, policy="trial")}
    )
    metrics = ServiceMetrics()
    metrics.evaluation_done(0.001, (), state, 60.0)
    shadow = {"position": "SPY-1", "policy": "trial", "mode": "shadow"}
    enforce = {"position": "SPY-1", "policy": "default-escalation", "mode": "enforce"}
    assert _value(metrics, "bastion_escalation_level", **shadow) == 3
    assert _value(metrics, "bastion_escalation_level", **enforce) == 1
    assert _value(metrics, "bastion_positions_by_level", level="3", mode="shadow") == 1
    assert _value(metrics, "bastion_positions_by_level", level="3", mode="enforce") is None


def test_evaluation_done_when_positions_and_breakers_disappear_then_their_labels_removed(
    compiled: CompiledPolicySet,
) -> None:
    """Label sets follow the live state: gone positions, breakers and accounts are removed."""
    decisions, state = _evaluated(compiled, "crash-day")
    metrics = ServiceMetrics()
    metrics.evaluation_done(0.001, decisions, state, 30.0)
    assert len(_label_sets(metrics, "bastion_breaker_state")) == len(state.breakers)
    later = State(escalations={"SPY-101": _escalated(1)}, trading_states={"gen-01": "ACTIVE"})
    metrics.evaluation_done(0.001, (), later, 60.0)
    assert _label_sets(metrics, "bastion_breaker_state") == []
    assert _label_sets(metrics, "bastion_escalation_level") == [
        {"position": "SPY-101", "policy": "default-escalation", "mode": "enforce"}
    ]
    assert _label_sets(metrics, "bastion_trading_state") == [{"account": "gen-01"}]
    # a level that emptied stays, at 0: "no position at level 2" is worth a series
    assert _value(metrics, "bastion_positions_by_level", level="2", mode="enforce") == 0
    assert _value(metrics, "bastion_positions_by_level", level="1", mode="enforce") == 1


def test_evaluation_done_when_evaluation_failed_safe_then_error_counted(
    compiled: CompiledPolicySet,
) -> None:
    """The engine's fail-safe decision (kind evaluation) counts one evaluation error."""
    decisions, state = fail_safe(compiled, None, State(), AT, RuntimeError("boom"))
    metrics = ServiceMetrics()
    metrics.evaluation_done(0.001, decisions, state, 300.0)
    assert _value(metrics, "bastion_evaluation_errors_total") == 1
    labels = {"kind": "evaluation", "outcome": "error", "mode": "enforce"}
    assert _value(metrics, "bastion_decisions_total", **labels) == 1


def test_adapter_call_when_one_fails_then_latency_observed_for_both_and_one_error() -> None:
    """Every call is timed; only failures count as errors; the error series starts at 0."""
    metrics = ServiceMetrics()
    metrics.adapter_call("kraken", "balances", True, 0.2)
    labels = {"adapter": "kraken", "operation": "balances"}
    assert _value(metrics, "bastion_adapter_errors_total", **labels) == 0
    metrics.adapter_call("kraken", "balances", False, 1.3)
    assert _value(metrics, "bastion_adapter_request_seconds_count", **labels) == 2
    assert _value(metrics, "bastion_adapter_request_seconds_sum", **labels) == pytest.approx(1.5)
    assert _value(metrics, "bastion_adapter_errors_total", **labels) == 1


def test_data_age_when_set_twice_then_last_value_per_adapter() -> None:
    """The data-age gauge holds the latest measurement of each adapter."""
    metrics = ServiceMetrics()
    metrics.data_age("sim", 3.0)
    metrics.data_age("sim", 1.5)
    metrics.data_age("binance", 40.0)
    assert _value(metrics, "bastion_data_age_seconds", adapter="sim") == 1.5
    assert _value(metrics, "bastion_data_age_seconds", adapter="binance") == 40.0


def test_reload_succeeded_when_versions_change_then_old_info_labels_replaced() -> None:
    """Only the active policies and set version are exported; the counter and time advance."""
    metrics = ServiceMetrics()
    metrics.reload_succeeded(AT, "sha256:aaa", {"esc": "sha256:1", "brk": "sha256:2"})
    later = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    metrics.reload_succeeded(later, "sha256:bbb", {"esc": "sha256:3"})
    assert _label_sets(metrics, "bastion_policy_info") == [{"policy": "esc", "version": "sha256:3"}]
    assert _label_sets(metrics, "bastion_policy_set_info") == [{"version": "sha256:bbb"}]
    assert _value(metrics, "bastion_policy_set_info", version="sha256:bbb") == 1
    assert _value(metrics, "bastion_policy_reloads_total", result="success") == 2
    assert _value(metrics, "bastion_policy_reloads_total", result="failure") == 0
    last = _value(metrics, "bastion_policy_reload_last_success_timestamp_seconds")
    assert last == later.timestamp()


def test_reload_failed_when_called_then_failure_counted_and_timestamped() -> None:
    """A rejected reload counts a failure and leaves the policy info alone."""
    metrics = ServiceMetrics()
    metrics.reload_succeeded(AT, "sha256:aaa", {"esc": "sha256:1"})
    metrics.reload_failed(datetime(2026, 11, 20, 16, 0, tzinfo=UTC))
    assert _value(metrics, "bastion_policy_reloads_total", result="failure") == 1
    last = _value(metrics, "bastion_policy_reload_last_failure_timestamp_seconds")
    assert last == datetime(2026, 11, 20, 16, 0, tzinfo=UTC).timestamp()
    assert _value(metrics, "bastion_policy_set_info", version="sha256:aaa") == 1


def test_render_when_everything_recorded_then_text_parses_with_every_family(
    compiled: CompiledPolicySet,
) -> None:
    """The exposition parses; every bastion family is there; no *_created series."""
    decisions, state = _evaluated(compiled, "crash-day")
    metrics = ServiceMetrics()
    metrics.evaluation_done(0.002, decisions, state, 30.0)
    metrics.adapter_call("sim", "poll", True, 0.01)
    metrics.data_age("sim", 2.0)
    metrics.reload_succeeded(AT, "sha256:aaa", {"esc": "sha256:1"})
    metrics.reload_failed(AT)
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert {
        "bastion_decisions",
        "bastion_evaluation_seconds",
        "bastion_evaluations",
        "bastion_evaluation_errors",
        "bastion_escalation_level",
        "bastion_positions_by_level",
        "bastion_breaker_state",
        "bastion_trading_state",
        "bastion_polling_interval_seconds",
        "bastion_adapter_request_seconds",
        "bastion_adapter_errors",
        "bastion_data_age_seconds",
        "bastion_policy_reloads",
        "bastion_policy_reload_last_success_timestamp_seconds",
        "bastion_policy_reload_last_failure_timestamp_seconds",
        "bastion_policy_info",
        "bastion_policy_set_info",
    } <= set(families)
    assert families["bastion_evaluation_seconds"].type == "histogram"
    assert not [s for f in families.values() for s in f.samples if s.name.endswith("_created")]
    assert all(name.startswith(("bastion_", "process_", "python_gc_")) for name in families)
    # The collector's work by generation: a reference cycle per request shows here.
    assert {"python_gc_objects_collected", "python_gc_collections"} <= set(families)


def test_render_when_evaluation_histogram_then_buckets_span_100us_to_5s() -> None:
    """The evaluation histogram resolves sub-millisecond evaluations and slow ones."""
    metrics = ServiceMetrics()
    metrics.evaluation_done(0.00007, (), State(), 300.0)
    body, _ = metrics.render()
    (family,) = [
        f
        for f in text_string_to_metric_families(body.decode())
        if f.name == "bastion_evaluation_seconds"
    ]
    bounds = [s.labels["le"] for s in family.samples if s.name.endswith("_bucket")]
    assert bounds[0] == "0.0001" and "5.0" in bounds and bounds[-1] == "+Inf"
    first_bucket = next(s for s in family.samples if s.labels.get("le") == "0.0001")
    assert first_bucket.value == 1


def test_init_when_two_instances_then_registries_independent() -> None:
    """Each instance has its own registry: tests and services never share counters."""
    first, second = ServiceMetrics(), ServiceMetrics()
    first.data_age("sim", 9.0)
    assert _value(second, "bastion_data_age_seconds", adapter="sim") is None
