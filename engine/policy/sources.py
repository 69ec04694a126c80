"""Which files form a policy set, and where each is read from (ConfigMap layout).

Hidden entries (a name starting with ".") below a directory are never policies:
editor temporaries, VCS folders, and the kubelet's atomic-writer layout of a
Kubernetes ConfigMap mounted as a directory:

    policies/
      ..2026_12_01_10_00_00.123456789/   the real files of one version
      ..data -> ..2026_12_01_10_00_00.123456789
      limits.yaml -> ..data/limits.yaml   one symlink per key

The kubelet updates it by writing a new timestamped folder, pointing `..data_tmp` at
it, renaming `..data_tmp` over `..data` (the one atomic step), then adding and
removing top-level symlinks and removing the old folder. A directory holding `..data`
is read through it: its keys are listed from the folder `..data` resolves to (never
from the top-level symlinks, which lag behind a swap), read from that folder, and
named by their top-level path, the name the user knows. `Listing.current()` tells
whether every `..data` still points where it did: the loader reads the set again
when it does not, so a swap in the middle of a read never mixes two versions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.engine.errors import UsageError

POLICY_SUFFIXES = (".yaml", ".yml")
DATA_LINK = "..data"  # the kubelet's atomic-writer symlink to the current version


def is_hidden(name: str) -> bool:
    """A dot-file or dot-folder (`.git`, `.x.yaml.swp`, `..data`, `..2026_…`)."""
    return name.startswith(".")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One policy file: `path` is the name findings show, `read_from` where its bytes
    are (the same path, except inside a ConfigMap directory)."""

    path: Path
    read_from: Path


@dataclass(frozen=True, slots=True)
class Listing:
    """The files found, and what each ConfigMap directory's `..data` pointed to then."""

    files: tuple[SourceFile, ...]
    links: tuple[tuple[Path, str], ...] = ()

    def current(self) -> bool:
        """Whether every `..data` still points where it did when listed (no swap since)."""
        return all(_data_link(directory) == target for directory, target in self.links)


def data_target(directory: Path) -> Path | None:
    """The folder `directory/..data` points to now; None when it is no ConfigMap mount."""
    target = _data_link(directory)
    return None if target is None else directory / target


def list_sources(paths: Sequence[str | Path]) -> Listing:
    """Policy files named, or found (recursively, hidden entries skipped) under the
    given directories, sorted per directory. UsageError for a path that is missing;
    OSError when a ConfigMap version disappears while it is listed (list again)."""
    files: list[SourceFile] = []
    links: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(_walk(path, links))
        elif path.is_file():
            files.append(SourceFile(path, path))
        else:
            raise UsageError(f"{path}: no such file or directory")
    unique = {source.path: source for source in reversed(files)}
    return Listing(tuple(s for s in files if unique[s.path] is s), tuple(links))


def _walk(directory: Path, links: list[tuple[Path, str]]) -> list[SourceFile]:
    found: list[SourceFile] = []
    link = _data_link(directory)
    if link is not None:
        links.append((directory, link))
        target = directory / link
        found.extend(SourceFile(directory / p.relative_to(target), p) for p in _files(target))
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if is_hidden(entry.name) or (link is not None and _through_data(entry.path)):
            continue  # a ConfigMap key: listed from the `..data` folder above
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            found.extend(_walk(path, links))
        elif path.suffix in POLICY_SUFFIXES and path.is_file():
            found.append(SourceFile(path, path))
    return sorted(found, key=lambda source: source.path)


def _files(directory: Path) -> Iterable[Path]:
    """Policy files under a ConfigMap version folder (it never changes once written)."""
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if is_hidden(entry.name):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _files(path)
        elif path.suffix in POLICY_SUFFIXES and path.is_file():
            yield path


def _through_data(path: str) -> bool:
    try:
        target = os.readlink(path)
    except OSError:  # not a symlink
        return False
    return target == DATA_LINK or target.startswith(DATA_LINK + "/")


def _data_link(directory: Path) -> str | None:
    try:
        return os.readlink(directory / DATA_LINK)
    except OSError:  # no `..data`, or not a symlink
        return None
