"""The venue's order rules per instrument (tick, lot, min / max quantity and notional).

An adapter that can read them is an :class:`InstrumentRuleSource`: the builder asks it
once a poll for every symbol the snapshot may mention, and the rules land on the
snapshot's ``instruments`` (enforced by ``engine/authority/controls/instrument_*.py``).

Rules change rarely: :class:`RuleCache` reads a symbol at most once per ``refresh_s``
(an hour) on the injected clock (one never read successfully: again after ``retry_s``,
five minutes). A read that fails (transport, HTTP, an unlisted symbol)
never fails the poll: the last known rules stay, else the symbol has none, and a note
(``where``, ``value``, ``reason``) becomes one of the builder's fallbacks. A value that
is not a positive number (a non-numeric tick, a negative step) makes that one field None,
with a note; a zero is the venue's "no rule" and is None without a note.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Protocol, runtime_checkable

from bastion.adapters.sources.clock import Clock
from bastion.adapters.venue import VenuePosition
from bastion.engine.errors import AdapterError, DataError
from bastion.engine.snapshot.model import Instrument

RULE_NAMES = (
    "tick_size",
    "lot_size",
    "min_quantity",
    "max_quantity",
    "min_notional",
    "max_notional",
)
REFRESH_S = 3600.0
RETRY_S = 300.0  # a symbol never read successfully is asked again after this long
Rules = dict[str, Decimal]  # rule name → value; a name left out: no rule
Note = tuple[str, str, str]  # (where, value used, reason): one builder fallback


@dataclass(frozen=True, slots=True)
class InstrumentFetch:
    """What an :class:`InstrumentRuleSource` gave for one poll."""

    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    notes: tuple[Note, ...] = ()


@runtime_checkable
class InstrumentRuleSource(Protocol):
    """An adapter that reads its venue's order rules (cached: see :class:`RuleCache`)."""

    def fetch_instruments(
        self, positions: Sequence[VenuePosition], symbols: Sequence[str]
    ) -> InstrumentFetch:
        """Each symbol's instrument, with the venue's rules where it has them."""
        ...


@dataclass(frozen=True, slots=True)
class RuleRead:
    """One symbol's rules as read, and the fields the venue gave garbage for."""

    rules: Rules
    notes: tuple[Note, ...] = ()


@dataclass(slots=True)
class _Entry:
    read: RuleRead
    read_at: datetime


class RuleCache:
    """Per-symbol rules, read at most once per ``refresh_s`` of the injected clock; a
    symbol whose first read failed is asked again after ``retry_s``, not every poll."""

    def __init__(
        self, clock: Clock, refresh_s: float = REFRESH_S, retry_s: float = RETRY_S
    ) -> None:
        self._clock = clock
        self._refresh = timedelta(seconds=refresh_s)
        self._retry = timedelta(seconds=retry_s)
        self._entries: dict[str, _Entry] = {}
        self._failed: dict[str, tuple[datetime, Note]] = {}  # never read: when, and why

    def rules(
        self, symbol: str, read: Callable[[], RuleRead], where: str
    ) -> tuple[Rules, tuple[Note, ...]]:
        """``symbol``'s rules and notes; ``read`` runs only when they are due a refresh."""
        now = self._clock.now()
        entry = self._entries.get(symbol)
        if entry is not None and now - entry.read_at < self._refresh:
            return entry.read.rules, entry.read.notes
        failed = self._failed.get(symbol)
        if failed is not None and now - failed[0] < self._retry:  # not every poll
            return self._fallen_back(entry, failed[1])
        try:
            fresh = read()
        except (AdapterError, DataError) as error:  # never fails the poll
            if entry is None:
                note = (f"instruments[{symbol!r}]", "no venue rules", f"{where}: {error}")
            else:
                kept = f"rules read at {entry.read_at.isoformat()}"
                reason = f"{where}: {error}; kept the last known"
                note = (f"instruments[{symbol!r}]", kept, reason)
            self._failed[symbol] = (now, note)
            return self._fallen_back(entry, note)
        self._failed.pop(symbol, None)
        self._entries[symbol] = _Entry(fresh, now)
        return fresh.rules, fresh.notes

    def fill(
        self,
        found: Mapping[str, Instrument],
        read: Callable[[str], RuleRead],
        where: Callable[[str], str],
        *,
        asks: Callable[[Instrument], bool] = lambda _instrument: True,
        settled: Callable[[Instrument], Instrument] = lambda instrument: instrument,
    ) -> InstrumentFetch:
        """Every instrument of `found` that the venue `asks` about, with its rules (read
        by `read(symbol)` when due) and the notes of every read; `settled` adjusts an
        instrument after its read (a class the read learnt)."""
        filled = dict(found)
        notes: list[Note] = []
        for symbol in sorted(filled):
            if not asks(filled[symbol]):
                continue
            rules, said = self.rules(symbol, partial(read, symbol), where(symbol))
            filled[symbol] = with_rules(settled(filled[symbol]), rules)
            notes.extend(said)
        return InstrumentFetch(filled, tuple(notes))

    @staticmethod
    def _fallen_back(entry: _Entry | None, note: Note) -> tuple[Rules, tuple[Note, ...]]:
        """The last known rules (else none), with why they were not refreshed."""
        if entry is None:
            return {}, (note,)
        return entry.read.rules, (*entry.read.notes, note)


class RuleReader:
    """Collects one symbol's rules from untrusted venue values."""

    def __init__(self, symbol: str, where: str) -> None:
        self.symbol = symbol
        self.where = where
        self.rules: Rules = {}
        self.notes: list[Note] = []

    def take(self, name: str, raw: object, venue_field: str) -> None:
        """Set rule ``name`` from ``raw``: absent / zero → no rule; garbage → no rule + note."""
        if raw is None:
            return
        value: Decimal | None
        try:
            value = Decimal(str(raw)) if not isinstance(raw, bool) else None
        except (InvalidOperation, ValueError):
            value = None
        if value is not None and value.is_finite() and value == 0:
            return  # the venue's "no rule"
        if value is None or not value.is_finite() or value < 0:
            self.notes.append(
                (
                    f"instruments[{self.symbol!r}].{name}",
                    "none",
                    f"{self.where}: {venue_field} is {raw!r}, not a positive number",
                )
            )
            return
        self.rules[name] = value

    def skip(self, name: str, reason: str) -> None:
        """A rule the venue gives that cannot be used (e.g. not in USD)."""
        self.notes.append(
            (f"instruments[{self.symbol!r}].{name}", "none", f"{self.where}: {reason}")
        )

    def read(self) -> RuleRead:
        """The rules; a minimum above its maximum allows no order: both dropped, noted."""
        for low, high in (("min_quantity", "max_quantity"), ("min_notional", "max_notional")):
            if low in self.rules and high in self.rules and self.rules[low] > self.rules[high]:
                self.skip(low, f"{low} {self.rules[low]} is above {high} {self.rules[high]}")
                self.skip(high, f"{high} {self.rules[high]} is below {low} {self.rules[low]}")
                del self.rules[low], self.rules[high]
        return RuleRead(dict(self.rules), tuple(self.notes))


def with_rules(instrument: Instrument, rules: Mapping[str, Decimal]) -> Instrument:
    """``instrument`` carrying ``rules`` (every rule name not in them: None)."""
    return replace(
        instrument,
        tick_size=rules.get("tick_size"),
        lot_size=rules.get("lot_size"),
        min_quantity=rules.get("min_quantity"),
        max_quantity=rules.get("max_quantity"),
        min_notional=rules.get("min_notional"),
        max_notional=rules.get("max_notional"),
    )
