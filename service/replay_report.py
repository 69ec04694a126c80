"""Write a replay's report: report.json, report.md and report.html (with its plots).

- ``report.json``: `impact_of` as it is (the numbers; tools read this one);
- ``report.md``: the same as tables, linking the plots (paste it into a pull request);
- ``report.html``: the same tables with the plots inline as SVG — one self-contained
  file, nothing loaded from elsewhere; the plots are also written beside it as
  ``equity.svg``, ``trips.svg`` and ``escalations.svg``.

The engine computes (`bastion.engine.replay`); this module only writes files.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bastion.engine.errors import UsageError
from bastion.engine.replay.impact import Impact
from bastion.engine.replay.render import markdown
from bastion.engine.replay.track import Track
from bastion.service.replay_plots import render_plots

REPORT_FILES = ("report.json", "report.md", "report.html")
PLOT_TITLES = {
    "equity": "Equity and trading state per account",
    "trips": "Breaker trips",
    "escalations": "Escalation level per position",
}


def write_report(directory: str | Path, impact: Impact, tracks: Sequence[Track]) -> list[Path]:
    """Write the report files into `directory` (created if needed); returns their paths."""
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--report {directory}: cannot create the directory ({error})") from error
    plots = render_plots(tracks)
    written = []
    for name, svg in plots.items():
        written.append(_write(folder / f"{name}.svg", svg))
    images = {PLOT_TITLES[name]: f"{name}.svg" for name in plots}
    written.append(
        _write(folder / "report.json", json.dumps(impact, indent=2, ensure_ascii=False) + "\n")
    )
    written.append(_write(folder / "report.md", markdown(impact, images=images)))
    written.append(_write(folder / "report.html", _html(impact, plots)))
    return written


def _write(path: Path, text: str) -> Path:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"{path}: cannot write the report ({error})") from error
    return path


def _html(impact: Impact, plots: dict[str, str]) -> str:
    sets = impact["sets"]
    period = impact["period"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Replay impact report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:left;font-size:14px}th{background:#f4f4f4}"
        "code{font-size:12px}.plot svg{max-width:100%;height:auto}</style>",
        "</head><body>",
        "<h1>Replay impact report</h1>",
        f"<p>{period['steps']} steps from {_e(period['from'])} to {_e(period['to'])}.</p>",
        _table(
            ["set", "policy-set version", "decisions"],
            [[s["name"], s["version"], s["decisions"]] for s in sets],
        ),
    ]
    if len(sets) == 2:
        parts.append("<h2>First disagreement</h2>")
        first = impact["first_disagreement"]
        if first is None:
            parts.append("<p>None: the two sets agree at every step.</p>")
        else:
            parts.append(f"<p>At <strong>{_e(first['at'])}</strong>:</p>")
            parts.append(
                _table(
                    ["what", "subject", sets[0]["name"], sets[1]["name"]],
                    [_difference_row(d) for d in first["differences"]],
                )
            )
        parts.append(
            f"<p>Steps where the sets disagree: {impact['disagreeing_steps']} of "
            f"{period['steps']}.</p>"
        )
    parts.append("<h2>Time in each trading state, per account</h2>")
    rows = []
    for account, by_set in impact["accounts"].items():
        for name, row in by_set.items():
            total = sum(row["seconds"].values()) or 1.0
            equity = row["equity"] or {}
            rows.append(
                [
                    account,
                    name,
                    *(
                        f"{100 * row['seconds'][s] / total:.1f}%"
                        for s in ("ACTIVE", "REDUCING", "HALTED")
                    ),
                    row["trips"],
                    row["final"],
                    row["first_halted_at"] or "—",
                    f"{equity.get('start', '—')} → {equity.get('end', '—')} "
                    f"({equity.get('min', '—')})",
                ]
            )
    parts.append(
        _table(
            [
                "account",
                "set",
                "ACTIVE",
                "REDUCING",
                "HALTED",
                "trips",
                "final",
                "first halted",
                "equity start → end (min)",
            ],
            rows,
        )
    )
    for name, svg in plots.items():
        parts.append(f"<h2>{_e(PLOT_TITLES[name])}</h2>")
        parts.append(f'<div class="plot">{_inline(svg)}</div>')
    parts += _events("Breaker trips", impact["breaker_trips"])
    parts += _events(
        "Escalations", {name: data["events"] for name, data in impact["escalations"].items()}
    )
    parts += _events("Roll recommendations", impact["roll_recommendations"])
    parts.append("<h2>Order checks</h2>")
    parts.append(_checks(impact["checks"]))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _events(title: str, by_set: dict[str, list[dict[str, Any]]]) -> list[str]:
    out = [f"<h2>{_e(title)}</h2>"]
    for name, events in by_set.items():
        out.append(f"<h3>{_e(name)}: {len(events)}</h3>")
        if events:
            out.append(
                _table(
                    ["at", "rule", "subject", "outcome", "actions", "mode", "reason"],
                    [
                        [
                            e["at"],
                            e["rule"],
                            e["subject"],
                            e["outcome"],
                            ", ".join(e["actions"]),
                            e["mode"],
                            e["reason"],
                        ]
                        for e in events
                    ],
                )
            )
    return out


def _checks(checks: dict[str, Any]) -> str:
    if not checks["count"]:
        return f"<p>None: {_e(checks['note'])}.</p>"
    text = f"<p>{checks['count']} order checks replayed.</p>"
    text += _table(
        ["set", "approved", "downsized", "denied"],
        [
            [name, t["approved"], t["downsized"], t["denied"]]
            for name, t in checks["outcomes"].items()
        ],
    )
    changed = checks.get("changed")
    if changed:
        names = [key for key in changed[0] if key not in ("at", "label")]
        text += _table(
            ["at", "check", *names],
            [[c["at"], c["label"], *(_answer(c[n]) for n in names)] for c in changed],
        )
    elif changed is not None:
        text += "<p>No check changed outcome.</p>"
    return text


def _answer(check: dict[str, Any]) -> str:
    size = f" to {check['approved_size']}" if check["approved_size"] is not None else ""
    return f"{check['outcome']}{size}: {check['reason']}"


def _difference_row(item: dict[str, Any]) -> list[Any]:
    if item["what"] == "order_check":
        names = [key for key in item if key not in ("what", "at", "label")]
        return ["order check", item["label"], _answer(item[names[0]]), _answer(item[names[1]])]
    what = f"breaker {item['breaker']}" if item["what"] == "breaker" else item["what"]
    return [what, item["subject"], item["baseline"], item["candidate"]]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _inline(svg: str) -> str:
    """The <svg> element of an SVG file (without its XML prolog and doctype)."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _e(value: Any) -> str:
    return html.escape("—" if value is None else str(value))
