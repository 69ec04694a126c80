"""Run the evaluation service: poll a feed, evaluate the policies, repeat.

The cadence follows the engine: the interval of the most escalated position (300 /
60 / 30 / 1 s by default, in market seconds; divided by --speed for sim and replay).
Policy files are watched and hot-reloaded atomically; a broken edit is rejected and
the last good set keeps serving (SIGHUP or POST /-/reload reload at once).
Metrics on /metrics, health on /healthz and /readyz, policies on /api/v1/policies.
Trading systems ask POST /api/v1/check before every order (the body is a request as
`bastion check --request` reads it); its memory (submit times, overrides, grace
clocks) is kept in the --state file with the engine state. A tripped breaker is reset
with POST /api/v1/breakers/reset (who and why, as `bastion eval --reset`).

examples:
  bastion serve                                   # sim feed at 60x, http://127.0.0.1:9108
  bastion serve --once                            # one cycle, print the decisions, exit
  curl -s -d '{"account_id": "gen-01", "symbol": "QQQ", "action": "open", "target_size": 10}' \\
      http://127.0.0.1:9108/api/v1/check          # may I send this order?
  curl -s -d '{"breaker": "daily_loss_usd", "subject": "account:gen-01",
      "by": "alice", "reason": "loss booked, limits reviewed"}' \\
      http://127.0.0.1:9108/api/v1/breakers/reset # reset a tripped breaker, who and why
  bastion serve --adapter replay --config replay.yaml --speed 86400
  ALPACA_API_KEY_ID=... ALPACA_API_SECRET_KEY=... bastion serve --adapter alpaca

Venue credentials come from environment variables only (see README "Venue adapters").
Exit 0 on SIGINT/SIGTERM, 2 when the policies, the config or the adapter cannot be
set up (the reason is printed).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from bastion.adapters.builder_state import BuilderState
from bastion.adapters.sources.clock import SystemClock
from bastion.cli.eval import render_text
from bastion.cli.files import read_json, write_json_atomic
from bastion.engine.errors import UsageError
from bastion.engine.state import State
from bastion.service.feeds import ADAPTERS, make_feed, read_config
from bastion.service.http import HttpServer
from bastion.service.logs import configure_logging
from bastion.service.metrics import ServiceMetrics
from bastion.service.reloader import PolicyReloader
from bastion.service.runner import Cycle, Service, record_reload, state_path_payload
from bastion.service.scheduler import CycleScheduler, wait_until

HELP = __doc__ or ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        default="policies",
        metavar="DIR",
        help="policy directory, watched for changes (default: policies)",
    )
    parser.add_argument(
        "--adapter",
        choices=ADAPTERS,
        default="sim",
        help="data feed (default: sim, which needs nothing)",
    )
    parser.add_argument("--config", metavar="FILE", help="adapter settings (YAML)")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address")
    parser.add_argument("--port", type=int, default=9108, help="HTTP port (0: any free port)")
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="market seconds per wall second: sim and replay only (default 60 for sim, "
        "3600 for replay); live venues always run in real time",
    )
    parser.add_argument("--seed", type=int, default=7, help="sim seed")
    parser.add_argument(
        "--state",
        metavar="FILE",
        help="keep the engine state here across restarts (written atomically)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="one full cycle (poll, evaluate, record), print it, exit",
    )
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default="auto",
        help="auto: console in a terminal, JSON otherwise",
    )


def build_service(args: argparse.Namespace, environ: Any = None) -> Service:
    live = args.adapter in ("alpaca", "binance", "kraken")
    if live and args.speed not in (None, 1.0):
        raise UsageError(f"--speed applies to sim and replay; {args.adapter} runs in real time")
    default = {"sim": 60.0, "replay": 3600.0}.get(args.adapter, 1.0)
    speed = default if args.speed is None else args.speed
    if speed <= 0:
        raise UsageError("--speed must be above 0")
    wall = SystemClock()
    feed = make_feed(
        args.adapter,
        read_config(args.config),
        wall=wall,
        speed=speed,
        seed=args.seed,
        environ=os.environ if environ is None else environ,
    )
    metrics = ServiceMetrics()
    reloader = PolicyReloader(
        Path(args.policies),
        now=wall.now,  # reload times are for operators: real time, even under --speed
        on_event=lambda event: record_reload(service, event),
    )
    loaded = reloader.load_initial()  # PolicySetError (exit 2) when the set is bad
    metrics.reload_succeeded(loaded.loaded_at, loaded.version, loaded.versions())
    state, builder_state = State(), BuilderState()
    if args.state and Path(args.state).exists():
        saved = read_json(args.state, "state")
        try:
            state = State.from_dict(saved["engine"])
            builder_state = BuilderState.from_dict(saved["builder"])
        except (KeyError, TypeError) as error:
            raise UsageError(f"{args.state}: not a `bastion serve` state file ({error})") from error
    # Given at construction: the order authority starts from this state's memory too.
    service = Service(feed, reloader, metrics, state=state, builder_state=builder_state)
    return service


def run(args: argparse.Namespace) -> int:
    console = sys.stdout.isatty() and not args.once
    if console and args.log_format == "auto":
        # The console view shows every decision; logs add only warnings and errors.
        configure_logging(json=False, level="warning")
    else:
        configure_logging(json={"auto": None, "json": True, "console": False}[args.log_format])
    service = build_service(args)
    if args.once:
        cycle = service.cycle()
        _save(args, service)
        sys.stdout.write(render_text(cycle.decisions, service.state, cycle.interval_s, False))
        return 0
    http = HttpServer(args.host, args.port, service, service.metrics)
    try:
        http.start()
    except OSError as error:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port} ({error.strerror or error}); "
            "pass another --port, or --port 0 for any free one"
        ) from error
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # A signal handler runs on the main thread: reloading there could re-enter the
    # reload lock on a second SIGHUP. Hand it to a thread.
    signal.signal(
        signal.SIGHUP,
        lambda *_: threading.Thread(
            target=service.reloader.reload, args=("sighup",), daemon=True
        ).start(),
    )

    def after(cycle: Cycle) -> None:
        _save(args, service)
        if console:
            _print_console(service, cycle)

    scheduler = CycleScheduler(service, on_cycle=after)
    service.on_reset_queued = scheduler.run_soon  # a manual reset is applied at once
    service.reloader.start_watching()
    scheduler.start()
    print(
        f"bastion serve: {args.adapter} feed, policies {service.reloader.current.version[:19]},"
        f" {http.url}/metrics (Ctrl-C to stop)",
        file=sys.stderr,
    )
    try:
        wait_until(stop)
    finally:
        scheduler.stop()
        service.reloader.stop()
        http.stop()
        _save(args, service)  # what orders checked since the last cycle remembered
    return 0


def _save(args: argparse.Namespace, service: Service) -> None:
    if args.state:
        write_json_atomic(args.state, state_path_payload(service))


def _print_console(service: Service, cycle: Cycle) -> None:
    """The live console view: one line per cycle, plus the decisions it made."""
    states = " ".join(f"{k}:{v}" for k, v in sorted(service.state.trading_states.items()))
    escalated = len(service.state.escalations)
    wall = service.wall_interval_s(cycle)
    print(
        f"{cycle.at:%H:%M:%S} market  poll {'ok' if cycle.fresh_data else 'FAILED'}  "
        f"next in {cycle.interval_s} s ({wall:g} s wall)  escalated {escalated}  {states}"
    )
    for decision in cycle.decisions:
        actions = f" -> {', '.join(decision.actions)}" if decision.actions else ""
        print(f"    {decision.kind:<13} {decision.subject.label():<24} {decision.outcome}{actions}")
