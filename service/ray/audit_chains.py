"""`bastion audit verify DIR` over the chains of `bastion serve --ray`: DIR/head/ and
DIR/partition-K/, one hash chain each, verified together (all must be intact)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bastion.service.audit_format import FILE_GLOB
from bastion.service.audit_verify import VerifyResult, verify


@dataclass(frozen=True, slots=True)
class ChainResult:
    name: str  # the subdirectory: head, partition-0, ...
    result: VerifyResult


def chain_directories(directory: Path) -> list[Path]:
    """The chains under `directory` when it holds no audit file itself: its
    subdirectories that do (head first, then partitions in number order)."""
    if not directory.is_dir() or any(directory.glob(FILE_GLOB)):
        return []
    found = [d for d in directory.iterdir() if d.is_dir() and any(d.glob(FILE_GLOB))]
    return sorted(found, key=_order)


def verify_chains(directory: Path, *, key: bytes | None) -> list[ChainResult]:
    """Every chain under `directory`, each checked as `bastion audit verify` checks one."""
    return [ChainResult(d.name, verify(d, key=key)) for d in chain_directories(directory)]


def render_chains(results: list[ChainResult], render_one: Callable[[VerifyResult], str]) -> str:
    """One block per chain (its problems, then its summary line) and a total line."""
    lines: list[str] = []
    for chain in results:
        lines += [f"{chain.name}: {line}" for line in render_one(chain.result).splitlines()]
    bad = [chain.name for chain in results if not chain.result.ok]
    records = sum(chain.result.records for chain in results)
    if bad:
        lines.append(f"TAMPERED: {len(bad)} of {len(results)} chain(s): {', '.join(bad)}")
    else:
        lines.append(f"intact: {len(results)} chains, {records} records")
    return "\n".join(lines) + "\n"


def _order(path: Path) -> tuple[int, int, str]:
    name = path.name
    if name == "head":
        return (0, 0, name)
    prefix, _, number = name.rpartition("-")
    if prefix == "partition" and number.isdigit():
        return (1, int(number), name)
    return (2, 0, name)
