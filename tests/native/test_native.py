"""The compiled order check (engine/native.py): decides exactly as the Python sources do,
is what `make install` leaves in place, and is refused once its sources have changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bastion.cli import main as cli_main
from bastion.engine import native
from tests.native import workload

ROOT = Path(__file__).resolve().parents[2]


def _python_view(into: Path) -> Path:
    """A `bastion` package of the same sources, with nothing compiled in it."""
    package = into / "bastion"
    package.mkdir()
    shutil.copytree(
        ROOT / "engine", package / "engine", ignore=shutil.ignore_patterns("*.so", "_native.json")
    )
    for name in ("adapters", "service", "cli"):
        (package / name).symlink_to(ROOT / name)
    return into


def test_compiled_when_checked_then_every_decision_byte_identical_to_python(
    tmp_path: Path,
) -> None:
    """Every field of every decision (reasons and audit record included), the lists and
    the state after each stream: the same bytes from the compiled modules and from the
    Python sources (run in a child on a copy holding no compiled file)."""
    view = _python_view(tmp_path)
    child = subprocess.run(
        [sys.executable, "-m", "tests.native.workload"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{view}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    python_lines = child.stdout.splitlines()
    assert python_lines[0] == 'module ".py"'  # the child ran the sources
    here = list(workload.lines())
    assert len(here) == len(python_lines) - 1 > 3_500
    differ = [n for n, (a, b) in enumerate(zip(here, python_lines[1:], strict=True)) if a != b]
    assert not differ, f"{len(differ)} decisions differ, first: {here[differ[0]][:300]}"


@pytest.mark.skipif(
    os.environ.get(native.OFF_ENV) == "0", reason="BASTION_NATIVE=0: built as Python"
)
def test_make_install_when_done_then_the_order_check_is_compiled() -> None:
    """`make install` / `make test` compile it (CI has a C compiler): a build that fell
    back to Python would lose the speed bench/check measures, silently."""
    assert native.compiled_files(), "run `make install`: nothing compiled"
    assert native.loaded()
    assert not native.stale()


def _fake_build(root: Path) -> Path:
    """An engine/ folder with two sources, a compiled file and the build's record."""
    authority = root / "authority"
    (authority / "controls").mkdir(parents=True)
    (authority / "check.py").write_text("x = 1\n")
    (authority / "walk.py").write_text("y = 2\n")
    (authority / "check.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\0")
    record = {m: native.digest(root / m) for m in ("authority/check.py", "authority/walk.py")}
    (authority / "_native.json").write_text(json.dumps(record))
    return root


def test_source_edited_after_build_when_imported_then_refused_naming_file_and_fix(
    tmp_path: Path,
) -> None:
    engine = _fake_build(tmp_path)
    modules = ("authority/check.py", "authority/walk.py")
    assert native.stale(engine, modules) == []
    (engine / "authority" / "walk.py").write_text("y = 3\n")
    assert native.stale(engine, modules) == ["authority/walk.py"]
    with pytest.raises(native.StaleBuild) as raised:
        native.check_current(engine, modules)
    message = str(raised.value)
    assert "engine/authority/walk.py" in message
    assert "make install" in message
    assert "bastion.engine.native clean" in message


def test_build_record_missing_when_compiled_then_every_module_stale(tmp_path: Path) -> None:
    engine = _fake_build(tmp_path)
    (engine / "authority" / "_native.json").unlink()
    assert native.stale(engine, ("authority/check.py",)) == ["authority/check.py"]


def test_nothing_compiled_when_checked_then_python_runs_and_nothing_is_stale(
    tmp_path: Path,
) -> None:
    engine = _fake_build(tmp_path)
    (engine / "authority" / "check.cpython-311-x86_64-linux-gnu.so").unlink()
    (engine / "authority" / "walk.py").write_text("edited\n")
    assert native.stale(engine, ("authority/walk.py",)) == []


def test_status_when_run_then_says_compiled_or_python() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bastion.engine.native", "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "order check: compiled (mypyc)" in done.stdout or "order check: Python" in done.stdout


def test_stale_build_when_a_command_imports_it_then_exit_2_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 3 a.m. a refused build is one line saying what to run, not a traceback."""

    def refused(name: str) -> object:
        raise native.StaleBuild("the compiled order check ... run `make install`")

    monkeypatch.setattr(cli_main, "import_module", refused)
    assert cli_main.main(["check", "--help"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bastion: error: the compiled order check")
    assert "Traceback" not in err
