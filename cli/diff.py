"""Show what a policy change means: thresholds, actions, scopes, modes, levels, limits.

Compares two policy sets after `extends` and defaults, as the engine loads them:
comments, layout and key order are ignored (a reformatted file is "no change").
Each change shows old → new, the file:line:col that made it, and whether it
LOOSENS protection (a breaker removed, a threshold loosened, a mode set to shadow,
a limit raised), tightens it, or needs a review. OLD and NEW are directories, or
git revisions of the repository you are in (then PATH... names the policy folder,
default policies; a path wins over a revision of the same name).

examples:
  bastion diff policies/ candidate/                    # two folders
  bastion diff HEAD~1 HEAD -- policies/                # two commits
  bastion diff main policies/                          # main's policies vs the work tree
  bastion diff --format markdown main HEAD > diff.md   # a table per policy for a PR
  bastion diff --format json OLD NEW | jq '.summary'

Options go before OLD. Exit codes: 0 no change in meaning, 1 changed, 2 error
(a set that does not load, an unknown revision, a missing folder).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from bastion.engine.errors import UsageError
from bastion.engine.policy.diff import SetDiff, diff_sets
from bastion.engine.policy.diff_render import RENDERERS
from bastion.engine.policy.loader import load_policies
from bastion.engine.policy.model import PolicySet

HELP = __doc__ or ""
DEFAULT_PATHS = ("policies",)
GIT_TIMEOUT_S = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD", help="directory or git revision (the base)")
    parser.add_argument(
        "new",
        metavar="NEW",
        nargs="?",
        help="directory or git revision (the change); default: the PATHs in the work tree",
    )
    parser.add_argument(
        "paths",
        metavar="PATH",
        nargs="*",
        help="with revisions: the policy folders or files to read (after --; default policies)",
    )
    parser.add_argument(
        "--format",
        choices=sorted(RENDERERS),
        default="text",
        help="text (default), json, or markdown to paste into a pull request",
    )


def run(args: argparse.Namespace) -> int:
    paths = tuple(args.paths)
    new = args.new
    if new is None:  # `bastion diff HEAD`: the revision against the work tree
        new = (paths or DEFAULT_PATHS)[0] if len(paths) <= 1 else None
        if new is None:
            raise UsageError("give NEW (a directory or a revision) when you give several PATHs")
    with tempfile.TemporaryDirectory(prefix="bastion-diff-") as scratch:
        # A directory side names the folder a revision side reads, unless PATHs say.
        folders = paths or tuple(a for a in (args.old, new) if Path(a).exists()) or DEFAULT_PATHS
        old_set, old_fix = _load_side(args.old, folders, Path(scratch) / "old")
        new_set, new_fix = _load_side(new, folders, Path(scratch) / "new")
        diff = _relabel(
            diff_sets(old_set, new_set, _label(args.old, paths), _label(new, paths)),
            old_fix,
            new_fix,
        )
    sys.stdout.write(RENDERERS[args.format](diff))
    return 1 if diff.changed else 0


def _label(side: str, paths: Sequence[str]) -> str:
    if Path(side).exists() or not paths:
        return side
    return f"{side} -- {' '.join(paths)}"


Relabel = Callable[[str], str]


def _load_side(side: str, folders: Sequence[str], scratch: Path) -> tuple[PolicySet, Relabel]:
    if Path(side).exists():
        return _load(side, [side], lambda text: text), lambda text: text
    root, top = _materialise(side, folders, scratch)
    prefix = f"{root}/"

    def fix(text: str) -> str:
        return text.replace(prefix, f"{side}:")

    return _load(side, [root / top], fix), fix


def _load(side: str, paths: Sequence[str | Path], fix: Relabel) -> PolicySet:
    """The set the engine would load, or a usage error naming the first problem."""
    result = load_policies(paths)
    errors = [f for f in result.findings if f.severity == "error"]
    if errors:
        first = errors[0]
        raise UsageError(
            f"{side}: the policy set does not load ({len(errors)} error"
            f"{'' if len(errors) == 1 else 's'}); first: {fix(first.file)}:{first.line}:"
            f"{first.column}: {first.code} {first.message}. `bastion lint` shows them all; "
            "fix the set and diff again"
        )
    declaration = result.declarations[0] if result.declarations else None
    return PolicySet(tuple(result.policies), declaration)


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except FileNotFoundError as error:
        raise UsageError("git is not installed: give two directories instead") from error


def _materialise(revision: str, folders: Sequence[str], scratch: Path) -> tuple[Path, str]:
    """The revision's files under `folders`, written below `scratch`; and the folder there."""
    if revision.startswith("-"):  # never let a revision be read as a git option
        raise UsageError(
            f"{revision!r} is not a directory, nor a revision name; put options before OLD"
        )
    cwd = Path.cwd()
    top = _git(cwd, "rev-parse", "--show-toplevel", "--show-prefix")
    if top.returncode != 0:
        raise UsageError(
            f"{revision!r} is not a directory, and {cwd} is not inside a git repository "
            "to read it as a revision; give two policy directories, or run from the repository"
        )
    toplevel, prefix = [*top.stdout.decode().splitlines(), "", ""][:2]
    commit = _git(cwd, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if commit.returncode != 0:
        raise UsageError(
            f"{revision!r} is neither a directory nor a git revision of {toplevel}; "
            "check the name (`git log --oneline`, `git branch -a`) or the path"
        )
    sha = commit.stdout.decode().strip()
    listed = _git(cwd, "ls-tree", "-r", "-z", "--full-name", "--name-only", sha, "--", *folders)
    names = [n for n in listed.stdout.decode(errors="surrogateescape").split("\0") if n]
    if listed.returncode != 0 or not names:
        raise UsageError(
            f"{revision}: no files under {' '.join(folders)} at that revision (paths are "
            f"relative to the current directory); check with `git ls-tree -r {revision} -- "
            f"{' '.join(folders)}`, or name the folder after --"
        )
    archive = _git(Path(toplevel), "archive", "--format=tar", sha, "--", *names)
    if archive.returncode != 0:
        raise UsageError(f"{revision}: git archive failed: {archive.stderr.decode().strip()}")
    scratch.mkdir(parents=True)
    tar_path = scratch.with_suffix(".tar")
    tar_path.write_bytes(archive.stdout)
    with tarfile.open(tar_path) as tar:
        tar.extractall(scratch, filter="data")
    return scratch, prefix


def _relabel(diff: SetDiff, old_fix: Relabel, new_fix: Relabel) -> SetDiff:
    """Temporary paths of a revision shown as `REV:path`, as git shows them."""

    def both(text: str) -> str:
        return new_fix(old_fix(text))

    policies = tuple(
        replace(
            policy,
            old_file=old_fix(policy.old_file),
            new_file=new_fix(policy.new_file),
            changes=tuple(replace(c, where=both(c.where)) for c in policy.changes),
        )
        for policy in diff.policies
    )
    return replace(diff, policies=policies)
