"""The kubelet's atomic-writer layout of a ConfigMap mounted as a directory, on disk.

`mount` writes what the kubelet writes when the pod starts; `swap` replays, step by
step, what it does when the ConfigMap changes (pkg/volume/util/atomic_writer.go):
a new `..<timestamp>` folder, `..data_tmp` pointing at it, `..data_tmp` renamed over
`..data`, top-level symlinks for new keys, the old folder removed, top-level symlinks
of removed keys removed. `pause` runs between the steps (a test widens the windows).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.conftest import POLICIES

FIRST = "..2026_12_01_10_00_00.123456789"
SECOND = "..2026_12_01_10_05_00.987654321"
DATA = "..data"


def shipped() -> dict[str, str]:
    """The shipped policy set as ConfigMap keys: file name -> content."""
    return {path.name: path.read_text(encoding="utf-8") for path in POLICIES.glob("*.yaml")}


def edited(files: dict[str, str]) -> dict[str, str]:
    """A second version that edits the first and the last policy file (by name)."""
    changed = dict(files)
    for name in ("breakers.yaml", "roll.yaml"):
        changed[name] = changed[name].replace("  description: ", "  description: (v2) ", 1)
    return changed


def _write_version(root: Path, folder: str, files: dict[str, str]) -> None:
    version = root / folder
    version.mkdir()
    for name, text in files.items():
        (version / name).write_text(text, encoding="utf-8")


def mount(root: Path, files: dict[str, str], folder: str = FIRST) -> Path:
    """A ConfigMap directory at `root` holding `files`, as the kubelet mounts it."""
    root.mkdir(parents=True, exist_ok=True)
    _write_version(root, folder, files)
    os.symlink(folder, root / DATA)
    for name in files:
        os.symlink(f"{DATA}/{name}", root / name)
    return root


def swap(
    root: Path,
    files: dict[str, str],
    folder: str = SECOND,
    pause: Callable[[], object] = lambda: None,
) -> None:
    """Replace the ConfigMap's content with `files`, exactly in the kubelet's order."""
    old_folder = os.readlink(root / DATA)
    old_keys = set(os.listdir(root / old_folder))
    _write_version(root, folder, files)
    pause()
    os.symlink(folder, root / "..data_tmp")
    pause()
    os.rename(root / "..data_tmp", root / DATA)  # the one atomic step
    pause()
    for name in sorted(set(files) - old_keys):
        os.symlink(f"{DATA}/{name}", root / name)
    pause()
    shutil.rmtree(root / old_folder)
    pause()
    for name in sorted(old_keys - set(files)):
        (root / name).unlink()
