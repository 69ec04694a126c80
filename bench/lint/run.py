"""Benchmark: lint 500 policy files; files/s, and the ratio against check-jsonschema.

Both tools run as processes on the same 500 files against the same schemas, in the
same run, best of several rounds (process start-up included for both: that is what
a CI job or pre-commit hook pays). check-jsonschema does only the schema part;
`bastion lint` also resolves `extends`, builds the models and runs the semantic
rules. In-process library throughput is printed as well, and start-up: `bastion
--version` and `bastion lint policies/` (the shipped set, what a pre-commit hook pays)
as a ratio of `check-jsonschema --version`.

    .venv/bin/python bench/lint/run.py [--files 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bastion.engine.lint.runner import lint_paths

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def make_corpus(target: Path, count: int) -> dict[str, list[Path]]:
    """`count` valid policies, spread over the five kinds, each with its own scope."""
    by_stem: dict[str, list[Path]] = {}
    stems = {
        "EscalationPolicy": "escalation",
        "RollPolicy": "roll",
        "BreakerPolicy": "breakers",
        "ProtectionPolicy": "protection",
        "LimitPolicy": "limits",
    }
    shipped = [
        document
        for p in sorted((ROOT / "policies").glob("*.yaml"))
        if "extends" not in p.read_text()
        for document in [yaml.safe_load(p.read_text())]
        if document["kind"] in stems  # not the PolicySet declaration (bastion.yaml)
    ]
    for index in range(count):
        document = dict(shipped[index % len(shipped)])
        document["metadata"] = {**document["metadata"], "name": f"policy-{index:04d}"}
        document["scope"] = {"symbols": [f"SYM{index:04d}"]}
        stem = stems[document["kind"]]
        path = target / f"{index:04d}-{stem}.yaml"
        header = f"# yaml-language-server: $schema=../schemas/{stem}.schema.json\n"
        path.write_text(header + yaml.safe_dump(document, sort_keys=False))
        by_stem.setdefault(stem, []).append(path)
    return by_stem


def best_of(rounds: int, command: list[list[str]]) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for argv in command:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode not in (0,):
                raise SystemExit(f"{argv[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    peer = shutil.which("check-jsonschema", path=str(BIN))
    if peer is None:
        raise SystemExit("check-jsonschema is not installed: pip install -e '.[bench]'")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "policies"
        corpus.mkdir()
        by_stem = make_corpus(corpus, args.files)
        ours = best_of(args.rounds, [[str(BIN / "bastion"), "lint", str(corpus)]])
        theirs = best_of(
            args.rounds,
            [
                [
                    peer,
                    "--schemafile",
                    str(ROOT / "schemas" / f"{stem}.schema.json"),
                    *map(str, paths),
                ]
                for stem, paths in sorted(by_stem.items())
            ],
        )
        ours_startup = best_of(args.rounds, [[str(BIN / "bastion"), "--version"]])
        theirs_startup = best_of(args.rounds, [[peer, "--version"]])
        # What a pre-commit hook pays on a small repository: the shipped policies.
        ours_lint_startup = best_of(
            args.rounds, [[str(BIN / "bastion"), "lint", str(ROOT / "policies")]]
        )
        lint_paths([corpus])  # warm caches (compiled validators)
        started = time.perf_counter()
        result = lint_paths([corpus])
        in_process = time.perf_counter() - started
        assert result.files == args.files and result.errors == 0, result.findings[:3]
    print(f"bench/lint: {args.files} policy files, best of {args.rounds} rounds")
    print(f"  bastion lint (process)        {ours:8.3f} s  {args.files / ours:9.0f} files/s")
    print(f"  check-jsonschema (5 processes){theirs:8.3f} s  {args.files / theirs:9.0f} files/s")
    print(
        f"  bastion lint (in-process)     {in_process:8.3f} s  "
        f"{args.files / in_process:9.0f} files/s"
    )
    print(
        f"  start-up: bastion --version {ours_startup:.3f} s "
        f"({ours_startup / theirs_startup:.2f}x), "
        f"bastion lint policies/ {ours_lint_startup:.3f} s "
        f"({ours_lint_startup / theirs_startup:.2f}x), "
        f"check-jsonschema --version {theirs_startup:.3f} s (1.00x) per process"
    )
    ours_work = ours - ours_startup
    theirs_work = theirs - len(by_stem) * theirs_startup
    print(
        f"  ratio bastion/check-jsonschema throughput: {theirs / ours:.2f}x end to end, "
        f"{theirs_work / ours_work:.2f}x with start-up subtracted "
        f"({'faster' if ours_work < theirs_work else 'SLOWER'}; bastion also runs semantic lint)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
