"""Read OHLCV bars from a CSV file into :class:`~bastion.engine.indicators.quality.Bar` records.

What it accepts:

- A header row naming the columns in any case, with or without spaces, underscores or
  angle brackets: Date / Time / Timestamp / Datetime (or separate Date and Time columns),
  Open, High, Low, Close (or Last, Close/Last), Volume (optional), Adj Close (optional).
  Comma, semicolon, tab or pipe separated; a UTF-8 byte-order mark and leading ``#``
  comment lines are skipped.
- Times as ISO 8601 (``2024-01-05``, ``2024-01-05T14:30:00Z``, ``2024-01-05 14:30:00+01:00``),
  ``YYYY/MM/DD`` or ``YYYY.MM.DD``, ``YYYYMMDD``, US ``MM/DD/YYYY`` (optionally with a time
  and AM/PM), or
  unix epoch numbers (seconds, milliseconds, microseconds or nanoseconds, told apart by
  magnitude). Times without a zone are taken as UTC (``assume_tz`` changes that).
- Prices as plain decimals, optionally with a leading ``$`` or ``1,234.50`` thousands
  separators. They become ``Decimal`` exactly as written — never through a float.

Every problem raises :class:`~bastion.engine.errors.DataError` naming the file, the line
and the fix. The file is not sorted or repaired: ordering, gaps and bad bars are
:func:`~bastion.engine.indicators.quality.assess_bars`'s job.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Context, Decimal, InvalidOperation, localcontext
from pathlib import Path

from bastion.engine.errors import DataError
from bastion.engine.indicators.quality import Bar

_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "datetime", "date", "time", "ts", "t", "opentime", "unix"),
    "open": ("open", "o", "openprice"),
    "high": ("high", "h", "highprice"),
    "low": ("low", "l", "lowprice"),
    "close": ("close", "c", "last", "closelast", "closeprice"),
    "volume": ("volume", "vol", "v"),
    "adj_close": ("adjclose", "adjustedclose", "adjclosing"),
}
_MISSING = {"", "null", "none", "nan", "na", "n/a", "-", "#n/a"}
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
_NUMERIC_TIME = re.compile(r"^\d+(\.\d+)?$")
_TIME_OF_DAY = r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?\s*([AaPp][Mm])?)?"
_YEAR_FIRST = re.compile(r"^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})" + _TIME_OF_DAY + "$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})" + _TIME_OF_DAY + "$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FORMATS_HINT = (
    "use ISO 8601 (2024-01-05 or 2024-01-05T14:30:00Z), MM/DD/YYYY, YYYYMMDD or unix "
    "seconds / milliseconds"
)
_ADJUST_CONTEXT = Context(prec=28)


@dataclass(frozen=True, slots=True)
class _Columns:
    timestamp: tuple[int, ...]  # one column, or Date and Time to be joined
    fields: dict[str, int]  # open, high, low, close, and volume / adj_close when present


@dataclass(frozen=True, slots=True)
class BarFile:
    """The bars of one CSV file, with the line each bar came from."""

    source: str
    bars: tuple[Bar, ...]
    lines: tuple[int, ...]  # 1-based line number of each bar, for messages
    columns: tuple[str, ...]  # the header as written

    def line_of(self, row: int | None) -> int:
        """The file line of bar ``row`` (0 when there is none)."""
        if row is None or not 0 <= row < len(self.lines):
            return 0
        return self.lines[row]


def read_bars_csv(path: str | Path, *, adjusted: bool = False, assume_tz: tzinfo = UTC) -> BarFile:
    """Read ``path``; ``adjusted=True`` scales open/high/low/close by Adj Close / Close."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError("no such file; check the path", file=source) from None
    except OSError as error:
        raise DataError(f"cannot read the file ({error.strerror})", file=source) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(
            "the file is not UTF-8 text; export it again as UTF-8 CSV", file=source, line=line
        ) from None
    return parse_bars_csv(text, source=source, adjusted=adjusted, assume_tz=assume_tz)


def parse_bars_csv(
    text: str, *, source: str = "<string>", adjusted: bool = False, assume_tz: tzinfo = UTC
) -> BarFile:
    """Parse CSV text (see the module docstring); ``source`` names it in errors."""
    rows = _rows(text.removeprefix("\ufeff"), source)
    try:
        header_line, header = next(rows)
    except StopIteration:
        raise DataError(
            "the file has no rows; expected a header such as Date,Open,High,Low,Close,Volume",
            file=source,
        ) from None
    columns = _map_columns(header, source, header_line, adjusted)
    bars: list[Bar] = []
    lines: list[int] = []
    for line, row in rows:
        if len(row) != len(header):
            raise DataError(
                f"{len(row)} fields, but the header has {len(header)}; look for a missing "
                "value or an unquoted comma (a thousands separator?)",
                file=source,
                line=line,
            )
        bars.append(_bar(row, columns, adjusted, assume_tz, source, line))
        lines.append(line)
    if not bars:
        raise DataError("the header is there but no bar follows it", file=source, line=header_line)
    return BarFile(source, tuple(bars), tuple(lines), tuple(header))


