"""Frames for `bastion replay`: the moments of a history, each with its snapshot.

- **From bars** (`bar_frames`): the replay adapter (CSV bars and a positions file) on a
  hand-moved clock, one frame at every bar close from the end of the warm-up (or
  ``start``) to the last close (or ``end``). Each snapshot is built by the same
  `SnapshotBuilder` the service uses, with its state carried from frame to frame: a
  frame is what `bastion serve --adapter replay` would have evaluated at that close.
- **From recorded snapshots** (`snapshot_frames`): every ``*.json`` in a directory
  (`schemas/snapshot.schema.json`), in ``as_of`` order (the file name breaks a tie),
  each evaluated at its ``as_of``.
- **Order checks** (`load_checks`): a JSON Lines file, one ``{"at": ISO-8601, "request":
  {...}}`` per line (the request as `bastion check --request` reads it).

Everything here reads files; the replay itself (`bastion.engine.replay`) is pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from bastion.adapters.builder import SnapshotBuilder
from bastion.adapters.builder_state import BuilderState
from bastion.adapters.replay import ReplayAdapter
from bastion.adapters.sources.clock import ManualClock
from bastion.engine.authority.request import RequestError, request_from_dict
from bastion.engine.errors import DataError, UsageError
from bastion.engine.replay.run import Frame, TimedCheck
from bastion.engine.snapshot import Regime, load_snapshot

# Any fixed origin: the replay's clock is moved by hand, never read from the wall.
_ORIGIN = datetime.fromisoformat("2000-01-01T00:00:00+00:00")


def bar_files(directory: str | Path) -> dict[str, Path]:
    """SYMBOL -> file for every ``SYMBOL.csv`` in `directory` (the symbol is the stem)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise UsageError(f"--bars {directory}: not a directory of SYMBOL.csv files")
    found = {path.stem: path for path in sorted(folder.glob("*.csv"))}
    if not found:
        raise UsageError(f"--bars {directory}: no .csv files (one per symbol, e.g. SPY.csv)")
    return found


class BarReplay:
    """The replay adapter on a manual clock, and the frames it yields."""

    def __init__(
        self,
        files: Mapping[str, str | Path],
        positions_file: str | Path | None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        regime: Regime | None = None,
    ) -> None:
        self.clock = ManualClock(_ORIGIN)
        self.adapter = ReplayAdapter(
            {symbol: str(path) for symbol, path in files.items()},
            clock=self.clock,
            positions_file=positions_file,
        )
        self.builder = SnapshotBuilder(self.adapter.builder_config())
        first = self.adapter.clock.start
        if start is not None and start > first:
            first = start
        self.start = first
        self.end = self.adapter.end_at if end is None else min(end, self.adapter.end_at)
        if self.end < self.start:
            raise UsageError(
                f"nothing to replay between {self.start.isoformat()} and "
                f"{self.end.isoformat()}: the bars close from "
                f"{self.adapter.clock.start.isoformat()} to {self.adapter.end_at.isoformat()}"
            )
        self.regime = regime or Regime("normal", "low", self.start)

    @property
    def interval_s(self) -> int:
        return self.adapter.interval_s

    def closes(self) -> list[datetime]:
        """Every bar close of every file from the start to the end, once each, in order."""
        return self.adapter.closes_between(self.start, self.end)

    def frames(self) -> Iterator[Frame]:
        state = BuilderState()
        for at in self.closes():
            self._move_to(at)
            poll = self.builder.poll(self.adapter, now=at, state=state)
            built = self.builder.build(poll, now=at, state=state, regime=self.regime)
            state = built.state
            yield Frame(at, built.snapshot, built.unevaluable)

    def _move_to(self, at: datetime) -> None:
        ahead = (at - self.adapter.clock.now()).total_seconds()
        if ahead > 0:
            self.clock.advance(ahead)


def snapshot_frames(directory: str | Path) -> list[Frame]:
    """Every snapshot file of `directory`, oldest ``as_of`` first."""
    folder = Path(directory)
    if not folder.is_dir():
        raise UsageError(f"--snapshots {directory}: not a directory of snapshot JSON files")
    files = sorted(folder.glob("*.json"))
    if not files:
        raise UsageError(f"--snapshots {directory}: no .json snapshot files")
    loaded = [(load_snapshot(path), path.name) for path in files]
    loaded.sort(key=lambda item: (item[0].as_of, item[1]))
    return [Frame(snapshot.as_of, snapshot) for snapshot, _ in loaded]


def load_checks(path: str | Path) -> list[TimedCheck]:
    """The order checks of a JSON Lines file; DataError names the line and the fix."""
    source = str(path)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read the checks file ({error})", file=source) from None
    checks = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            item = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as error:
            raise DataError(f"not valid JSON: {error.msg}", file=source, line=number) from None
        if not isinstance(item, dict) or "at" not in item or "request" not in item:
            raise DataError(
                'each line is {"at": "2024-03-04T15:00:00Z", "request": {...}}',
                file=source,
                line=number,
            )
        try:
            at = datetime.fromisoformat(str(item["at"]).replace("Z", "+00:00"))
        except ValueError:
            raise DataError(
                f"at: {item['at']!r} is not an ISO 8601 time", file=source, line=number
            ) from None
        if at.utcoffset() is None:
            raise DataError("at: has no timezone; add Z or +00:00", file=source, line=number)
        try:
            request = request_from_dict(item["request"], source=f"{source}:{number}")
        except RequestError as error:
            raise DataError(f"request: {error}", file=source, line=number) from None
        checks.append(TimedCheck(at, request, f"{source}:{number}"))
    return checks
