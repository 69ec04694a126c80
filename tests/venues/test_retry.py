"""The retry helper: exponential backoff with equal jitter, Retry-After honoured, no sleeping."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.adapters.retry import RetryPolicy, call_with_retry
from bastion.engine.errors import AdapterError, DataError, TransientAdapterError


def failing(errors: list[Exception], value: str = "ok") -> tuple[list[int], object]:
    """A call that raises ``errors`` in turn, then returns ``value``; counts its calls."""
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return value

    return calls, call


def run(call: object, policy: RetryPolicy, sleeps: list[float], seed: int = 7) -> object:
    return call_with_retry(
        call,  # type: ignore[arg-type]
        policy,
        sleep=sleeps.append,
        random=random.Random(seed).random,
        venue="test",
    )


@given(
    attempt=st.integers(min_value=1, max_value=30),
    ratio=st.floats(min_value=0, max_value=1),
    base=st.floats(min_value=0.01, max_value=5),
)
def test_backoff_when_any_attempt_then_between_half_cap_and_cap(
    attempt: int, ratio: float, base: float
) -> None:
    """Equal jitter: the wait is within [cap/2, cap], cap = min(max, base × 2^(n-1))."""
    policy = RetryPolicy(base_delay_s=base, max_delay_s=max(base, 8.0))
    cap = min(policy.max_delay_s, base * 2.0 ** (attempt - 1))
    assert cap / 2 <= policy.backoff_s(attempt, ratio) <= cap


def test_call_when_transient_then_retried_until_success() -> None:
    """Transient failures are retried; the result of the first success is returned."""
    calls, call = failing([TransientAdapterError("503"), TransientAdapterError("503")])
    sleeps: list[float] = []
    assert run(call, RetryPolicy(max_attempts=3), sleeps) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("error", [AdapterError("401"), DataError("field 'x' is missing")])
def test_call_when_fatal_or_data_error_then_raised_at_once(error: Exception) -> None:
    """Fatal and data errors are never retried."""
    calls, call = failing([error])
    sleeps: list[float] = []
    with pytest.raises(type(error)):
        run(call, RetryPolicy(max_attempts=5), sleeps)
    assert (len(calls), sleeps) == (1, [])


def test_call_when_retry_after_longer_than_backoff_then_waits_retry_after() -> None:
    """The venue's Retry-After is a floor under the jittered wait."""
    _calls, call = failing([TransientAdapterError("429", retry_after_s=5.0)])
    sleeps: list[float] = []
    run(call, RetryPolicy(max_attempts=2, base_delay_s=0.5, max_delay_s=8), sleeps)
    assert sleeps == [5.0]


def test_call_when_retry_after_exactly_max_delay_then_still_slept() -> None:
    """A Retry-After equal to max_delay_s is waited out (only longer ones are handed back)."""
    _calls, call = failing([TransientAdapterError("429", retry_after_s=8.0)])
    sleeps: list[float] = []
    run(call, RetryPolicy(max_attempts=2, max_delay_s=8.0), sleeps)
    assert sleeps == [8.0]


def test_call_when_retry_after_just_over_max_delay_then_raised_unslept() -> None:
    """A Retry-After one tick over max_delay_s goes straight back to the caller."""
    calls, call = failing([TransientAdapterError("429", retry_after_s=8.001)])
    sleeps: list[float] = []
    with pytest.raises(TransientAdapterError):
        run(call, RetryPolicy(max_attempts=3, max_delay_s=8.0), sleeps)
    assert (len(calls), sleeps) == (1, [])


def test_call_when_same_seed_then_same_waits() -> None:
    """Waits depend only on the seed: reruns are identical."""
    waits = []
    for _ in range(2):
        _calls, call = failing([TransientAdapterError("x")] * 3)
        sleeps: list[float] = []
        run(call, RetryPolicy(max_attempts=4), sleeps, seed=42)
        waits.append(sleeps)
    assert waits[0] == waits[1] and len(waits[0]) == 3


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"base_delay_s": -1.0}, {"base_delay_s": 9.0, "max_delay_s": 8.0}],
)
def test_policy_when_inconsistent_then_value_error(kwargs: dict[str, float]) -> None:
    """A policy that cannot work is refused when it is made."""
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
