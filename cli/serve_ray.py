"""`bastion serve --ray ADDRESS|local --partitions N`: the service spread over Ray actors.

What it builds (service/ray): the partition map pinned beside the --state file
(`<state>.partitions.json`), one actor per partition with its own state file
(`<state stem>.partition-K<suffix>`) and audit chain (`<audit>/partition-K/`), and the
head, which serves the usual HTTP front and writes its own chain (`<audit>/head/`).
`bastion audit verify <audit>` checks every chain.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from bastion.adapters.sources.clock import SystemClock
from bastion.cli.serve_http import http_options, start_http
from bastion.engine.errors import UsageError
from bastion.service.audit import AuditTrail, key_from_env
from bastion.service.auditor import Auditor
from bastion.service.feeds import make_feed, read_config
from bastion.service.ray.accounts import PartitionMap, open_map
from bastion.service.scheduler import wait_until

NOT_WITH_RAY = ("once", "candidate", "record", "alerts")
# Off: Ray keeps a local instance on 127.0.0.1 instead of the machine's routable address.
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
EXTRA_HINT = "install the bastion-risk[ray] extra (in a clone: pip install -e '.[ray]')"


def partition_paths(state: Path, audit: Path | None, index: int) -> tuple[str, str | None]:
    """One partition's --state file and audit directory."""
    state_file = state.with_name(f"{state.stem}.partition-{index}{state.suffix}")
    return str(state_file), None if audit is None else str(audit / f"partition-{index}")


def map_path(state: Path) -> Path:
    return state.with_name(f"{state.stem}.partitions.json")


def check_arguments(args: argparse.Namespace) -> None:
    """UsageError (exit 2) for what --ray does not do (yet), before anything starts."""
    for name in NOT_WITH_RAY:
        if getattr(args, name, None):
            flag = f"--{name.replace('_', '-')}"
            raise UsageError(f"{flag} is not available with --ray yet: run it without --ray")
    if args.partitions < 1:
        raise UsageError("--partitions must be 1 or more")
    if not args.state:
        raise UsageError(
            "--ray needs --state FILE: a partition whose actor dies is started again from "
            "its saved state (<FILE stem>.partition-K<suffix>), so that nothing it "
            "acknowledged is lost"
        )
    if args.ray == "local":  # before Ray is imported: it reads the setting at import
        # Ray turns 127.0.0.1 into the machine's routable address (its GCS, raylet and
        # agents would listen there: unauthenticated ports, open to the network) unless
        # its cluster mode is off; the processes it starts inherit the setting.
        os.environ[LOOPBACK_ONLY_ENV] = "0"
    try:
        import ray  # noqa: F401, PLC0415 - the optional extra
    except ImportError:
        raise UsageError(f"--ray needs Ray: {EXTRA_HINT}") from None


def run(args: argparse.Namespace, audit: Path | None) -> int:
    """Start Ray (or join ADDRESS), the partitions and the head; serve until a signal."""
    import ray  # noqa: PLC0415 - the optional extra

    from bastion.service.ray.head import RayHead  # noqa: PLC0415 - imports ray
    from bastion.service.ray.metrics_merge import HeadMetrics  # noqa: PLC0415
    from bastion.service.ray.partition import PartitionSpec  # noqa: PLC0415

    check_arguments(args)
    options = http_options(args)
    state = Path(args.state)
    if not state.parent.is_dir():
        raise UsageError(f"--state {state}: the directory {state.parent} does not exist")
    config = read_config(args.config)
    speed = (
        {"sim": 60.0, "replay": 3600.0}.get(args.adapter, 1.0) if args.speed is None else args.speed
    )
    partition_map = open_map(
        map_path(state), args.partitions, lambda: _venue_accounts(args, config, speed)
    )
    specs = []
    for index in range(args.partitions):
        state_file, audit_dir = partition_paths(state, audit, index)
        specs.append(
            PartitionSpec(
                index,
                partition_map,
                adapter=args.adapter,
                config=config,
                speed=speed,
                seed=args.seed,
                state_path=state_file,
                audit_dir=audit_dir,
            )
        )
    auditor = _head_auditor(audit)
    if args.ray == "local":  # a Ray instance of its own, on the loopback interface only
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=args.ray, include_dashboard=False, log_to_driver=False)
    head = RayHead(specs, Path(args.policies), auditor=auditor, metrics=HeadMetrics())
    try:
        head.start()
        head.watch_policies()
        http = start_http(args, options, head, head.metrics)
    except BaseException as error:
        head.stop()
        ray.shutdown()
        if isinstance(error, ray.exceptions.RayError):  # an actor could not start: exit 2
            raise UsageError(
                f"a partition could not start (its state file, audit chain or policies): "
                f"{str(error)[-1500:]}"
            ) from None
        raise
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    signal.signal(
        signal.SIGHUP,
        lambda *_: threading.Thread(
            target=head.reload_policies, args=("sighup",), daemon=True
        ).start(),
    )
    print(
        f"bastion serve: {args.adapter} feed on Ray ({args.ray}), {args.partitions} "
        f"partition(s) {_layout(partition_map)}, policies {head.version[:19]}, "
        f"{http.url}/metrics (Ctrl-C to stop)",
        file=sys.stderr,
    )
    try:
        wait_until(stop)
    finally:
        http.stop()
        heads = head.stop()
        if auditor.trail is not None:
            auditor.trail.close()
        ray.shutdown()
    for index, chain_head in enumerate(heads):
        if chain_head is not None and audit is not None:
            print(
                f"bastion serve: partition {index}: audit chain {audit}/partition-{index} "
                f"ends at record {chain_head['seq']} ({chain_head['hash'][:16]})",
                file=sys.stderr,
            )
    return 0


def _venue_accounts(args: argparse.Namespace, config: dict[str, Any], speed: float) -> list[str]:
    """The accounts the venue lists now (the first start deals them to partitions)."""
    feed = make_feed(
        args.adapter, config, wall=SystemClock(), speed=speed, seed=args.seed, environ=os.environ
    )
    return [account.id for account in feed.adapter.fetch_accounts()]


def _head_auditor(audit: Path | None) -> Auditor:
    if audit is None:
        return Auditor(None)
    (audit / "head").mkdir(parents=True, exist_ok=True)
    trail = AuditTrail.open(audit / "head", clock=SystemClock().now, key=key_from_env(os.environ))
    return Auditor(trail)


def _layout(partition_map: PartitionMap) -> str:
    return "; ".join(
        f"{index}: {', '.join(partition_map.accounts_of(index)) or '-'}"
        for index in range(partition_map.partitions)
    )
