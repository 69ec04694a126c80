"""`bastion atr`: parse, read the CSV, compute, print. The maths lives in engine/indicators."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from itertools import pairwise

from bastion.adapters.bars_csv import BarFile, read_bars_csv
from bastion.engine.errors import DataError
from bastion.engine.indicators.atr import DECIMAL_CONTEXT, AtrMethod, AtrSeed, AtrSpec, atr_bars

HELP = """Average true range of an OHLCV CSV file, one value per input row.

Reads FILE.csv — columns Date (or Timestamp), Open, High, Low, Close and optionally
Volume / Adj Close, in any case; ISO 8601, MM/DD/YYYY, YYYYMMDD or unix-epoch times —
and prints the ATR aligned with the file's rows: an empty cell (csv) or null (json)
while the ATR is not yet defined.

  --method wilder   ATR_t = (ATR_t-1 * (N-1) + TR_t) / N   (default; TA-Lib's ATR)
  --method sma      mean of the last N true ranges
  --method ema      ATR_t = ATR_t-1 + 2/(N+1) * (TR_t - ATR_t-1), seeded like wilder
  --seed talib            row 0 has no true range (no previous close); the first value
                          is at row N: the mean of the true ranges of rows 1..N (default)
  --seed first_bar_range  Wilder 1978 / charting: TR_0 = high - low, first value at N-1

Values are exact decimals (34 significant digits), printed in plain notation; JSON
numbers are strings so nothing is lost through a float. --places rounds (half-even).
JSON: {"method": ..., "period": N, "seed": ..., "timestamps": [...], "atr": [...]}.

Exit codes: 0 ok; 2 unreadable file (its line is named) or rows out of time order.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.csv", help="OHLCV bars, oldest first")
    parser.add_argument("--period", type=_period, default=14, help="N, default 14")
    parser.add_argument(
        "--method",
        choices=[m.value for m in AtrMethod],
        default=AtrMethod.WILDER.value,
        help="smoothing (default wilder)",
    )
    parser.add_argument(
        "--seed",
        choices=[s.value for s in AtrSeed],
        default=AtrSeed.TALIB.value,
        help="where the first value sits (default talib)",
    )
    parser.add_argument("--format", choices=["csv", "json"], default="csv")
    parser.add_argument("--places", type=_places, help="round to this many decimal places")
    parser.add_argument(
        "--adjusted", action="store_true", help="scale OHLC by Adj Close / Close first"
    )


def run(args: argparse.Namespace) -> int:
    bar_file = read_bars_csv(args.file, adjusted=args.adjusted)
    _require_time_order(bar_file)
    spec = AtrSpec(args.period, AtrMethod(args.method), AtrSeed(args.seed))
    values = [_text(value, args.places) for value in atr_bars(bar_file.bars, spec)]
    stamps = [bar.timestamp.isoformat() for bar in bar_file.bars]
    if args.format == "json":
        document = {
            "method": spec.method.value,
            "period": spec.period,
            "seed": spec.seed.value,
            "timestamps": stamps,
            "atr": values,
        }
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["timestamp", "atr"])
        writer.writerows([stamp, value or ""] for stamp, value in zip(stamps, values, strict=True))
    return 0


def _require_time_order(bar_file: BarFile) -> None:
    bars, lines = bar_file.bars, bar_file.lines
    if len(bars) > 2 and all(b.timestamp < a.timestamp for a, b in pairwise(bars)):
        raise DataError(
            f"the rows run newest first (line {lines[0]} is {bars[0].timestamp.isoformat()}, "
            f"line {lines[-1]} is {bars[-1].timestamp.isoformat()}); reverse them so the "
            "oldest bar comes first",
            file=bar_file.source,
        )
    for row in range(1, len(bars)):
        if bars[row].timestamp <= bars[row - 1].timestamp:
            raise DataError(
                f"rows must be in increasing time order, oldest first: "
                f"{bars[row].timestamp.isoformat()} does not come after line "
                f"{lines[row - 1]} ({bars[row - 1].timestamp.isoformat()}); sort the "
                "file and drop duplicate rows (`bastion data check` lists them all)",
                file=bar_file.source,
                line=lines[row],
            )


def _text(value: Decimal | None, places: int | None) -> str | None:
    if value is None:
        return None
    if places is not None:
        with localcontext(DECIMAL_CONTEXT):
            value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return format(value, "f")


def _period(text: str) -> int:
    try:
        period = int(text)
    except ValueError:
        period = 0
    if period < 1:
        raise argparse.ArgumentTypeError(f"period must be a whole number ≥ 1, got {text!r}")
    return period


def _places(text: str) -> int:
    if not text.isdigit() or int(text) > 30:
        raise argparse.ArgumentTypeError(f"places must be a whole number 0..30, got {text!r}")
    return int(text)
