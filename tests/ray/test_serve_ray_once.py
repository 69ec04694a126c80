"""`bastion serve --ray --once`: one cycle on every partition, printed, then exit with
the codes of `bastion serve --once` (0 evaluated and saved, 1 a state not saved, 2
nothing evaluated somewhere). One run on a local Ray instance; the exit codes on a
stand-in head."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip(
    "ray", reason="ray is not installed: the bastion-risk[ray] extra (the dev extra has it)"
)

from bastion.cli.main import build_parser, main  # noqa: E402
from bastion.cli.serve_ray import _run_once  # noqa: E402
from bastion.service.auditor import Auditor  # noqa: E402
from bastion.service.ray.accounts import PartitionMap  # noqa: E402

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_once_when_ray_local_then_every_partition_cycles_once_saved_and_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two partitions each run one cycle (one cycle_evaluated line each, JSON when
    piped), save their state files and close their audit chains; exit 0."""
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "bastion.json"
    flags = ["--partitions", "2", "--state", str(state), "--policies", str(POLICIES)]
    code = main(["serve", "--ray", "local", *flags, "--once", "--log-format", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    evaluated = [line for line in lines if line["event"] == "cycle_evaluated"]
    assert sorted(line["partition"] for line in evaluated) == [0, 1]
    for index in (0, 1):
        assert (tmp_path / f"bastion.partition-{index}.json").exists()
    assert main(["audit", "verify", str(tmp_path / "audit")]) == 0


@dataclass
class _Slot:
    index: int
    error: str | None = None


@dataclass
class _Head:
    """What `_run_once` reads of a RayHead."""

    results: list[dict[str, Any]]
    slots: list[_Slot] = field(default_factory=lambda: [_Slot(0), _Slot(1)])
    partition_map: PartitionMap = field(default_factory=lambda: PartitionMap.dealt(2, ["a", "b"]))
    stopped: bool = False

    def run_once(self) -> list[dict[str, Any]]:
        return self.results

    def stop(self) -> None:
        self.stopped = True


def _result(partition: int, **changed: Any) -> dict[str, Any]:
    return {
        "partition": partition,
        "fresh": True,
        "error": None,
        "fatal": False,
        "text": f"partition {partition}: no decision\n",
        "unevaluable": [],
        "fields": {},
        "decisions": [],
        "save_failed": None,
        **changed,
    }


@pytest.mark.parametrize(
    ("results", "code", "said"),
    [
        ([_result(0), _result(1)], 0, ""),
        ([_result(0), _result(1, save_failed="disk full")], 1, "partition 1: the save"),
        ([_result(0), _result(1, fresh=False, error="HTTP 503")], 2, "nothing was evaluated"),
        ([_result(0)], 2, "partition 1: did not answer"),
    ],
)
def test_once_exit_code_when_partitions_answer_then_as_single_process_once(
    results: list[dict[str, Any]], code: int, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """0 evaluated and saved everywhere; 1 a partition's state not saved; 2 a partition
    evaluated nothing (its poll failed, or it did not answer): never an all-clear."""
    args = build_parser().parse_args(["serve", "--once", "--log-format", "console"])
    head = _Head(results)
    assert _run_once(args, head, Auditor(None)) == code
    assert head.stopped
    assert said in capsys.readouterr().err
