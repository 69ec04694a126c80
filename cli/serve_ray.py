"""`bastion serve --ray ADDRESS|local --partitions N`: the service spread over Ray actors.

What it builds (service/ray): the partition map pinned beside the --state file
(`<state>.partitions.json`), one actor per partition with its own state file
(`<state stem>.partition-K<suffix>`) and audit chain (`<audit>/partition-K/`), and the
head, which serves the usual HTTP front and writes its own chain (`<audit>/head/`).
`bastion audit verify <audit>` checks every chain. The head's own file,
`<state stem>.head<suffix>`, keeps the alert silences (--alerts: delivered at the head).
--once runs one cycle on every partition and exits as `bastion serve --once` does.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import structlog

from bastion.adapters.sources.clock import SystemClock
from bastion.cli.serve_http import http_options, start_http
from bastion.engine.errors import UsageError
from bastion.service.audit import AuditTrail, key_from_env
from bastion.service.auditor import Auditor
from bastion.service.console import mode_for
from bastion.service.feeds import make_feed, read_config
from bastion.service.ray.accounts import PartitionMap, open_map
from bastion.service.scheduler import wait_until

log = structlog.get_logger("bastion.service")

# A shadow candidate and snapshot recording stay single-process (README "Running on a
# Ray cluster"): each partition would shadow and record its own share only.
NOT_WITH_RAY = ("candidate", "record")
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
    from bastion.service.ray.head_alerts import HeadAlerts, head_state_path  # noqa: PLC0415
    from bastion.service.ray.metrics_merge import HeadMetrics  # noqa: PLC0415

    check_arguments(args)
    options = None if args.once else http_options(args)
    state = Path(args.state)
    if not state.parent.is_dir():
        raise UsageError(f"--state {state}: the directory {state.parent} does not exist")
    metrics = HeadMetrics()
    # --alerts FILE: AlertConfigError (exit 2); the head's silences file: exit 2 if unreadable
    alerts = HeadAlerts(metrics, alerts_file=args.alerts, state_path=head_state_path(state))
    specs = _specs(args, state, audit)
    auditor = _head_auditor(audit)
    if args.ray == "local":  # a Ray instance of its own, on the loopback interface only
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=args.ray, include_dashboard=False, log_to_driver=False)
    head = RayHead(
        specs,
        Path(args.policies),
        auditor=auditor,
        metrics=metrics,
        alerts=alerts,
        loops=not args.once,  # --once: the one cycle is asked for (`run_once`)
        health_interval_s=None if args.once else 1.0,
    )
    try:
        head.start()
        if options is not None:
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
    if options is None:
        return _run_once(args, head, auditor)
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
        f"partition(s) {_layout(head.partition_map)}, policies {head.version[:19]}, "
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


def _specs(args: argparse.Namespace, state: Path, audit: Path | None) -> list[Any]:
    """One PartitionSpec per partition, over the map pinned beside the --state file."""
    from bastion.service.ray.partition import PartitionSpec  # noqa: PLC0415 - the extra

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
    return specs


def _run_once(args: argparse.Namespace, head: Any, auditor: Auditor) -> int:
    """--once: one cycle on every partition (each through its gate, on the one version
    they all started with), printed as `bastion serve --once` prints one; then stop.
    Exit 2 when a partition evaluated nothing (its poll failed, or it did not answer),
    1 when a partition's state could not be saved, else 0."""
    import ray  # noqa: PLC0415 - the optional extra

    try:
        results = head.run_once()
    finally:
        head.stop()  # delivers the alerts raised, saves, closes the chains
        if auditor.trail is not None:
            auditor.trail.close()
        ray.shutdown()
    answered = {result["partition"] for result in results}
    failed = [
        f"partition {slot.index}: did not answer ({slot.error})"
        for slot in head.slots
        if slot.index not in answered
    ]
    for result in results:
        if not result["fresh"]:
            reason = " ".join(str(result["error"] or "no data").split())
            kind = "fatal" if result["fatal"] else "transient, retried"
            failed.append(
                f"partition {result['partition']}: the {args.adapter} poll failed ({kind}), "
                f"nothing was evaluated: {reason}"
            )
    if failed:  # nothing evaluated somewhere: never an all-clear (exit 2)
        for line in failed:
            print(f"bastion serve: error: {line}", file=sys.stderr)
        return 2
    json_lines = mode_for(args.log_format, sys.stdout.isatty()) == "json"
    for result in results:
        partition = result["partition"]
        if json_lines:  # the actors' logs stay theirs: the decisions are told here
            for decision in result["decisions"]:
                log.info("decision_made", partition=partition, **decision)
            log.info("cycle_evaluated", partition=partition, **result["fields"])
            continue
        accounts = ", ".join(head.partition_map.accounts_of(partition)) or "-"
        print(f"partition {partition} ({accounts}):")
        sys.stdout.write(result["text"])
        for line in result["unevaluable"]:
            print(line)
    unsaved = [r for r in results if r["save_failed"]]
    for result in unsaved:
        print(
            f"bastion serve: error: partition {result['partition']}: the save of its state "
            f"failed ({result['save_failed']}); the state since the last good save is lost",
            file=sys.stderr,
        )
    return 1 if unsaved else 0


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