def _rows(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of each non-blank row, skipping ``#`` comments before the header."""
    first = next((s for s in text.splitlines() if s.strip() and not s.startswith("#")), "")
    delimiter = max(",;\t|", key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    seen_header = False
    try:
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if not seen_header and fields[0].lstrip().startswith("#"):
                continue
            seen_header = True
            yield reader.line_num, [field.strip() for field in fields]
    except csv.Error as error:
        raise DataError(f"malformed CSV ({error})", file=source, line=reader.line_num) from None


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _map_columns(header: Sequence[str], source: str, line: int, adjusted: bool) -> _Columns:
    index_of: dict[str, int] = {}
    for position, name in enumerate(header):
        index_of.setdefault(_normalise(name), position)
    found: dict[str, int] = {}
    for field, aliases in _ALIASES.items():
        column = next((index_of[a] for a in aliases if a in index_of), None)
        if column is not None:
            found[field] = column
    missing = [f for f in ("timestamp", "open", "high", "low", "close") if f not in found]
    if missing:
        wanted = ", ".join(
            "Date (or Timestamp)" if f == "timestamp" else f.title() for f in missing
        )
        looks_like_data = (
            bool(header) and _NUMERIC_TIME.match(header[0].replace("-", "")) is not None
        )
        fix = (
            "the file has no header row: add one such as Date,Open,High,Low,Close,Volume"
            if looks_like_data
            else f"add or rename the column(s) (any case): {wanted}"
        )
        raise DataError(
            f"missing column(s) {wanted}; found {', '.join(header) or 'nothing'} — {fix}",
            file=source,
            line=line,
        )
    if adjusted and "adj_close" not in found:
        raise DataError(
            "adjusted prices need an 'Adj Close' column; drop the adjusted option or add it",
            file=source,
            line=line,
        )
    stamp = found.pop("timestamp")
    separate = "date" in index_of and "time" in index_of
    if separate and "timestamp" not in index_of and "datetime" not in index_of:
        return _Columns((index_of["date"], index_of["time"]), found)
    return _Columns((stamp,), found)


def _bar(
    row: list[str], columns: _Columns, adjusted: bool, assume_tz: tzinfo, source: str, line: int
) -> Bar:
    def number(field: str) -> Decimal:
        return _parse_number(row[columns.fields[field]], field.replace("_", " "), source, line)

    stamp_text = " ".join(row[position] for position in columns.timestamp)
    timestamp = _parse_time(stamp_text, assume_tz, source, line)
    prices = [number("open"), number("high"), number("low"), number("close")]
    volume = number("volume") if "volume" in columns.fields else None
    if adjusted:
        close = prices[3]
        if close == 0:
            message = "close is 0, so the Adj Close / Close factor is undefined; drop the row"
            raise DataError(message, file=source, line=line)
        with localcontext(_ADJUST_CONTEXT):
            factor = number("adj_close") / close
            prices = [price * factor for price in prices]
    return Bar(timestamp, prices[0], prices[1], prices[2], prices[3], volume)


def _parse_number(text: str, field: str, source: str, line: int) -> Decimal:
    cleaned = text.strip()
    if cleaned.lower() in _MISSING:
        raise DataError(
            f"{field} is missing ({text!r}); fill in the value or drop the row",
            file=source,
            line=line,
        )
    cleaned = cleaned.replace("$", "", 1) if cleaned.lstrip("+-").startswith("$") else cleaned
    if _THOUSANDS.match(cleaned):
        cleaned = cleaned.replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        hint = " (a decimal comma? write 101.25, not 101,25)" if "," in cleaned else ""
        raise DataError(
            f"{field} {text!r} is not a number; write a plain decimal such as 101.25{hint}",
            file=source,
            line=line,
        )
    return value


def _parse_time(text: str, assume_tz: tzinfo, source: str, line: int) -> datetime:
    cleaned = text.strip()
    for suffix in (" UTC", " GMT", " Z"):
        if cleaned.upper().endswith(suffix):
            cleaned, assume_tz = cleaned[: -len(suffix)].rstrip(), UTC
    try:
        stamp = _to_datetime(cleaned)
    except (ValueError, OverflowError):
        stamp = None
    if stamp is None:
        raise DataError(
            f"time {text!r} is not a date this reader knows; {_FORMATS_HINT}",
            file=source,
            line=line,
        )
    return stamp if stamp.utcoffset() is not None else stamp.replace(tzinfo=assume_tz)


def _to_datetime(text: str) -> datetime | None:
    if _NUMERIC_TIME.match(text):
        if len(text) == 8:  # YYYYMMDD; as epoch seconds it would be 1970-04 .. 1973-03
            return datetime(int(text[:4]), int(text[4:6]), int(text[6:]))
        return _from_epoch(Decimal(text))
    match = _YEAR_FIRST.match(text)
    if match:
        year, month, day = match.group(1, 3, 4)
        return _assemble(int(year), int(month), int(day), match.groups()[4:])
    match = _US_DATE.match(text)
    if match:
        month, day, year = match.group(1, 2, 3)
        if int(month) > 12:
            raise ValueError("day-first date")  # ambiguous: ask for ISO instead of guessing
        return _assemble(int(year), int(month), int(day), match.groups()[3:])
    return datetime.fromisoformat(text)


def _assemble(year: int, month: int, day: int, clock: Sequence[str | None]) -> datetime:
    hour_text, minute, second, fraction, meridiem = clock
    hour = int(hour_text or 0)
    if meridiem:
        if not 1 <= hour <= 12:
            raise ValueError("hour out of range for AM/PM")
        hour = hour % 12 + (12 if meridiem.lower() == "pm" else 0)
    micro = int((fraction or "0").ljust(6, "0"))
    return datetime(year, month, day, hour, int(minute or 0), int(second or 0), micro)


def _from_epoch(value: Decimal) -> datetime:
    # Tell the unit by magnitude: 1e9 s ≈ 2001; milliseconds from 1e11, µs 1e14, ns 1e17.
    per_second = 10**9
    for limit, unit in ((Decimal("1e11"), 1), (Decimal("1e14"), 10**3), (Decimal("1e17"), 10**6)):
        if value < limit:
            per_second = unit
            break
    microseconds = int(value * 1_000_000 / per_second)
    return _EPOCH + timedelta(microseconds=microseconds)
