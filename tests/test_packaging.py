"""Packaging: every code folder installs under `bastion.`, never as a bare name."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT

MAPPED = {"engine", "adapters", "service", "cli"}


def test_pyproject_when_read_then_every_package_folder_is_listed() -> None:
    """A package folder missing from pyproject would be left out of a wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        "bastion." + str(init.parent.relative_to(ROOT)).replace("/", ".")
        for top in MAPPED
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk - listed == set()
    assert {f"bastion.{top}" for top in MAPPED} <= listed
