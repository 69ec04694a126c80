"""ATR: hand-worked cases, TA-Lib equality, properties, incremental state."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.engine.errors import DataError
from bastion.engine.indicators.atr import (
    AtrMethod,
    AtrSeed,
    AtrSpec,
    AtrUpdater,
    FloatAtrUpdater,
    atr,
    atr_bars,
    atr_float,
    true_range,
)

# Six bars worked by hand. True ranges (previous close in brackets):
#   bar 1: max(12−9, |12−9|, |9−9|)           = 3    [9]
#   bar 2: max(11.5−10, |11.5−11|, |10−11|)   = 1.5  [11]
#   bar 3: max(14−10.5, |14−10.5|, 0)          = 3.5  [10.5]
#   bar 4: max(13−9, |13−13|, |9−13|)          = 4    [13]
#   bar 5: max(8−7, |8−9.5|, |7−9.5|)          = 2.5  [9.5]  (gap down: previous close counts)
# first_bar_range adds bar 0: 10 − 8 = 2.
HIGHS = [Decimal(x) for x in ("10", "12", "11.5", "14", "13", "8")]
LOWS = [Decimal(x) for x in ("8", "9", "10", "10.5", "9", "7")]
CLOSES = [Decimal(x) for x in ("9", "11", "10.5", "13", "9.5", "7.5")]
ULP = Fraction(1, 10**32)  # 34 significant digits on numbers of order 1


def assert_exact(values: list[Decimal | None], expected: list[Fraction | None]) -> None:
    assert len(values) == len(expected)
    for value, want in zip(values, expected, strict=True):
        if want is None:
            assert value is None
        else:
            assert value is not None and abs(Fraction(value) - want) < ULP, (value, want)


def test_true_range_when_hand_worked_bars_then_previous_close_counts() -> None:
    """TR uses the previous close on gaps; bar 0 has none unless first_bar_range."""
    ranges = [Decimal(x) for x in ("3", "1.5", "3.5", "4", "2.5")]
    assert true_range(HIGHS, LOWS, CLOSES) == [None, *ranges]
    assert true_range(HIGHS, LOWS, CLOSES, AtrSeed.FIRST_BAR_RANGE) == [Decimal(2), *ranges]


def test_atr_when_wilder_talib_seed_then_first_value_at_n_is_mean_of_tr_1_to_n() -> None:
    """(3 + 1.5 + 3.5)/3 = 8/3 at index 3, then (prev·2 + TR)/3."""
    values = atr(HIGHS, LOWS, CLOSES, AtrSpec(3))
    assert_exact(values, [None, None, None, Fraction(8, 3), Fraction(28, 9), Fraction(157, 54)])


def test_atr_when_first_bar_range_seed_then_first_value_at_n_minus_1() -> None:
    """(2 + 3 + 1.5)/3 = 13/6 at index 2: Wilder's 1978 convention."""
    values = atr(HIGHS, LOWS, CLOSES, AtrSpec(3, seed=AtrSeed.FIRST_BAR_RANGE))
    expected = [None, None, Fraction(13, 6), Fraction(47, 18), Fraction(83, 27), Fraction(467, 162)]
    assert_exact(values, expected)


def test_atr_when_sma_then_mean_of_last_n_true_ranges() -> None:
    """SMA windows: (3,1.5,3.5), (1.5,3.5,4), (3.5,4,2.5)."""
    values = atr(HIGHS, LOWS, CLOSES, AtrSpec(3, AtrMethod.SMA))
    assert_exact(values, [None, None, None, Fraction(8, 3), Fraction(3), Fraction(10, 3)])


def test_atr_when_ema_then_alpha_is_two_over_n_plus_one() -> None:
    """α = 1/2 for N = 3: 8/3, 8/3 + (4 − 8/3)/2 = 10/3, 10/3 + (2.5 − 10/3)/2 = 35/12."""
    values = atr(HIGHS, LOWS, CLOSES, AtrSpec(3, AtrMethod.EMA))
    assert_exact(values, [None, None, None, Fraction(8, 3), Fraction(10, 3), Fraction(35, 12)])


@pytest.mark.parametrize(
    ("bars", "defined"), [(3, 0), (4, 1)], ids=["exactly-N-bars", "N-plus-one-bars"]
)
def test_atr_when_bar_count_around_period_then_first_value_needs_n_plus_one(
    bars: int, defined: int
) -> None:
    """With the TA-Lib seed, N bars give nothing and N+1 bars give one value."""
    values = atr(HIGHS[:bars], LOWS[:bars], CLOSES[:bars], AtrSpec(3))
    assert sum(v is not None for v in values) == defined


