"""BarMemo: exact raw keys, the last answer's Bars handed back, failed parses never kept,
and a bounded number of series (least recently used go first)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.adapters.bar_memo import BarMemo, raw_key
from bastion.adapters.payload import to_decimal
from bastion.engine.errors import DataError
from bastion.engine.indicators.quality import Bar

START = datetime(2024, 1, 2, tzinfo=UTC)


def parsed(row: tuple[int, str]) -> Bar:
    """A stand-in for a venue's parse: minute and close text."""
    price = Decimal(row[1])
    return Bar(START + timedelta(minutes=row[0]), price, price, price, price, Decimal(1))


def answer(memo: BarMemo, series: object, rows: list[tuple[int, str]]) -> list[Bar]:
    parse = memo.begin(series)
    bars = [parse.bar(raw_key(row), parsed, row) for row in rows]
    memo.end(series, parse)
    return bars


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ([1], [1.0]),  # Decimal('1') and Decimal('1.0')
        (["2024-01-02T14:20:00Z", 185], ["2024-01-02T14:20:00Z", 185.0]),
        ([1], [True]),  # True == 1
        ([0.0, 1.5], [-0.0, 1.5]),  # Decimal('0.0') and Decimal('-0.0')
        ([Decimal("1.0")], [Decimal("1")]),
        (["1"], [1]),
    ],
)
def test_raw_key_when_values_equal_but_parse_differently_then_keys_differ(
    one: list[object], other: list[object]
) -> None:
    """Rows that compare equal in Python but read as other Decimals never share a key."""
    assert raw_key(one) != raw_key(other)
    assert raw_key(one) == raw_key(list(one))


# Values a decoded answer may hold, including the pairs Python calls equal.
POOL: list[object] = [
    0, 1, 1.0, 0.0, -0.0, True, False, "1", "1.0", " 1", 2.5, "2.5", "2.50",
    Decimal("1"), Decimal("1.0"), Decimal("-0"), None, [1], 10**20, 1e20,
]  # fmt: skip


def reads(row: list[object]) -> list[str]:
    """What a venue parse makes of each value: the Decimal's text, or that it refused."""
    out = []
    for value in row:
        try:
            out.append(str(to_decimal(value, "test", "value")))
        except DataError:
            out.append("refused")
    return out


def test_raw_key_when_keys_are_equal_then_every_value_reads_the_same() -> None:
    """Exhaustively over rows of two values from POOL: equal keys, identical Decimals."""
    rows = [[first, second] for first in POOL for second in POOL]
    by_key: dict[object, list[str]] = {}
    for row in rows:
        assert by_key.setdefault(raw_key(row), reads(row)) == reads(row), row
    assert len(by_key) == len(rows)  # and no two rows of the pool share a key at all


def test_raw_key_when_a_value_is_unhashable_then_the_key_still_hashes() -> None:
    """A list or dict in a row (a field no parse reads, say) does not break the memo."""
    assert hash(raw_key([[1, 2], {"a": 1}])) == hash(raw_key([[1, 2], {"a": 1}]))


def test_begin_when_rows_come_back_then_same_bars_and_only_the_last_answer_kept() -> None:
    """Unchanged rows give the same objects; rows the last answer lacked are dropped."""
    memo = BarMemo()
    first = answer(memo, "BTC", [(0, "1"), (1, "2"), (2, "3")])
    second = answer(memo, "BTC", [(1, "2"), (2, "3.5"), (3, "4")])
    assert second[0] is first[1]
    assert second[1] is not first[2] and second[1].close == Decimal("3.5")
    assert memo.held() == 3
    third = answer(memo, "BTC", [(0, "1")])  # dropped last answer: parsed anew
    assert third[0] is not first[0] and third[0] == first[0]


def test_begin_when_a_row_repeats_in_one_answer_then_each_copy_is_its_own_object() -> None:
    """Two rows alike in one answer are two equal Bars, as a parse without memo makes."""
    memo = BarMemo()
    first = answer(memo, "BTC", [(0, "1"), (0, "1")])
    second = answer(memo, "BTC", [(0, "1"), (0, "1")])
    assert first[0] == first[1] and first[0] is not first[1]
    assert second[0] is first[0] and second[1] is not first[1]


def test_begin_when_a_parse_fails_then_nothing_of_that_answer_is_kept() -> None:
    """An answer that raises halfway leaves the memo as the last whole answer made it."""
    memo = BarMemo()
    first = answer(memo, "BTC", [(0, "1")])
    with pytest.raises(ArithmeticError):
        answer(memo, "BTC", [(0, "1"), (1, "not a number")])
    assert answer(memo, "BTC", [(0, "1")])[0] is first[0]


def test_end_when_more_series_than_the_bound_then_least_recently_used_go() -> None:
    """Thousands of symbols keep at most max_series series; the one in use stays."""
    memo = BarMemo(max_series=8)
    kept = answer(memo, "BTC", [(0, "1")])
    for index in range(1000):
        answer(memo, f"SYM{index}", [(0, "1"), (1, "2")])
        if index % 4 == 0:
            assert answer(memo, "BTC", [(0, "1")])[0] is kept[0]
    assert len(memo) == 8 and memo.held() <= 8 * 2


def test_init_when_bound_not_positive_then_value_error() -> None:
    """A memo must hold at least one series."""
    with pytest.raises(ValueError, match="max_series"):
        BarMemo(max_series=0)
