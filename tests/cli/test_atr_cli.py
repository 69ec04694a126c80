"""`bastion atr` from the command line: alignment, formats, seeds, exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from bastion.adapters.bars_csv import read_bars_csv
from bastion.engine.indicators.atr import AtrSpec, atr_bars
from tests.conftest import ROOT

Run = Callable[..., tuple[int, str, str]]
SPY = ROOT / "examples" / "bars" / "spy_daily.csv"
FIXTURES = ROOT / "tests" / "fixtures" / "bars"


def rows_of(out: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(out)))


def test_atr_when_csv_format_then_one_row_per_input_row_blank_until_n(run_cli: Run) -> None:
    """Rows align with the file; the first 14 are empty and row 14 is the first value."""
    code, out, _ = run_cli("atr", str(SPY))
    rows = rows_of(out)
    assert code == 0 and len(rows) == 60
    assert all(row["atr"] == "" for row in rows[:14]) and rows[14]["atr"] != ""
    expected = atr_bars(read_bars_csv(SPY).bars, AtrSpec(14))
    assert [Decimal(r["atr"]) if r["atr"] else None for r in rows] == expected


def test_atr_when_json_format_then_atr_list_with_nulls_and_decimal_strings(run_cli: Run) -> None:
    """JSON holds one entry per row: null, or an exact decimal string."""
    code, out, _ = run_cli("atr", str(SPY), "--format", "json", "--period", "5")
    document = json.loads(out)
    assert code == 0 and len(document["atr"]) == len(document["timestamps"]) == 60
    assert document["atr"][:5] == [None] * 5 and isinstance(document["atr"][5], str)
    assert (document["method"], document["period"], document["seed"]) == ("wilder", 5, "talib")
    Decimal(document["atr"][-1])  # parses exactly


def test_atr_when_first_bar_range_seed_then_first_value_one_row_earlier(run_cli: Run) -> None:
    """--seed first_bar_range starts at row N−1."""
    _, out, _ = run_cli("atr", str(SPY), "--seed", "first_bar_range", "--format", "json")
    values = json.loads(out)["atr"]
    assert values[12] is None and values[13] is not None


@pytest.mark.parametrize("method", ["sma", "ema"])
def test_atr_when_other_methods_then_same_alignment(run_cli: Run, method: str) -> None:
    """SMA and EMA start where Wilder does."""
    code, out, _ = run_cli("atr", str(SPY), "--method", method, "--format", "json")
    values = json.loads(out)["atr"]
    assert code == 0 and values[13] is None and values[14] is not None


def test_atr_when_places_given_then_rounded_half_even_in_plain_notation(run_cli: Run) -> None:
    """--places 2 gives cents."""
    _, out, _ = run_cli("atr", str(SPY), "--places", "2")
    value = rows_of(out)[-1]["atr"]
    assert len(value.split(".")[1]) == 2 and "E" not in value


def test_atr_when_spy_example_then_matches_talib(run_cli: Run) -> None:
    """End to end: the CLI's Wilder ATR is TA-Lib's ATR on the same file."""
    talib = pytest.importorskip("talib")
    bars = read_bars_csv(SPY).bars
    high, low, close = (
        np.array([float(getattr(b, f)) for b in bars]) for f in ("high", "low", "close")
    )
    reference = talib.ATR(high, low, close, timeperiod=14)
    _, out, _ = run_cli("atr", str(SPY), "--format", "json")
    ours = np.array([np.nan if v is None else float(v) for v in json.loads(out)["atr"]])
    np.testing.assert_allclose(ours, reference, rtol=1e-12, equal_nan=True)


def test_atr_when_number_unreadable_then_exit_2_naming_file_and_line(run_cli: Run) -> None:
    """A bad cell is exit 2 with file:line and the fix."""
    code, out, err = run_cli("atr", str(FIXTURES / "bad_number.csv"))
    assert code == 2 and out == ""
    assert "bad_number.csv:3: high 'abc' is not a number" in err


def test_atr_when_rows_out_of_order_then_exit_2_with_the_line(run_cli: Run) -> None:
    """Unsorted input would give a wrong ATR silently: refuse it, name the line."""
    code, _, err = run_cli("atr", str(FIXTURES / "out_of_order.csv"))
    assert code == 2 and "out_of_order.csv:4: rows must be in increasing time order" in err


def test_atr_when_file_is_newest_first_then_exit_2_saying_reverse(run_cli: Run) -> None:
    """A Nasdaq-style newest-first export gets one clear instruction."""
    code, _, err = run_cli("atr", str(FIXTURES / "nasdaq_newest_first.csv"))
    assert code == 2 and "rows run newest first" in err and "reverse them" in err


@pytest.mark.parametrize("args", [["--period", "0"], ["--method", "rma"], ["--places", "-1"]])
def test_atr_when_bad_option_then_usage_exit_2(run_cli: Run, args: list[str]) -> None:
    """argparse rejects bad options with exit 2."""
    code, _, err = run_cli("atr", str(SPY), *args)
    assert code == 2 and "usage:" in err


def test_atr_when_file_missing_then_exit_2(run_cli: Run, tmp_path: Path) -> None:
    """A missing file is unreadable input."""
    code, _, err = run_cli("atr", str(tmp_path / "none.csv"))
    assert code == 2 and "no such file" in err


def test_atr_when_run_as_console_script_then_exit_0_and_json(tmp_path: Path) -> None:
    """The installed `bastion` entry point works end to end."""
    script = Path(sys.executable).parent / "bastion"
    completed = subprocess.run(
        [str(script), "atr", str(SPY), "--format", "json", "--places", "4"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    values = json.loads(completed.stdout)["atr"]
    assert len(values) == 60 and values[-1] is not None