def test_atr_when_period_one_then_equals_true_range() -> None:
    """N = 1 degenerates to the true range itself (as TA-Lib does)."""
    for method in AtrMethod:
        values = atr(HIGHS, LOWS, CLOSES, AtrSpec(1, method))
        assert values == true_range(HIGHS, LOWS, CLOSES)


def test_atr_when_caller_context_has_low_precision_then_result_is_unchanged() -> None:
    """The result does not depend on the caller's decimal context."""
    reference = atr(HIGHS, LOWS, CLOSES, AtrSpec(3))
    with localcontext() as context:
        context.prec = 5
        assert atr(HIGHS, LOWS, CLOSES, AtrSpec(3)) == reference


def test_atr_when_float_prices_then_type_error_points_to_float_path() -> None:
    """Floats never slip into the Decimal path."""
    with pytest.raises(TypeError, match="atr_float"):
        atr([1.0, 2.0], [0.5, 1.0], [0.8, 1.5])  # type: ignore[list-item]


def test_atr_when_nan_price_then_data_error_names_the_bar() -> None:
    """A NaN is unreadable data, named by bar index."""
    with pytest.raises(DataError, match="bar 2: low is NaN"):
        atr(HIGHS, [*LOWS[:2], Decimal("NaN"), *LOWS[3:]], CLOSES)


def test_atr_when_lengths_differ_then_value_error() -> None:
    """Mismatched columns are a programming error."""
    with pytest.raises(ValueError, match="same length"):
        atr(HIGHS, LOWS[:-1], CLOSES)


def test_atr_spec_when_strings_given_then_coerced_and_bad_ones_listed() -> None:
    """CLI/YAML strings become enums; an unknown one names the choices."""
    spec = AtrSpec(14, "ema", "first_bar_range")  # type: ignore[arg-type]
    assert spec.method is AtrMethod.EMA and spec.first_index == 13
    with pytest.raises(ValueError, match="wilder, sma, ema"):
        AtrSpec(14, "rma")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="≥ 1"):
        AtrSpec(0)


def test_atr_bars_when_bar_records_then_same_as_columns() -> None:
    """Anything with high/low/close attributes works."""

    class Row:
        def __init__(self, high: Decimal, low: Decimal, close: Decimal) -> None:
            self.high, self.low, self.close = high, low, close

    rows = [Row(*t) for t in zip(HIGHS, LOWS, CLOSES, strict=True)]
    assert atr_bars(rows, AtrSpec(3)) == atr(HIGHS, LOWS, CLOSES, AtrSpec(3))


def test_atr_float_when_nan_input_then_data_error() -> None:
    """The float path refuses non-finite input too."""
    with pytest.raises(DataError, match="bar 1: close is nan"):
        atr_float([2.0, 2.0, 2.0], [1.0, 1.0, 1.0], [1.5, float("nan"), 1.5], AtrSpec(1))


# -- TA-Lib -----------------------------------------------------------------------------


def random_walk(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, count)))
    high = close * (1 + rng.uniform(0, 0.03, count))
    low = close * (1 - rng.uniform(0, 0.03, count))
    return high, low, close


@pytest.mark.parametrize("period", [1, 2, 5, 14, 50])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_atr_float_when_random_series_then_equals_talib_atr(period: int, seed: int) -> None:
    """Wilder with the TA-Lib seed is TA-Lib's ATR: same NaN prefix, values to 1e-12."""
    talib = pytest.importorskip("talib")
    high, low, close = random_walk(2000, seed)
    reference = talib.ATR(high, low, close, timeperiod=period)
    ours = atr_float(high, low, close, AtrSpec(period))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
    np.testing.assert_allclose(ours, reference, rtol=1e-12, equal_nan=True)
    columns = ([Decimal(x) for x in column.tolist()] for column in (high, low, close))
    decimal = atr(*columns, AtrSpec(period))
    defined = [float(v) for v in decimal if v is not None]
    np.testing.assert_allclose(defined, reference[period:], rtol=1e-12)


