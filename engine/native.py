"""The order check's hot path compiled to C with mypyc, and whether what runs is current.

`can_execute` spends its time in Python around the rules engine: the context, the fact
the controls fill, the walk over the controls and the new state. Those modules
(:data:`MODULES`: engine/authority's check, walk, memory, pending, instrument rules and
every control) are plain, `mypy --strict`-typed Python, so mypyc compiles them, as it
compiles mypy and black, into one C extension (`bastion.engine.authority._native__mypyc`
plus a small extension per module). The check then costs about 0.7x as much
(bench/check/peer_nautilus.py prints which one it measured). The Python sources stay
the reference: without a C compiler, or with ``BASTION_NATIVE=0``, the same modules run
as Python and decide the same (the whole test suite runs either way).

    python -m bastion.engine.native build     # compile in place (make install does it)
    python -m bastion.engine.native status    # compiled or Python, and whether current
    python -m bastion.engine.native clean     # remove the compiled files: Python again

A compiled module is loaded instead of its `.py`, so a source edited after the build
would not run. The build records each source's SHA-256 (`_native.json` beside them);
importing `bastion.engine.authority` refuses a build that no longer matches its sources
(:func:`check_current`), naming the files and the command that fixes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

ENGINE = Path(__file__).resolve().parent
ROOT = ENGINE.parent  # the checkout: engine/, adapters/, service/, cli/
AUTHORITY = ENGINE / "authority"
MANIFEST = AUTHORITY / "_native.json"
GROUP = "bastion.engine.authority._native"
# The compiled modules, by source path under engine/ (the order check's per-order path).
MODULES: tuple[str, ...] = (
    "authority/check.py",
    "authority/walk.py",
    "authority/memory.py",
    "authority/layered.py",
    "authority/pending.py",
    "authority/instrument_rules.py",
    *sorted(
        f"authority/controls/{path.name}"
        for path in (AUTHORITY / "controls").glob("*.py")  # the registry too
    ),
)
OFF_ENV = "BASTION_NATIVE"  # "0": build nothing (and `status` says Python)


class StaleBuild(ImportError):
    """The compiled modules were built from other sources than those beside them."""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compiled_files(engine: Path = ENGINE) -> list[Path]:
    """The extension files of a build in this checkout (none: Python runs)."""
    authority = engine / "authority"
    return sorted(authority.rglob("*.so")) + sorted(authority.rglob("*.pyd"))


def stale(engine: Path = ENGINE, modules: Sequence[str] = MODULES) -> list[str]:
    """The compiled modules whose source changed since the build (or that the build's
    record does not cover); empty when nothing is compiled or all is current."""
    if not compiled_files(engine):
        return []
    try:
        recorded = json.loads((engine / "authority" / MANIFEST.name).read_text("utf-8"))
    except (OSError, ValueError):
        return list(modules)
    return [
        module
        for module in modules
        if not (engine / module).exists() or recorded.get(module) != digest(engine / module)
    ]


def check_current(engine: Path = ENGINE, modules: Sequence[str] = MODULES) -> None:
    """Raise StaleBuild when a compiled module no longer matches its source."""
    changed = stale(engine, modules)
    if changed:
        raise StaleBuild(
            f"the compiled order check (engine/authority, mypyc) was built from other "
            f"sources than {', '.join('engine/' + m for m in changed[:4])}"
            f"{' ...' if len(changed) > 4 else ''}: run `make install` (or `python -m "
            "bastion.engine.native build`) to compile them again, or `python -m "
            "bastion.engine.native clean` to run them as Python"
        )


def loaded() -> bool:
    """Whether the order check running in this process is the compiled one."""
    from bastion.engine.authority import check  # noqa: PLC0415 - after the freshness check

    return not str(check.__file__).endswith(".py")


def build() -> int:
    """Compile :data:`MODULES` in place; 0 on success, 1 when it could not (Python runs)."""
    if os.environ.get(OFF_ENV) == "0":
        print(f"{OFF_ENV}=0: the order check runs as Python (nothing compiled)")
        clean()
        return 0
    try:
        from mypyc.build import mypycify  # noqa: PLC0415 - the dev / build dependency
        from setuptools import setup  # noqa: PLC0415
    except ImportError as error:
        print(f"not compiled, the order check runs as Python: {error}", file=sys.stderr)
        return 1
    view = ROOT / "build" / "typecheck" / "bastion"  # as `make typecheck`: bastion.* names
    view.mkdir(parents=True, exist_ok=True)
    for package in ("engine", "adapters", "service", "cli"):
        link = view / package
        if not link.is_symlink():
            link.symlink_to(ROOT / package)
    clean()
    digests = {module: digest(ENGINE / module) for module in MODULES}
    cwd = Path.cwd()
    os.chdir(ROOT)  # setuptools places each extension by pyproject's package-dir
    try:
        extensions = mypycify(
            [f"build/typecheck/bastion/engine/{module}" for module in MODULES],
            opt_level="3",
            group_name=GROUP,
            target_dir="build/native",
        )
        setup(
            name="bastion-native",
            ext_modules=extensions,
            script_args=["-q", "build_ext", "--inplace", "--build-temp", "build/native/tmp"],
        )
    except (Exception, SystemExit) as error:  # a compiler error: Python runs, said loudly
        clean()
        print(f"not compiled, the order check runs as Python: {error}", file=sys.stderr)
        return 1
    finally:
        os.chdir(cwd)
    MANIFEST.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"compiled {len(MODULES)} modules of the order check (engine/authority) with mypyc")
    return 0


def clean() -> None:
    for path in compiled_files():
        path.unlink()
    MANIFEST.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "status"
    if command == "build":
        return build()
    if command == "clean":
        clean()
        print("removed the compiled order check: it runs as Python")
        return 0
    if command == "status":
        changed = stale()
        if changed:
            print(f"STALE: {', '.join(changed)} changed since the build: run `make install`")
            return 1
        state = "compiled (mypyc)" if compiled_files() else "Python"
        print(f"order check: {state}; {len(MODULES)} modules in the compiled set")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
