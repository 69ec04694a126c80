"""The impact of a replay in words: the console summary and report.md.

Both read only the `impact_of` data (report.json), so the three report files and the
summary `bastion serve --adapter replay` prints at the end of the data always agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bastion.engine.replay.impact import Impact
from bastion.engine.replay.track import TRADING_STATES


def summary_text(impact: Impact) -> str:
    """The summary printed at the end of a replay (a few lines per account)."""
    period = impact["period"]
    sets = impact["sets"]
    names = " vs ".join(f"{s['name']} {_short(s['version'])}" for s in sets)
    lines = [
        f"replay: {period['steps']} steps from {_time(period['from'])} to "
        f"{_time(period['to'])}; {names}",
        f"{'account':<12} {'set':<10} {'ACTIVE':>8} {'REDUCING':>9} {'HALTED':>8} "
        f"{'trips':>6}  final",
    ]
    for account, by_set in impact["accounts"].items():
        for name, row in by_set.items():
            shares = _shares(row["seconds"])
            lines.append(
                f"{account:<12} {name:<10} {shares['ACTIVE']:>8} {shares['REDUCING']:>9} "
                f"{shares['HALTED']:>8} {row['trips']:>6}  {row['final']}"
            )
    lines.append(
        "breaker trips: " + _per_set(impact, lambda name: len(impact["breaker_trips"][name]))
    )
    lines.append(
        "escalations: " + _per_set(impact, lambda name: len(impact["escalations"][name]["events"]))
    )
    lines.append(
        "roll recommendations: "
        + _per_set(impact, lambda name: len(impact["roll_recommendations"][name]))
    )
    lines.append("order checks: " + _checks_line(impact["checks"]))
    if len(sets) == 2:
        lines.append(f"first disagreement: {_disagreement_line(impact['first_disagreement'])}")
        lines.append(f"disagreeing steps: {impact['disagreeing_steps']} of {period['steps']}")
    return "\n".join(lines) + "\n"


def markdown(impact: Impact, *, images: dict[str, str] | None = None) -> str:
    """report.md: the same content as tables, with the plots linked when given
    (`images`: title -> relative path)."""
    period, sets = impact["period"], impact["sets"]
    out = [
        "# Replay impact report",
        "",
        f"{period['steps']} steps from {_time(period['from'])} to {_time(period['to'])}.",
        "",
        "| set | policy-set version | decisions |",
        "|---|---|---|",
        *[f"| {s['name']} | `{s['version']}` | {s['decisions']} |" for s in sets],
        "",
    ]
    if len(sets) == 2:
        out += ["## First disagreement", "", _disagreement_md(impact["first_disagreement"]), ""]
        out.append(
            f"Steps where the sets disagree: {impact['disagreeing_steps']} of {period['steps']}."
        )
        out.append("")
    out += [
        "## Time in each trading state, per account",
        "",
        "| account | set | ACTIVE | REDUCING | HALTED | trips | final | first halted "
        "| equity start → end (min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for account, by_set in impact["accounts"].items():
        for name, row in by_set.items():
            shares = _shares(row["seconds"])
            equity = row["equity"]
            money = (
                "—" if equity is None else f"{equity['start']} → {equity['end']} ({equity['min']})"
            )
            out.append(
                f"| {account} | {name} | {shares['ACTIVE']} | {shares['REDUCING']} | "
                f"{shares['HALTED']} | {row['trips']} | {row['final']} | "
                f"{_time(row['first_halted_at']) if row['first_halted_at'] else '—'} | {money} |"
            )
    out.append("")
    out += _events_md("Breaker trips", impact["breaker_trips"])
    out += _events_md(
        "Escalations", {name: data["events"] for name, data in impact["escalations"].items()}
    )
    out += ["### Highest escalation level per position", ""]
    for name, data in impact["escalations"].items():
        highest = ", ".join(
            f"{position} {level['name']} ({level['level']})"
            for position, level in data["highest"].items()
        )
        out.append(f"- {name}: {highest or 'none escalated'}")
    out.append("")
    out += _events_md("Roll recommendations", impact["roll_recommendations"])
    out += ["## Order checks", "", _checks_md(impact["checks"]), ""]
    if images:
        out += ["## Plots", ""]
        out += [f"![{title}]({path})" for title, path in images.items()]
        out.append("")
    return "\n".join(out)


def _events_md(title: str, by_set: dict[str, list[dict[str, Any]]]) -> list[str]:
    out = [f"## {title}", ""]
    for name, events in by_set.items():
        out.append(f"### {name}: {len(events)}")
        out.append("")
        if not events:
            continue
        out += ["| at | rule | subject | outcome | actions | mode |", "|---|---|---|---|---|---|"]
        out += [
            f"| {_time(e['at'])} | {e['rule']} | {e['subject']} | {e['outcome']} | "
            f"{', '.join(e['actions']) or '—'} | {e['mode']} |"
            for e in events
        ]
        out.append("")
    return out


def _checks_md(checks: dict[str, Any]) -> str:
    if not checks["count"]:
        return f"None: {checks['note']}."
    lines = [f"{checks['count']} order checks replayed."]
    for name, tally in checks["outcomes"].items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in tally.items()))
    changed = checks.get("changed")
    if changed is not None:
        lines.append(f"\nOutcome changed for {len(changed)}:\n")
        if changed:
            names = [key for key in changed[0] if key not in ("at", "label")]
            lines.append(f"| at | check | {names[0]} | {names[1]} |")
            lines.append("|---|---|---|---|")
            for item in changed:
                old, new = item[names[0]], item[names[1]]
                lines.append(
                    f"| {_time(item['at'])} | {item['label']} | {_answer(old)} | {_answer(new)} |"
                )
    return "\n".join(lines)


def _answer(check: dict[str, Any]) -> str:
    size = f" to {check['approved_size']}" if check["approved_size"] is not None else ""
    return f"{check['outcome']}{size}"


def _checks_line(checks: dict[str, Any]) -> str:
    if not checks["count"]:
        return str(checks["note"])
    line = f"{checks['count']} replayed"
    if "changed" in checks:
        line += f", {len(checks['changed'])} with a changed outcome"
    return line


def _disagreement_line(first: dict[str, Any] | None) -> str:
    if first is None:
        return "none: the two sets agree at every step"
    differences = first["differences"]
    head = _difference(differences[0])
    more = f" (+{len(differences) - 1} more)" if len(differences) > 1 else ""
    return f"{_time(first['at'])}: {head}{more}"


def _disagreement_md(first: dict[str, Any] | None) -> str:
    if first is None:
        return "None: the two sets agree at every step."
    lines = [f"At **{_time(first['at'])}**:", ""]
    lines += [f"- {_difference(d)}" for d in first["differences"]]
    return "\n".join(lines)


def _difference(item: dict[str, Any]) -> str:
    if item["what"] == "order_check":
        names = [key for key in item if key not in ("what", "at", "label")]
        return (
            f"order check {item['label']}: {_answer(item[names[0]])} -> {_answer(item[names[1]])}"
        )
    what = item["what"].replace("_", " ")
    if item["what"] == "breaker":
        what = f"breaker {item['breaker']}"
    return f"{what} {item['subject']}: {item['baseline']} -> {item['candidate']}"


def _per_set(impact: Impact, count: Any) -> str:
    return ", ".join(f"{s['name']} {count(s['name'])}" for s in impact["sets"])


def _shares(seconds: dict[str, float]) -> dict[str, str]:
    total = sum(seconds.values())
    return {
        state: f"{100 * seconds.get(state, 0.0) / total:.1f}%" if total else "—"
        for state in TRADING_STATES
    }


def _short(version: str) -> str:
    return version.removeprefix("sha256:")[:12]


def _time(text: str | None) -> str:
    if text is None:
        return "—"
    moment = datetime.fromisoformat(text)
    return moment.strftime("%Y-%m-%d %H:%M") + ("Z" if moment.utcoffset() is not None else "")
