"""What the snapshot builder remembers between polls: small, frozen, serialisable.

- per account, when the venue does not report them: the trading day, the equity at its
  first poll (the day-start equity) and the highest equity seen (the peak);
- per (account, strategy): the current run of losing fills (consecutive losses), and
  which fills have been counted (a watermark time plus the ids stamped exactly at it),
  so a fill fetched by two overlapping polls is counted once;
- per position without an ``entered_at`` from the venue: when it was first seen;
- when the last build was (``polled_until``), so the next poll fetches every fill since.

``to_dict`` gives JSON-ready data with a ``version`` field; ``from_dict`` refuses another
version or a malformed document with a :class:`DataError` that says to start afresh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bastion.adapters.venue import Fill
from bastion.engine.errors import DataError
from bastion.engine.snapshot.typed_batch import FirstSeen

BUILDER_STATE_VERSION = 1

StrategyKey = tuple[str, str]  # (account id, strategy id)


@dataclass(frozen=True, slots=True)
class EquityMarks:
    """The builder's own day-start and peak equity of one account."""

    day: date
    day_start_equity_usd: Decimal
    peak_equity_usd: Decimal

    def update(self, equity_usd: Decimal, day: date) -> EquityMarks:
        """A new trading day starts from the equity first seen on it; the peak only rises."""
        start = equity_usd if day != self.day else self.day_start_equity_usd
        return EquityMarks(day, start, max(self.peak_equity_usd, equity_usd))


@dataclass(frozen=True, slots=True)
class BuilderState:
    version: int = BUILDER_STATE_VERSION
    equity: Mapping[str, EquityMarks] = field(default_factory=dict)
    losing_streaks: Mapping[StrategyKey, int] = field(default_factory=dict)
    fills_seen_until: datetime | None = None
    fill_ids_at_watermark: frozenset[str] = frozenset()
    first_seen: Mapping[str, datetime] = field(default_factory=dict)
    polled_until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "equity": {
                account: {
                    "day": marks.day.isoformat(),
                    "day_start_equity_usd": str(marks.day_start_equity_usd),
                    "peak_equity_usd": str(marks.peak_equity_usd),
                }
                for account, marks in sorted(self.equity.items())
            },
            "losing_streaks": [
                {"account_id": account, "strategy_id": strategy, "consecutive_losses": count}
                for (account, strategy), count in sorted(self.losing_streaks.items())
            ],
            "fills_seen_until": _time_text(self.fills_seen_until),
            "fill_ids_at_watermark": sorted(self.fill_ids_at_watermark),
            "first_seen": _first_seen_texts(self.first_seen),
            "polled_until": _time_text(self.polled_until),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuilderState:
        version = data.get("version") if isinstance(data, Mapping) else None
        if version != BUILDER_STATE_VERSION:
            raise DataError(
                f"builder state version {version!r} is not supported (this Bastion reads "
                f"version {BUILDER_STATE_VERSION}); delete the state file to start afresh"
            )
        try:
            equity = {
                account: EquityMarks(
                    date.fromisoformat(marks["day"]),
                    Decimal(marks["day_start_equity_usd"]),
                    Decimal(marks["peak_equity_usd"]),
                )
                for account, marks in data["equity"].items()
            }
            streaks = {
                (item["account_id"], item["strategy_id"]): int(item["consecutive_losses"])
                for item in data["losing_streaks"]
            }
            seen_until, polled_until = data["fills_seen_until"], data["polled_until"]
            return cls(
                equity=equity,
                losing_streaks=streaks,
                fills_seen_until=None if seen_until is None else _parse_time(seen_until),
                fill_ids_at_watermark=frozenset(data["fill_ids_at_watermark"]),
                first_seen={key: _parse_time(at) for key, at in data["first_seen"].items()},
                polled_until=None if polled_until is None else _parse_time(polled_until),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as error:
            raise DataError(
                f"builder state is malformed ({type(error).__name__}: {error}); delete the "
                "state file to start afresh"
            ) from None


def count_losses(
    state: BuilderState, fills: Sequence[Fill]
) -> tuple[dict[StrategyKey, int], datetime | None, frozenset[str]]:
    """Update the losing streaks with the fills not counted yet.

    A fill with realised P&L below zero extends its strategy's streak; any other fill
    that carries realised P&L (a win or break-even) ends it; fills without realised P&L
    (openings) do not touch it. A fill stamped before the watermark arrives too late to
    be counted (the venue reported it out of order) and is skipped.
    """
    streaks = dict(state.losing_streaks)
    watermark, at_watermark = state.fills_seen_until, set(state.fill_ids_at_watermark)
    for fill in sorted(fills, key=lambda f: (f.filled_at, f.id)):
        if watermark is not None and (
            fill.filled_at < watermark or (fill.filled_at == watermark and fill.id in at_watermark)
        ):
            continue
        if watermark is None or fill.filled_at > watermark:
            watermark, at_watermark = fill.filled_at, set()
        at_watermark.add(fill.id)
        if fill.realized_pnl_usd is None:
            continue
        key = (fill.account_id, fill.strategy_id)
        streaks[key] = streaks.get(key, 0) + 1 if fill.realized_pnl_usd < 0 else 0
    return {k: v for k, v in streaks.items() if v}, watermark, frozenset(at_watermark)


def _time_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _first_seen_texts(first_seen: Mapping[str, datetime]) -> dict[str, str | None]:
    """The saved form of the first-seen times: {id: ISO time}, sorted by id. The --state
    file is written after every cycle, and a steady book's batch hands on the very same
    lists poll after poll (typed_batch.FirstSeen, never changed once made): their texts
    are made once (~11 ms at 10,000 positions), then copied."""
    if not isinstance(first_seen, FirstSeen):
        return {key: _time_text(at) for key, at in sorted(first_seen.items())}
    held = _TEXTS[0]
    if held is None or held[0] is not first_seen.ids or held[1] is not first_seen.times:
        texts = {key: _time_text(at) for key, at in sorted(first_seen.items())}
        held = _TEXTS[0] = (first_seen.ids, first_seen.times, texts)
    return dict(held[2])


# The last FirstSeen's lists (kept, so that their ids are not reused) and their texts.
_TEXTS: list[tuple[list[str], list[datetime], dict[str, str | None]] | None] = [None]


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.utcoffset() is None:
        raise ValueError(f"time {text!r} has no timezone")
    return moment
