"""column_batch: the decisions for many sums at once are column_metrics' one by one.

volatilities_within / correlations_within take the float steps of
column_metrics.volatility_within / correlation_within on whole arrays and round each
end as the reference does; the second end is rounded only where _alike cannot tell
that it rounds as the first. Compared here, repr for repr, with the one-window
functions on seeded sums: of every magnitude, zero, ±0, inf and NaN, and sums a few
ulps from a rounding tie — in the default context, in narrow ones, and with
InvalidOperation not trapped. The windows themselves: tests/adapters/test_market_columns.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import InvalidOperation, localcontext
from random import Random

import numpy as np
import pytest

from bastion.adapters import column_batch
from bastion.adapters import column_metrics as columns
from bastion.adapters import market_metrics as metrics

YEAR_S = metrics.SECONDS_PER_YEAR_24X7
COUNTS = (2, 29, 239)


def _nearby(value: float, rng: Random, ulps: int = 6) -> Iterator[float]:
    """``value`` and a few floats either side of it."""
    for step in range(-ulps, ulps + 1):
        yield value + step * math.ulp(value)
    yield value * (1 + rng.uniform(-1e-12, 1e-12))


def _squares(rng: Random, count: int) -> list[float]:
    """Sums of squares: ties of the volatility at 6 places and their neighbours, many
    magnitudes, and the edges."""
    found = [0.0, -0.0, 5e-324, math.inf, math.nan, 1e308, 1.7e308]
    for tie in (0.1234565, 0.5000005, 0.0000005, 1.9999995, 12.3456785):
        squares = tie**2 * 60 / YEAR_S * (count - 1)
        found += _nearby(squares, rng)
    found += [10.0 ** rng.uniform(-300, 300) for _ in range(200)]
    found += [rng.uniform(0, 1e-6) for _ in range(200)]
    return found


def _triples(rng: Random) -> list[tuple[float, float, float]]:
    """(cov, var_x, var_y): correlations at ties of 4 places and their neighbours,
    about 0 and ±1 (clamped), of many magnitudes, and the edges."""
    found = [(0.0, 1.0, 1.0), (-0.0, 1.0, 1.0), (1.0, 0.0, 1.0), (math.inf, 1.0, 1.0)]
    found += [(math.nan, 1.0, 1.0), (1.0, math.inf, 1.0), (1e-300, 1e-300, 1e-300)]
    for tie in (0.12345, -0.12345, 0.00005, -0.00005, 0.99995, -0.99995, 0.5):
        found += [(cov, 1.0, 1.0) for cov in _nearby(tie, rng)]
    for _ in range(300):
        var_x, var_y = 10.0 ** rng.uniform(-150, 150), 10.0 ** rng.uniform(-150, 150)
        found.append((rng.uniform(-1.01, 1.01) * math.sqrt(var_x * var_y), var_x, var_y))
    return found


def _contexts() -> Iterator[str]:
    """Run the body under the default context, narrow ones, and one that does not
    trap InvalidOperation (the rounding then gives NaN, not an error)."""
    for name in ("default", "prec 6", "prec 3", "no traps"):
        with localcontext() as context:
            if name.startswith("prec"):
                context.prec = int(name.split()[1])
            elif name == "no traps":
                context.prec = 3
                context.traps[InvalidOperation] = False
            yield name


@pytest.mark.parametrize("count", COUNTS)
def test_volatilities_within_when_many_sums_then_the_one_by_one_decisions(count: int) -> None:
    """Every sum, in every context: the batch gives what volatility_within gives."""
    rng = Random(count)
    squares = _squares(rng, count)
    years = [rng.choice([YEAR_S, metrics.SECONDS_PER_YEAR_US_EQUITY_SESSION]) for _ in squares]
    decided = 0
    for name in _contexts():
        batch = column_batch.volatilities_within(
            np.array(squares), count, 60, np.array(years, dtype=np.float64)
        )
        one = [
            columns.volatility_within(s, count, 60, y) for s, y in zip(squares, years, strict=True)
        ]
        assert [repr(v) for v in batch] == [repr(v) for v in one], name
        decided += sum(value is not None for value in one)
    assert decided > len(squares)  # most are decided; the ties are not


def test_correlations_within_when_many_sums_then_the_one_by_one_decisions() -> None:
    """Every (cov, var_x, var_y), in every context: the batch gives what
    correlation_within gives."""
    rng = Random(3)
    triples = _triples(rng)
    covs, vars_x, vars_y = (np.array(column) for column in zip(*triples, strict=True))
    decided = 0
    for count in COUNTS:
        for name in _contexts():
            batch = column_batch.correlations_within(covs, vars_x, vars_y, count)
            one = [columns.correlation_within(*triple, count) for triple in triples]
            assert [repr(v) for v in batch] == [repr(v) for v in one], (name, count)
            decided += sum(value is not None for value in one)
    assert decided > len(triples)


def test_alike_when_ends_straddle_a_tie_then_not_alike() -> None:
    """Ends a few ulps either side of a tie, or at one, or ±0, or not finite: not
    alike (both are rounded); ends well inside one cell: alike."""
    tie = 0.5000005
    lows = np.array([tie - 4 * math.ulp(tie), tie, -0.0, 0.0, math.inf, 1.2345671])
    highs = np.array([tie + 4 * math.ulp(tie), tie, 0.0, 1e-300, math.inf, 1.2345672])
    assert column_batch._alike(lows, highs, 6).tolist() == [False] * 5 + [True]


def test_batch_when_alike_claims_every_pair_then_the_comparison_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shortcut that took every second end to round as the first (a broken _alike)
    is caught by the same comparison: at the ties the batch then gives a value where
    the one-by-one decision gives none."""
    monkeypatch.setattr(
        column_batch, "_alike", lambda lows, highs, places: np.ones(len(lows), dtype=bool)
    )
    rng = Random(239)
    squares = _squares(rng, 239)
    batch = column_batch.volatilities_within(
        np.array(squares), 239, 60, np.full(len(squares), YEAR_S)
    )
    one = [columns.volatility_within(s, 239, 60, YEAR_S) for s in squares]
    assert [repr(v) for v in batch] != [repr(v) for v in one]


def test_volatilities_within_when_python_would_raise_then_as_the_one_window_function() -> None:
    """Where the one-window steps raise (÷ 0 when interval_s is 0: an ArithmeticError,
    so None; √ of a negative year: ValueError), the batch does the same."""
    squares = np.array([1e-4, 0.0, 2e-4])
    assert column_batch.volatilities_within(squares, 29, 0, np.full(3, YEAR_S)) == [None] * 3
    assert [columns.volatility_within(s, 29, 0, YEAR_S) for s in squares.tolist()] == [None] * 3
    with pytest.raises(ValueError, match="math domain"):
        columns.volatility_within(1e-4, 29, 60, -YEAR_S)
    with pytest.raises(ValueError, match="math domain"):
        column_batch.volatilities_within(squares, 29, 60, np.array([YEAR_S, YEAR_S, -YEAR_S]))
