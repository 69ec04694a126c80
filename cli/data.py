"""`bastion data check`: read a bar CSV, assess it, report. The checks live in the engine."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bastion.adapters.bars_csv import BarFile, read_bars_csv
from bastion.engine.indicators.quality import (
    Calendar,
    QualityConfig,
    QualityReport,
    assess_bars,
    format_duration,
    format_timestamp,
    parse_interval,
)

EXIT_USABLE, EXIT_UNUSABLE = 0, 1

HELP = """Market-data tools.

  bastion data check FILE.csv   score the quality of an OHLCV bar file
"""

CHECK_HELP = """Score the quality of an OHLCV CSV file (same formats as `bastion atr`).

Checks every bar (high >= max(open, close), low <= min(open, close), prices > 0,
volume >= 0), the timestamps (unique, increasing, gaps against --interval), outliers
(robust z-score of returns and of high-low ranges beyond --outlier-z) and, with --now,
whether the last bar is stale. Prints the issues with their file line, a score in
[0, 1] (validity x completeness x cleanliness), a confidence in [0, 1] (how much of the
assessment rests on evidence) and a verdict.

The interval and the calendar are inferred from the data unless given: `weekdays`
(Saturday and Sunday are not trading days; intraday gaps count within a day only) or
`24x7`. Exchange holidays are not modelled: each shows as a one-bar gap warning.

Exit codes: 0 usable; 1 unusable (an error-level issue, stale data, or a score below
--min-score); 2 unreadable file (its line is named) or bad arguments.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser(
        "check",
        help="score the quality of an OHLCV CSV file",
        description=CHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("file", metavar="FILE.csv", help="OHLCV bars, oldest first")
    check.add_argument(
        "--interval", type=_interval, help="bar interval: 1m, 15m, 1h, 1d, 1w (default: inferred)"
    )
    check.add_argument(
        "--calendar", choices=[c.value for c in Calendar], help="default: inferred from the bars"
    )
    check.add_argument(
        "--now", type=_now, help="ISO time (or 'now') to judge staleness against; off by default"
    )
    check.add_argument("--stale-after", type=_interval, help="default: one bar interval")
    defaults = QualityConfig()
    check.add_argument(
        "--min-score",
        type=_ratio,
        default=defaults.min_score_ratio,
        help=f"lowest usable score, 0..1 (default {defaults.min_score_ratio})",
    )
    check.add_argument(
        "--outlier-z",
        type=_positive_float,
        default=defaults.outlier_z,
        help=f"robust z beyond which a move is an outlier (default {defaults.outlier_z:g})",
    )
    check.add_argument("--format", choices=["text", "json"], default="text")


def run(args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {"check": _check}
    return handlers[args.data_command](args)


def _check(args: argparse.Namespace) -> int:
    bar_file = read_bars_csv(args.file)
    config = QualityConfig(
        outlier_z=args.outlier_z, min_score_ratio=args.min_score, stale_after_s=args.stale_after
    )
    report = assess_bars(
        bar_file.bars,
        interval_s=args.interval,
        calendar=Calendar(args.calendar) if args.calendar else None,
        now=args.now,
        config=config,
    )
    if args.format == "json":
        json.dump(_document(bar_file, report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(_text(bar_file, report))
    return EXIT_USABLE if report.usable else EXIT_UNUSABLE


def _document(bar_file: BarFile, report: QualityReport) -> dict[str, Any]:
    document = {"file": bar_file.source, **report.to_dict()}
    for issue, entry in zip(report.issues, document["issues"], strict=True):
        entry["line"] = bar_file.line_of(issue.row) or None
    bars = bar_file.bars
    document["first_timestamp"] = bars[0].timestamp.isoformat() if bars else None
    document["last_timestamp"] = bars[-1].timestamp.isoformat() if bars else None
    return document


def _text(bar_file: BarFile, report: QualityReport) -> str:
    bars = bar_file.bars
    if report.interval_s is None:
        interval = "interval unknown"
    else:
        inferred = " (inferred)" if report.interval_inferred else ""
        interval = f"every {format_duration(report.interval_s)}{inferred}"
    lines = [
        f"{bar_file.source}: {report.bars} bars, {format_timestamp(bars[0].timestamp)} .. "
        f"{format_timestamp(bars[-1].timestamp)}, {interval}, calendar {report.calendar.value}"
        f"{' (inferred)' if report.calendar_inferred else ''}",
        f"verdict: {'usable' if report.usable else 'UNUSABLE'}  score {report.score_ratio}  "
        f"confidence {report.confidence_ratio}  missing bars {report.missing_bars}  "
        f"stale {_stale_text(report)}",
    ]
    for issue in report.issues:
        line = bar_file.line_of(issue.row)
        where = f"line {line}" if line else "file"
        lines.append(f"  {where:<10} {issue.severity.value:<8} {issue.code:<19} {issue.message}")
    if not report.issues:
        lines.append("  no issues")
    lines.extend(f"skipped: {reason}" for reason in report.skipped)
    return "\n".join(lines) + "\n"


def _stale_text(report: QualityReport) -> str:
    if report.stale is None:
        return "not checked (pass --now)"
    age = format_duration(report.age_s or 0.0)
    return f"yes (last bar closed {age} ago)" if report.stale else f"no ({age} old)"


def _interval(text: str) -> int:
    try:
        return parse_interval(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _now(text: str) -> datetime:
    if text.strip().lower() == "now":
        return datetime.now(UTC)  # the CLI may read the clock; the engine never does
    try:
        stamp = datetime.fromisoformat(text.strip().replace(" UTC", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--now {text!r} is not an ISO 8601 time such as 2024-03-28T21:00:00Z, or 'now'"
        ) from None
    return stamp if stamp.utcoffset() is not None else stamp.replace(tzinfo=UTC)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _ratio(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not Decimal(0) <= value <= Decimal(1):
        raise argparse.ArgumentTypeError(f"expected a ratio between 0 and 1, got {text!r}")
    return value
