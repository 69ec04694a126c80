"""`make dist`'s wheel is complete: built offline, installed into a fresh venv, it runs.

What this proves, offline: the sdist holds everything a build needs (the wheel is built
from the sdist, as `python -m build` does), the wheel holds every package and data file
the CLI needs (the fresh venv has nothing of this checkout: no editable install, no
PYTHONPATH, another working directory), and the `bastion` entry point works. The
dependencies are not downloaded: the fresh venv sees the test venv's installed ones
through a `.pth` line (which adds the directory only — the editable install's own `.pth`
hook there is not run, so `bastion` can only come from the wheel). Resolving the
dependencies from an index is pip's job and needs the network.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import POLICIES, ROOT

pytestmark = pytest.mark.slow


def _run(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and sdist `make dist` builds (same command, another output folder)."""
    out = tmp_path_factory.mktemp("dist")
    result = _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT, cwd=out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def fresh_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with only the wheel installed (no dependencies downloaded)."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv.parent)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    wheel = next(dist.glob("bastion_risk-*.whl"))
    installed = _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
        "--quiet", wheel, cwd=venv.parent,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=venv)
    deps = sysconfig.get_path("purelib")  # the test venv's installed dependencies
    (Path(purelib.stdout.strip()) / "test-deps.pth").write_text(deps + "\n")
    return venv


def test_make_dist_when_built_then_wheel_and_sdist_are_there(dist: Path) -> None:
    """One wheel (pure Python, any platform) and one sdist, named after the version."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert [p.name for p in dist.glob("*.whl")] == [f"bastion_risk-{version}-py3-none-any.whl"]
    assert [p.name for p in dist.glob("*.tar.gz")] == [f"bastion_risk-{version}.tar.gz"]


def test_wheel_when_listed_then_every_package_and_data_file_is_inside(dist: Path) -> None:
    """Every package of pyproject, every package-data file, and the console script."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    wheel = zipfile.ZipFile(next(dist.glob("*.whl")))
    names = set(wheel.namelist())
    for package in setuptools["packages"]:
        assert package.replace(".", "/") + "/__init__.py" in names, package
    folders = setuptools["package-dir"]
    for package, patterns in setuptools.get("package-data", {}).items():
        top, _, rest = package.removeprefix("bastion.").partition(".")
        source = ROOT / folders[f"bastion.{top}"] / rest.replace(".", "/")
        for pattern in patterns:
            files = [p for p in source.glob(pattern) if p.is_file()]
            assert files, f"{package}: {pattern} matches nothing in {source}"
            for file in files:
                inside = package.replace(".", "/") + "/" + str(file.relative_to(source))
                assert inside in names, inside
    assert "bastion/service/openapi.json" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "bastion = bastion.cli.main:main" in wheel.read(entry_points).decode()


def test_wheel_when_installed_in_fresh_venv_then_bastion_runs_from_it(
    fresh_venv: Path, tmp_path: Path
) -> None:
    """`bastion --version` answers, the package imports from the fresh venv (not this
    checkout), and the CLI lints the shipped policies."""
    bastion = fresh_venv / "bin" / "bastion"
    version = _run(bastion, "--version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version.stdout.strip() == f"bastion {expected}"
    where = _run(
        fresh_venv / "bin" / "python", "-c", "import bastion.cli; print(bastion.cli.__file__)",
        cwd=tmp_path,
    )  # fmt: skip
    assert where.stdout.strip().startswith(str(fresh_venv)), where.stdout + where.stderr
    lint = _run(bastion, "lint", POLICIES, cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_wheel_when_installed_then_openapi_and_schemas_come_from_it(
    fresh_venv: Path, tmp_path: Path
) -> None:
    """The package data is readable from the installed wheel: the OpenAPI description,
    and every published JSON Schema (generated from the code by `bastion schema`)."""
    python = fresh_venv / "bin" / "python"
    openapi = _run(
        python, "-c",
        "from importlib.resources import files; "
        "print(files('bastion.service').joinpath('openapi.json').read_text())",
        cwd=tmp_path,
    )  # fmt: skip
    assert json.loads(openapi.stdout)["openapi"].startswith("3.1")
    schemas = _run(fresh_venv / "bin" / "bastion", "schema", "--out", tmp_path / "s", cwd=tmp_path)
    assert schemas.returncode == 0, schemas.stderr
    written = {p.name for p in (tmp_path / "s").glob("*.schema.json")}
    assert written == {p.name for p in (ROOT / "schemas").glob("*.schema.json")}
