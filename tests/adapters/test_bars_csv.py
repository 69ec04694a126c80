"""Reading OHLCV CSV files: layouts seen in the wild, time formats, and errors with lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from bastion.adapters.bars_csv import parse_bars_csv, read_bars_csv
from bastion.engine.errors import DataError
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "bars"
HEADER = "Date,Open,High,Low,Close,Volume\n"


def one_bar(stamp: str) -> datetime:
    return parse_bars_csv(f"{HEADER}{stamp},1,2,0.5,1.5,10\n").bars[0].timestamp


def test_read_bars_csv_when_yahoo_layout_then_exact_decimals_and_lines() -> None:
    """Prices keep their written digits; each bar knows its file line."""
    bar_file = read_bars_csv(FIXTURES / "yahoo_daily.csv")
    first = bar_file.bars[0]
    assert first.timestamp == datetime(2024, 1, 2, tzinfo=UTC)
    assert (first.open, first.high, first.low, first.close) == tuple(
        Decimal(x) for x in ("471.25", "473.28", "470.09", "472.08")
    )
    assert first.volume == Decimal(65613653)
    assert bar_file.lines[:3] == (2, 3, 4) and len(bar_file.bars) == 20


def test_read_bars_csv_when_adjusted_then_ohlc_scaled_by_adj_close_over_close() -> None:
    """Adjusted bars keep their shape: every price scales by the same factor."""
    raw = read_bars_csv(FIXTURES / "yahoo_daily.csv").bars[0]
    adjusted = read_bars_csv(FIXTURES / "yahoo_daily.csv", adjusted=True).bars[0]
    factor = Decimal("470.531385") / Decimal("472.08")
    assert adjusted.close == Decimal("470.531385")
    assert abs(adjusted.high - raw.high * factor) < Decimal("1e-20")


def test_read_bars_csv_when_nasdaq_export_then_dollars_us_dates_and_close_last() -> None:
    """$-prefixed prices, MM/DD/YYYY and a Close/Last column; order is left as written."""
    bars = read_bars_csv(FIXTURES / "nasdaq_newest_first.csv").bars
    assert bars[0].timestamp == datetime(2024, 1, 9, tzinfo=UTC)
    assert bars[0].close == Decimal("185.14") and bars[1].open == Decimal("182.085")


def test_read_bars_csv_when_binance_millisecond_epochs_then_utc_hours() -> None:
    """open_time in epoch milliseconds becomes an aware UTC datetime."""
    bars = read_bars_csv(FIXTURES / "binance_klines_ms.csv").bars
    assert bars[0].timestamp == datetime(2024, 1, 1, tzinfo=UTC)
    assert bars[1].timestamp - bars[0].timestamp == timedelta(hours=1)


def test_read_bars_csv_when_semicolons_and_lower_case_then_read() -> None:
    """The delimiter is taken from the header; names match in any case."""
    bars = read_bars_csv(FIXTURES / "semicolon_lowercase.csv").bars
    assert len(bars) == 3 and bars[2].close == Decimal("100.05")


def test_read_bars_csv_when_metatrader_date_and_time_columns_then_joined() -> None:
    """<DATE>,<TIME> columns with dotted dates are combined into one timestamp."""
    bars = read_bars_csv(FIXTURES / "metatrader_date_time.csv").bars
    assert bars[1].timestamp == datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
    assert bars[0].volume is None  # tick volume is not traded volume


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-05", datetime(2024, 1, 5, tzinfo=UTC)),
        ("2024-01-05T14:30:00Z", datetime(2024, 1, 5, 14, 30, tzinfo=UTC)),
        ("2024-01-05 14:30:00.250", datetime(2024, 1, 5, 14, 30, 0, 250_000, tzinfo=UTC)),
        (
            "2024-01-05T09:30:00-05:00",
            datetime(2024, 1, 5, 9, 30, tzinfo=timezone(timedelta(hours=-5))),
        ),
        ("2024-01-05 14:30:00 UTC", datetime(2024, 1, 5, 14, 30, tzinfo=UTC)),
        ("2024/1/5", datetime(2024, 1, 5, tzinfo=UTC)),
        ("20240105", datetime(2024, 1, 5, tzinfo=UTC)),
        ("01/05/2024", datetime(2024, 1, 5, tzinfo=UTC)),
        ("1/5/2024 4:00:00 PM", datetime(2024, 1, 5, 16, 0, tzinfo=UTC)),
        ("1/5/2024 12:15 AM", datetime(2024, 1, 5, 0, 15, tzinfo=UTC)),
        ("1704412800", datetime(2024, 1, 5, tzinfo=UTC)),
        ("1704412800000", datetime(2024, 1, 5, tzinfo=UTC)),
        ("1704412800000000", datetime(2024, 1, 5, tzinfo=UTC)),
        ("1704412800000000000", datetime(2024, 1, 5, tzinfo=UTC)),
        ("1704412800.5", datetime(2024, 1, 5, 0, 0, 0, 500_000, tzinfo=UTC)),
    ],
)
def test_parse_bars_csv_when_common_time_format_then_parsed(text: str, expected: datetime) -> None:
    """ISO 8601, YYYY/M/D, YYYYMMDD, US dates with AM/PM, epoch s/ms/µs/ns."""
    parsed = one_bar(text)
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


def test_parse_bars_csv_when_assume_tz_given_then_naive_times_take_it() -> None:
    """A naive time is UTC unless the caller says otherwise."""
    tokyo = timezone(timedelta(hours=9))
    bars = parse_bars_csv(f"{HEADER}2024-01-05,1,2,0.5,1.5,10\n", assume_tz=tokyo).bars
    assert bars[0].timestamp.utcoffset() == timedelta(hours=9)


def test_parse_bars_csv_when_bom_comments_and_quoted_thousands_then_read() -> None:
    """A BOM, leading # comments, blank lines and "1,234.50" are all fine."""
    text = (
        "\ufeff# exported 2024-01-06\n\nDate,Open,High,Low,Close,Volume\n"
        '2024-01-05,"1,234.50",1240,1230,1235,"1,000"\n'
    )
    bar_file = parse_bars_csv(text)
    assert bar_file.bars[0].open == Decimal("1234.50") and bar_file.bars[0].volume == 1000
    assert bar_file.lines == (4,)


