"""The replay report's plots, drawn with matplotlib as SVG text (nothing fetched, no CDN).

- ``equity``: per account, its equity under each set, and its trading state below it;
- ``trips``: every breaker trip on a timeline, one row per breaker and subject;
- ``escalations``: escalation level per position over time, one panel per set (the
  positions that ever left the base level, most escalated first).

The SVG is deterministic (fixed hash salt, no date): the same replay, the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never a window, never a display

from matplotlib import pyplot as plt
from matplotlib.dates import date2num as _date2num
from matplotlib.figure import Figure

from bastion.engine.replay.track import TRADING_STATES, Track

STYLES = ({"color": "#1f77b4", "linestyle": "-"}, {"color": "#d62728", "linestyle": "--"})
MARKERS = ("o", "x")
MAX_POSITIONS = 30  # rows of the escalation panels; the rest are counted in the title
STATE_RANK = {state: rank for rank, state in enumerate(TRADING_STATES)}


def render_plots(tracks: Sequence[Track]) -> dict[str, str]:
    """name -> SVG text, for the plots that have something to show."""
    plt.rcParams["svg.hashsalt"] = "bastion-replay"
    plots = {
        "equity": _equity(tracks),
        "trips": _trips(tracks),
        "escalations": _escalations(tracks),
    }
    return {name: _svg(figure) for name, figure in plots.items() if figure is not None}


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _equity(tracks: Sequence[Track]) -> Figure | None:
    accounts = sorted({a for t in tracks for p in t.points for a in p.equity})
    if not accounts:
        return None
    figure, axes = plt.subplots(
        len(accounts) * 2,
        1,
        figsize=(10, 2.6 * len(accounts)),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1] * len(accounts)},
        squeeze=False,
        layout="constrained",
    )
    for row, account in enumerate(accounts):
        money, state = axes[2 * row][0], axes[2 * row + 1][0]
        for track, style in zip(tracks, STYLES, strict=False):
            times = [p.at for p in track.points if account in p.equity]
            money.plot(
                times,
                [float(p.equity[account]) for p in track.points if account in p.equity],
                label=track.name,
                **style,
            )
            state.step(
                [p.at for p in track.points if account in p.trading],
                [STATE_RANK[p.trading[account]] for p in track.points if account in p.trading],
                where="post",
                label=track.name,
                **style,
            )
        money.set_title(f"{account}: equity (USD) and trading state")
        money.legend(loc="upper left", fontsize="small")
        money.grid(alpha=0.3)
        state.set_yticks(range(len(TRADING_STATES)), TRADING_STATES, fontsize="small")
        state.set_ylim(-0.4, len(TRADING_STATES) - 0.6)
        state.grid(alpha=0.3)
    figure.autofmt_xdate()
    return figure


def _trips(tracks: Sequence[Track]) -> Figure | None:
    rows: list[str] = []
    found: list[tuple[int, Any, str]] = []
    for index, track in enumerate(tracks):
        for event in track.of_kind("breaker", "trip"):
            label = f"{event.rule} @ {event.subject}"
            if label not in rows:
                rows.append(label)
            found.append((index, event.at, label))
    if not found:
        return None
    rows.sort()
    figure, axis = plt.subplots(figsize=(10, 1.2 + 0.3 * len(rows)), layout="constrained")
    for index, track in enumerate(tracks):
        mine = [(at, rows.index(label)) for i, at, label in found if i == index]
        if mine:
            axis.scatter(
                [at for at, _ in mine],
                [row for _, row in mine],
                marker=MARKERS[index],
                color=STYLES[index]["color"],
                label=f"{track.name} ({len(mine)})",
            )
    axis.set_yticks(range(len(rows)), rows, fontsize="small")
    axis.set_title("Breaker trips")
    axis.legend(loc="upper left", fontsize="small")
    axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    return figure


def _escalations(tracks: Sequence[Track]) -> Figure | None:
    highest: dict[str, int] = {}
    for track in tracks:
        for point in track.points:
            for position, level in point.levels.items():
                highest[position] = max(highest.get(position, 0), level)
    if not highest:
        return None
    ranked = sorted(highest, key=lambda p: (-highest[p], p))
    shown = sorted(ranked[:MAX_POSITIONS])
    top = max(highest.values())
    figure, axes = plt.subplots(
        1,
        len(tracks),
        figsize=(6 * len(tracks), 1.5 + 0.28 * len(shown)),
        squeeze=False,
        layout="constrained",
    )
    for column, track in enumerate(tracks):
        axis = axes[0][column]
        grid = [[p.levels.get(position, 0) for p in track.points] for position in shown]
        times = [p.at for p in track.points]
        image = axis.imshow(
            grid,
            aspect="auto",
            interpolation="nearest",
            cmap="YlOrRd",
            vmin=0,
            vmax=max(top, 1),
            extent=(_days(times[0]), _days(times[-1]) + (len(times) == 1), len(shown) - 0.5, -0.5),
        )
        axis.xaxis_date()
        axis.set_yticks(range(len(shown)), shown, fontsize="small")
        more = f" (top {len(shown)} of {len(ranked)})" if len(ranked) > len(shown) else ""
        axis.set_title(f"{track.name}: escalation level per position{more}")
        figure.colorbar(image, ax=axis, label="level")
    figure.autofmt_xdate()
    return figure


def _days(moment: datetime) -> float:
    """Matplotlib's date number (days since its epoch) of `moment`."""
    days: float = _date2num(moment)  # type: ignore[no-untyped-call]  # untyped in matplotlib
    return days
