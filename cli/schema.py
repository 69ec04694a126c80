"""Print the JSON Schema of a policy kind, or write every schema to a directory.

Editors use these for completion and hover help: start a policy file with
  # yaml-language-server: $schema=../schemas/breakers.schema.json

examples:
  bastion schema                       # list the kinds and their schema files
  bastion schema BreakerPolicy         # print one schema (kind or file stem)
  bastion schema --out schemas/        # write them all (what `make schemas` does)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bastion.adapters.replay_config import REPLAY_SCHEMA
from bastion.engine.errors import UsageError
from bastion.engine.schemas import published_schemas, schema_text
from bastion.service.alerting.schema import ALERTS_SCHEMA

HELP = __doc__ or ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", help="a kind (BreakerPolicy) or file stem (breakers)")
    parser.add_argument("--out", metavar="DIR", help="write every schema into DIR")


def _schemas() -> dict[str, dict[str, Any]]:
    """The engine's schemas, the service's --alerts file (kind: AlertPolicy) and the
    replay feed's --config (kind: ReplayFeed)."""
    return {**published_schemas(), "alerts": ALERTS_SCHEMA, "replay": REPLAY_SCHEMA}


def _lookup(name: str) -> dict[str, Any]:
    schemas = _schemas()
    for stem, schema in schemas.items():
        if name in (stem, schema.get("title", "").removeprefix("Bastion ")):
            return schema
    known = ", ".join(sorted(schemas))
    raise UsageError(f"no schema named {name!r}; known: {known}")


def run(args: argparse.Namespace) -> int:
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for stem, schema in _schemas().items():
            (out / f"{stem}.schema.json").write_text(schema_text(schema), encoding="utf-8")
            print(f"wrote {out / f'{stem}.schema.json'}")
        return 0
    if args.kind:
        sys.stdout.write(schema_text(_lookup(args.kind)))
        return 0
    for stem, schema in _schemas().items():
        title = schema.get("title", "").removeprefix("Bastion ")
        print(f"{title:<18} schemas/{stem}.schema.json")
    return 0