@pytest.mark.parametrize(("method", "talib_name"), [("sma", "SMA"), ("ema", "EMA")])
def test_atr_float_when_sma_or_ema_then_equals_talib_average_of_trange(
    method: str, talib_name: str
) -> None:
    """SMA/EMA of TRANGE in TA-Lib use the same seed (mean of TR_1..TR_N)."""
    talib = pytest.importorskip("talib")
    high, low, close = random_walk(1000, 9)
    reference = getattr(talib, talib_name)(talib.TRANGE(high, low, close), timeperiod=14)
    ours = atr_float(high, low, close, AtrSpec(14, AtrMethod(method)))
    np.testing.assert_allclose(ours, reference, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("method", list(AtrMethod))
def test_atr_float_when_series_spans_many_scan_blocks_then_equals_updater(
    method: AtrMethod,
) -> None:
    """50,000 bars cross the vectorised scan's block boundaries without a seam."""
    high, low, close = random_walk(50_000, 11)
    spec = AtrSpec(14, method)
    updater = FloatAtrUpdater(spec)
    bars = zip(high.tolist(), low.tolist(), close.tolist(), strict=True)
    stepwise = np.array([np.nan if v is None else v for v in (updater.update(*b) for b in bars)])
    np.testing.assert_allclose(
        atr_float(high, low, close, spec), stepwise, rtol=1e-12, equal_nan=True
    )


def test_float_updater_when_sma_then_bit_identical_to_talib() -> None:
    """The float updater follows TA-Lib's running-sum order exactly."""
    talib = pytest.importorskip("talib")
    high, low, close = random_walk(1000, 4)
    reference = talib.SMA(talib.TRANGE(high, low, close), timeperiod=14)
    updater = FloatAtrUpdater(AtrSpec(14, AtrMethod.SMA))
    bars = zip(high.tolist(), low.tolist(), close.tolist(), strict=True)
    ours = [updater.update(*bar) for bar in bars]
    assert [np.nan if v is None else v for v in ours][14:] == reference[14:].tolist()


# -- properties -------------------------------------------------------------------------

specs = st.builds(
    AtrSpec,
    period=st.integers(1, 20),
    method=st.sampled_from(AtrMethod),
    seed=st.sampled_from(AtrSeed),
)


Columns = tuple[list[Decimal], list[Decimal], list[Decimal]]


@st.composite
def bar_columns(draw: st.DrawFn) -> Columns:
    """Valid bars: low ≤ open, close ≤ high, prices with 2 decimals."""
    count = draw(st.integers(1, 60))
    cents = draw(st.integers(100, 10_000_000))
    highs, lows, closes = [], [], []
    for _ in range(count):
        cents = max(1, cents + draw(st.integers(-cents // 10, cents // 10)))
        up, down = draw(st.integers(0, cents // 20)), draw(st.integers(0, (cents - 1) // 20))
        highs.append(Decimal(cents + up) / 100)
        lows.append(Decimal(cents - down) / 100)
        closes.append(Decimal(cents) / 100)
    return highs, lows, closes


@given(bar_columns(), specs)
def test_atr_when_any_valid_bars_then_never_negative(columns: Columns, spec: AtrSpec) -> None:
    """ATR ≥ 0 for every method and seed."""
    assert all(value >= 0 for value in atr(*columns, spec) if value is not None)


@given(bar_columns(), specs, st.sampled_from(["3", "0.001", "250", "7.5"]))
def test_atr_when_prices_scaled_then_atr_scales_by_the_same_factor(
    columns: Columns, spec: AtrSpec, factor: str
) -> None:
    """ATR is homogeneous of degree 1 in prices (to 1e-30 relative, compared exactly)."""
    k = Decimal(factor)
    base = atr(*columns, spec)
    scaled = atr(*([price * k for price in column] for column in columns), spec)
    for plain, times_k in zip(base, scaled, strict=True):
        assert (plain is None) == (times_k is None)
        if plain is not None and times_k is not None:
            want = Fraction(plain) * Fraction(k)
            assert abs(Fraction(times_k) - want) <= abs(want) * Fraction(1, 10**30)


@given(bar_columns(), specs, st.data())
def test_updater_when_fed_bar_by_bar_with_a_restart_then_equals_batch(
    columns: Columns, spec: AtrSpec, data: st.DataObject
) -> None:
    """Incremental == batch exactly, even across a JSON round trip of the state."""
    highs, lows, closes = columns
    restart_at = data.draw(st.integers(0, len(highs)))
    updater = AtrUpdater(spec)
    values: list[Decimal | None] = []
    for index, bar in enumerate(zip(highs, lows, closes, strict=True)):
        if index == restart_at:
            updater = AtrUpdater.from_dict(json.loads(json.dumps(updater.to_dict())))
        values.append(updater.update(*bar))
    assert values == atr(highs, lows, closes, spec)


@given(bar_columns(), specs, st.data())
def test_float_paths_when_any_bars_then_agree_with_decimal_within_1e_9(
    columns: Columns, spec: AtrSpec, data: st.DataObject
) -> None:
    """Vectorised floats, float updater (with a restart) and Decimal agree to 1e-9."""
    exact = atr(*columns, spec)
    floats = [[float(x) for x in column] for column in columns]
    vectorised = atr_float(*floats, spec)
    restart_at = data.draw(st.integers(0, len(floats[0])))
    updater = FloatAtrUpdater(spec)
    incremental: list[float | None] = []
    for index, bar in enumerate(zip(*floats, strict=True)):
        if index == restart_at:
            updater = FloatAtrUpdater.from_dict(json.loads(json.dumps(updater.to_dict())))
        incremental.append(updater.update(*bar))
    for want, fast, step in zip(exact, vectorised, incremental, strict=True):
        if want is None:
            assert np.isnan(fast) and step is None
        else:
            tolerance = 1e-9 * max(1.0, float(want))
            assert abs(fast - float(want)) <= tolerance and step is not None
            assert abs(step - float(want)) <= tolerance


@settings(max_examples=30)
@given(specs)
def test_updater_state_when_serialised_then_json_ready_with_version(spec: AtrSpec) -> None:
    """The state is plain JSON with a version field."""
    updater = AtrUpdater(spec)
    for bar in zip(HIGHS, LOWS, CLOSES, strict=True):
        updater.update(*bar)
    state = json.loads(json.dumps(updater.to_dict()))
    assert state["version"] == 1 and state["numeric"] == "decimal"
    assert AtrUpdater.from_dict(state).value == updater.value


# -- state errors -----------------------------------------------------------------------


def test_updater_from_dict_when_version_unknown_then_data_error_says_rebuild() -> None:
    """A future state version is refused with the fix."""
    state = AtrUpdater().to_dict() | {"version": 2}
    with pytest.raises(DataError, match=r"version 2 is not supported.*replaying"):
        AtrUpdater.from_dict(state)


def test_updater_from_dict_when_float_state_given_to_decimal_then_data_error() -> None:
    """Numeric kinds do not mix silently."""
    with pytest.raises(DataError, match="not a decimal ATR state"):
        AtrUpdater.from_dict(FloatAtrUpdater().to_dict())


def test_updater_from_dict_when_field_is_malformed_then_data_error() -> None:
    """A float where a decimal string belongs is refused."""
    updater = AtrUpdater(AtrSpec(3))
    for bar in zip(HIGHS, LOWS, CLOSES, strict=True):
        updater.update(*bar)
    state = updater.to_dict() | {"value": 2.5}
    with pytest.raises(DataError, match="malformed"):
        AtrUpdater.from_dict(state)


@pytest.mark.parametrize(
    "change",
    [{"bars_seen": 2}, {"value": None}, {"window": ["1", "2", "3"]}, {"prev_close": None}],
    ids=["bars-seen", "value-dropped", "window-too-long", "no-previous-close"],
)
def test_updater_from_dict_when_fields_contradict_then_data_error(
    change: dict[str, object],
) -> None:
    """A state that no sequence of bars could produce is refused, not trusted."""
    updater = AtrUpdater(AtrSpec(3, AtrMethod.SMA))
    for bar in zip(HIGHS, LOWS, CLOSES, strict=True):
        updater.update(*bar)
    with pytest.raises(DataError, match="inconsistent"):
        AtrUpdater.from_dict(updater.to_dict() | change)


@pytest.mark.parametrize("updater_class", [AtrUpdater, FloatAtrUpdater])
def test_updater_when_non_finite_price_then_data_error_and_state_unchanged(
    updater_class: type[AtrUpdater] | type[FloatAtrUpdater],
) -> None:
    """One NaN must not poison the running average."""
    updater = updater_class(AtrSpec(3))
    number = Decimal if updater_class is AtrUpdater else float
    for bar in zip(HIGHS, LOWS, CLOSES, strict=True):
        updater.update(*(number(x) for x in bar))  # type: ignore[arg-type]
    before = updater.to_dict()
    with pytest.raises(DataError, match="non-finite"):
        updater.update(number("nan"), number(1), number(1))  # type: ignore[arg-type]
    assert updater.to_dict() == before