def test_parse_bars_csv_when_no_volume_column_then_volume_none() -> None:
    """Volume is optional (FX and index data often have none)."""
    bars = parse_bars_csv("Timestamp,Open,High,Low,Close\n2024-01-05,1,2,0.5,1.5\n").bars
    assert bars[0].volume is None


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 0, "no rows"),
        ("Date,Open,High,Low\n2024-01-05,1,2,0.5\n", 1, "missing column(s) Close"),
        ("Date,Open,High,Low,Close\n", 1, "no bar follows"),
        ("1704412800000,1,2,0.5,1.5\n", 1, "no header row"),
        (
            f"{HEADER}2024-01-05,1,2,0.5,1.5,10\n2024-01-06,1,2,0.5\n",
            3,
            "4 fields, but the header has 6",
        ),
        (
            f"{HEADER}2024-01-05,1,2,0.5,1.5,10\n2024-01-06,1,abc,0.5,1.5,10\n",
            3,
            "high 'abc' is not a number",
        ),
        (f"{HEADER}2024-01-05,1,2,0.5,null,10\n", 2, "close is missing ('null')"),
        (f"{HEADER}2024-01-05,1,2,0.5,NaN,10\n", 2, "close is missing ('NaN')"),
        (f"{HEADER}2024-01-05,1,2,0.5,inf,10\n", 2, "close 'inf' is not a number"),
        (f"{HEADER}2024-13-05,1,2,0.5,1.5,10\n", 2, "not a date this reader knows"),
        (f"{HEADER}25/01/2024,1,2,0.5,1.5,10\n", 2, "not a date this reader knows"),
        (f"{HEADER}yesterday,1,2,0.5,1.5,10\n", 2, "use ISO 8601"),
        ("Date;Open;High;Low;Close\n2024-01-05;1,5;2;1;1,8\n", 2, "decimal comma"),
    ],
    ids=[
        "empty",
        "no-close-column",
        "header-only",
        "no-header",
        "short-row",
        "word-for-number",
        "null",
        "nan",
        "infinite",
        "month-13",
        "day-first",
        "prose-date",
        "decimal-comma",
    ],
)
def test_parse_bars_csv_when_bad_input_then_data_error_names_line_and_fix(
    text: str, line: int, message: str
) -> None:
    """Every error names the source, the line (when there is one) and the problem."""
    with pytest.raises(DataError) as caught:
        parse_bars_csv(text, source="bars.csv")
    error = caught.value
    assert error.file == "bars.csv" and error.line == line
    assert message in error.message
    assert str(error).startswith(f"bars.csv:{line}: " if line else "bars.csv: ")


def test_parse_bars_csv_when_adjusted_without_adj_close_then_error_says_drop_option() -> None:
    """Asking for adjusted prices needs the column."""
    with pytest.raises(DataError, match="Adj Close"):
        parse_bars_csv(f"{HEADER}2024-01-05,1,2,0.5,1.5,10\n", adjusted=True)


def test_read_bars_csv_when_file_missing_then_data_error_names_path() -> None:
    """A wrong path is a DataError with the path, not a traceback."""
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        read_bars_csv("nope.csv")


def test_read_bars_csv_when_not_utf8_then_error_names_the_line(tmp_path: Path) -> None:
    """A Latin-1 byte on line 3 is reported on line 3."""
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + b"2024-01-05,1,2,0.5,1.5,10\n2024-01-06,1,2,0.5,1.5,\xe9\n")
    with pytest.raises(DataError) as caught:
        read_bars_csv(path)
    assert caught.value.line == 3 and "UTF-8" in caught.value.message


def test_bar_file_line_of_when_row_out_of_range_then_zero() -> None:
    """Series-level issues (row None) map to no line."""
    bar_file = read_bars_csv(FIXTURES / "semicolon_lowercase.csv")
    assert (bar_file.line_of(0), bar_file.line_of(None), bar_file.line_of(99)) == (2, 0, 0)
