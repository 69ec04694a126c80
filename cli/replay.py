"""Replay a history through a policy set (and a baseline) and report the impact.

The history is CSV bars (--bars DIR: one SYMBOL.csv per symbol, any layout `bastion
atr` reads) with a book of accounts and positions (--positions FILE, the replay
adapter's format), or recorded snapshots (--snapshots DIR: snapshot JSON files, taken
in `as_of` order). Every step — each bar close after the warm-up, or each snapshot —
is evaluated by --policies and, when given, by --baseline, at full speed: time is the
history's, nothing sleeps. Each set keeps its own state from step to step, as stepping
`bastion eval --state` over the same snapshots would (no manual resets: a breaker that
waits for one stays tripped to the end). Order checks of the history (--checks FILE,
JSON Lines of {"at": ISO-8601, "request": {...}}) are asked of both sets.

The summary names, per account, the share of time spent ACTIVE / REDUCING / HALTED
under each set, the breaker trips, escalations and roll recommendations, the checks
whose outcome changed and the first moment the two sets disagree. --report DIR writes
report.json, report.md and report.html (plots inline, nothing fetched) there.

examples:
  bastion replay --policies policies --bars examples/replay/crash \\
      --positions examples/replay/crash/positions.json --report replay-report
  bastion replay --policies candidate/ --baseline policies/ --bars examples/replay/crash \\
      --positions examples/replay/crash/positions.json --from 2024-03-01 --to 2024-06-28
  bastion replay --policies candidate/ --baseline policies/ --snapshots recorded/ \\
      --checks recorded/checks.jsonl --format json | jq .first_disagreement
  bastion replay --bars examples/replay/crash --positions examples/replay/crash/positions.json \\
      --to 2024-01-31 --save-snapshots snapshots/   # the steps as files for eval / check

Exit 0 when the replay ran (and, with --baseline, the two sets agreed at every step);
1 when the sets disagreed somewhere (the report says where first); 2 when an input
cannot be read or a policy set does not lint (the file and the fix are named).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from bastion.adapters.replay_frames import BarReplay, bar_files, load_checks, snapshot_frames
from bastion.engine.errors import UsageError
from bastion.engine.evaluation.compiled import compile_policy_set
from bastion.engine.lint.runner import load_policy_set
from bastion.engine.replay import Frame, PolicySetRun, TimedCheck, impact_of, replay
from bastion.engine.replay.render import summary_text

HELP = __doc__ or ""
EXIT_AGREE = 0
EXIT_DISAGREE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        default="policies",
        metavar="DIR",
        help="the policy set to replay (the candidate when --baseline is given; default: policies)",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="the policy set to compare with (e.g. a checkout of main's policies/)",
    )
    history = parser.add_mutually_exclusive_group(required=True)
    history.add_argument(
        "--bars",
        metavar="DIR",
        help="one OHLCV CSV per symbol, named SYMBOL.csv; needs --positions",
    )
    history.add_argument(
        "--snapshots",
        metavar="DIR",
        help="recorded snapshot JSON files (schemas/snapshot.schema.json), replayed in as_of order",
    )
    parser.add_argument(
        "--positions",
        metavar="FILE",
        help="accounts, positions and fills for --bars (format: adapters/replay_book.py)",
    )
    parser.add_argument(
        "--from",
        dest="start",
        metavar="TIME",
        help="first step: a date (2024-03-01) or an ISO 8601 time with a zone; default: "
        "the end of the bars' warm-up (or the first snapshot)",
    )
    parser.add_argument(
        "--to", dest="end", metavar="TIME", help="last step (same forms); default: the end"
    )
    parser.add_argument(
        "--checks",
        metavar="FILE",
        help='order checks of the history, JSON Lines: {"at": TIME, "request": {...}} '
        "(the request as `bastion check --request` reads it)",
    )
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="write report.json, report.md and report.html (with SVG plots) here",
    )
    parser.add_argument(
        "--save-snapshots",
        metavar="DIR",
        help="also write each step's snapshot there (NNNNN-TIME.json): a --bars history "
        "as files for --snapshots, `bastion eval` or `bastion check`",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="the summary on stdout: text, or the report's JSON",
    )


def parse_time(text: str | None, option: str) -> datetime | None:
    """A date (midnight UTC) or an ISO 8601 time with a zone."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a date (2024-03-01) or an ISO 8601 time "
            "(2024-03-01T15:30:00Z)"
        ) from None
    if moment.utcoffset() is None:
        if len(text) > 10:
            raise UsageError(f"{option} {text!r} has no timezone; add Z or +00:00")
        moment = moment.replace(tzinfo=UTC)
    return moment


def _sets(args: argparse.Namespace) -> list[PolicySetRun]:
    named = [("candidate", args.policies)] if args.baseline else [("policies", args.policies)]
    if args.baseline:
        named.insert(0, ("baseline", args.baseline))
    runs = []
    for name, path in named:
        policy_set = load_policy_set([path])  # linted: a set with errors is refused (exit 2)
        runs.append(PolicySetRun(name, compile_policy_set(policy_set), policy_set.version))
    return runs


def _frames(args: argparse.Namespace) -> tuple[list[Frame] | BarReplay, float | None]:
    start, end = parse_time(args.start, "--from"), parse_time(args.end, "--to")
    if start is not None and end is not None and end < start:
        raise UsageError(f"--to {args.end} is before --from {args.start}")
    if args.bars:
        if not args.positions:
            raise UsageError("--bars needs --positions FILE (accounts and positions to mark)")
        history = BarReplay(bar_files(args.bars), args.positions, start=start, end=end)
        return history, float(history.interval_s)
    if args.positions:
        raise UsageError("--positions goes with --bars; snapshots carry their positions")
    frames = [
        frame
        for frame in snapshot_frames(args.snapshots)
        if (start is None or frame.at >= start) and (end is None or frame.at <= end)
    ]
    if not frames:
        raise UsageError(f"--snapshots {args.snapshots}: no snapshot between --from and --to")
    return frames, None


def _saving(frames: Iterable[Frame], folder: Path) -> Iterator[Frame]:
    """The frames, each snapshot written to `folder` on the way (in step order)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--save-snapshots {folder}: cannot create it ({error})") from error
    for index, frame in enumerate(frames):
        path = folder / f"{index:05d}-{frame.at:%Y%m%dT%H%M%SZ}.json"
        text = json.dumps(frame.snapshot.to_dict(), indent=1, ensure_ascii=False) + "\n"
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise UsageError(f"{path}: cannot write the snapshot ({error})") from error
        yield frame


def run(args: argparse.Namespace) -> int:
    sets = _sets(args)
    history, tail_s = _frames(args)
    checks: list[TimedCheck] = load_checks(args.checks) if args.checks else []
    frames: Iterable[Frame] = history.frames() if isinstance(history, BarReplay) else history
    if args.save_snapshots:
        frames = _saving(frames, Path(args.save_snapshots))
    try:
        tracks = replay(sets, frames, checks)
    finally:
        for policy_run in sets:
            policy_run.policies.close()
    impact = impact_of(tracks, tail_s=tail_s)
    if args.report:
        from bastion.service.replay_report import write_report  # noqa: PLC0415 - matplotlib

        write_report(Path(args.report), impact, tracks)
    if args.format == "json":
        sys.stdout.write(json.dumps(impact, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(summary_text(impact))
        if args.report:
            folder = Path(args.report)
            print(f"report: {folder / 'report.html'} (also report.md, report.json and the plots)")
    if len(sets) == 2 and impact["first_disagreement"] is not None:
        return EXIT_DISAGREE
    return EXIT_AGREE
