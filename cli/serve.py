"""Run the evaluation service: poll a feed, evaluate the policies, repeat.

The cadence follows the engine: the interval of the most escalated position (300 /
60 / 30 / 1 s by default, in market seconds; divided by --speed for sim and replay).
Policy files are watched and hot-reloaded atomically; a broken edit is rejected and
the last good set keeps serving (SIGHUP or POST /-/reload reload at once). A
Kubernetes ConfigMap mounted as the --policies directory is read through its ..data
symlink: each kubelet swap is one reload of the whole new set. A reload
that would remove a breaker, limit, protection or escalation level (an emptied or
deleted file, enforce -> shadow) is refused, 422 with each removal's key, and logged
as reload_refused_removes_protection with the exact request that accepts it: an
officer posts {"accept_removal": [KEY, ...]} to /-/reload (README "Policy-set guards").
Metrics on /metrics, health on /healthz and /readyz, policies on /api/v1/policies.
Trading systems ask POST /api/v1/check before every order (the body is a request as
`bastion check --request` reads it; a question, it records nothing) and report every
order they send to POST /api/v1/orders (the same body plus "order_id"): only reported
orders count toward the submit rate, whipsaw round trips and override cooldowns. That
memory and the queued resets are saved in the --state file (with a digest: a file
edited by hand is refused unless --accept-edited-state) before the answer is sent.
A tripped breaker is reset with POST /api/v1/breakers/reset (who and why, as
`bastion eval --reset`). History-protection locks (ProtectionPolicy `history:`) are
listed under `locks` of GET /api/v1/status and released by an officer with
POST /api/v1/locks/release (who and why; at once, audited).

A shadow candidate (--candidate DIR) is evaluated beside the serving set on every cycle
and order check, into its own state in memory, and never enforces: what it decides
differently (trading states, breakers, escalation levels, check outcomes and sizes) is
counted in bastion_candidate_disagreements_total{kind}, logged (candidate_disagreed),
shown under `candidate` of GET /api/v1/status and audited. It is loaded, linted and
guarded as a reload (refused: exit 2) and watched like --policies. An officer swaps it
in with POST /-/promote and returns to the previous version with POST /-/rollback (the
last --keep-versions versions are kept in memory); both go through the reload guard.

Every decision, order check and report, override, reset, reload and auth refusal is
appended to a hash-chained audit trail (--audit DIR; default audit/ beside the --state
file, else ./audit/; HMAC-keyed with BASTION_AUDIT_KEY). Nothing is acknowledged that the
trail does not hold: while it cannot be written /readyz is 503 and checks, reports and
resets answer 503. At stop the trail's head is printed with the `bastion audit verify
--anchor` command to check it later.

Who may call: without --auth the API answers loopback callers only (--host must be
loopback). With --auth FILE every /api and /-/ request needs `Authorization: Bearer
<token>` of a principal in FILE (tokens from `bastion auth token NAME --role ROLE`):
viewer reads, trader checks and reports orders, operator resets breakers and reloads,
officer accepts a reload that removes protection and releases history locks.
--tls-cert/--tls-key serve HTTPS.

The status page is GET / (open it in a browser: http://127.0.0.1:9108/): accounts and
trading states, breakers not armed with the value they tripped at, threshold, since and
cooldown, escalated positions, recent decisions, reloads and alerts, with reset (and
silence) buttons for an operator. With --auth it asks for a token once and shows nothing
without one. GET /api/v1/snapshot answers the last cycle's snapshot, and --record DIR
keeps every cycle's snapshot and starting state (the newest --record-keep N) to
reproduce a cycle with `bastion eval --snapshot F.snapshot.json --state F.state.json`.

Alerts (a rejected reload, a critical breaker trip, a failed evaluation or write) are
logged as alert_raised. With --alerts FILE (kind: AlertPolicy, checked by `bastion lint
FILE`) they are also delivered to webhook, slack, email, alertmanager or log receivers,
routed by severity, kind, account and breaker, grouped (one message per burst),
deduplicated, repeated, throttled per receiver, and resolved when the breaker re-arms or
is reset. Delivery runs on its own threads behind a bounded queue: a cycle never waits
for it. Secrets come from the variables the file names (`*_env`); an unset one is exit 2.
POST /api/v1/silences (operator, audited) holds back matching alerts until a time.

examples:
  bastion serve                                   # sim feed at 60x, http://127.0.0.1:9108
  bastion serve --once                            # one cycle, print the decisions, exit
  curl -s -d '{"account_id": "gen-01", "symbol": "QQQ", "action": "open", "target_size": 10}' \\
      http://127.0.0.1:9108/api/v1/check          # may I send this order?
  curl -s -d '{"order_id": "A-1", "account_id": "gen-01", "symbol": "QQQ", "action": "open",
      "target_size": 10}' http://127.0.0.1:9108/api/v1/orders   # I sent it: remember it
  curl -s -d '{"breaker": "daily_loss_usd", "subject": "account:gen-01",
      "by": "alice", "reason": "loss booked, limits reviewed"}' \\
      http://127.0.0.1:9108/api/v1/breakers/reset # reset a tripped breaker, who and why
  curl -s -d '{"lock": "default-protection/stoploss-guard/gen-01/account",
      "by": "alice", "reason": "stops reviewed"}' \\
      http://127.0.0.1:9108/api/v1/locks/release  # release a history lock (officer)
  bastion serve --record recorded/ --record-keep 500   # keep each cycle's snapshot
  curl -s http://127.0.0.1:9108/api/v1/snapshot -o SNAPSHOT.json   # the last one
  bastion serve --alerts examples/alerts/alerts.yaml   # deliver alerts (README "Alerts")
  curl -s -d '{"matchers": {"breaker": "stale_data"}, "reason": "feed maintenance",
      "duration_s": 3600}' http://127.0.0.1:9108/api/v1/silences   # silence (operator)
  bastion serve --candidate candidate/            # shadow a candidate policy set
  curl -s -X POST http://127.0.0.1:9108/-/promote # the candidate serves (officer)
  curl -s -X POST http://127.0.0.1:9108/-/rollback  # back to the previous version (officer)
  bastion serve --adapter replay --config examples/replay/replay.yaml --speed 86400
  bastion serve --host 0.0.0.0 --auth principals.yaml --tls-cert cert.pem --tls-key key.pem
  bastion serve --ray local --partitions 2 --state state/bastion.json   # on Ray actors
  ALPACA_API_KEY_ID=... ALPACA_API_SECRET_KEY=... bastion serve --adapter alpaca

Venue credentials come from environment variables only (see README "Venue adapters").
--adapter replay ends by itself after the cycle that sees the last bar, printing the
summary `bastion replay` prints (time ACTIVE / REDUCING / HALTED per account, trips,
escalations, roll recommendations), and exits 0. A replay is evaluated at the close of
its latest bar and the sim is polled at one market moment per cycle: replayed bars are
never stale against wall time, at any --speed.

The console: one line per change — the subject, the breaker or level id, the value
against its threshold, the action and the trading state that results (TRIP, HELD,
REARM, RESET, STATE, ESCALATE, ROLL, REGIME, RELOAD, REFUSED) — in a terminal above a
live status panel. At Ctrl-C, SIGTERM or the end of a replay: a summary (trips, time per
trading state, escalations, alerts raised, and the curl that resets each breaker still
tripped). Without a terminal (piped, --log-format json) stdout is JSON lines only:
decision_made, regime_changed, replay_summary, run_summary (--once: cycle_evaluated).
Exit 0 on SIGINT/SIGTERM, 1 when the final save of --state fails (one line names the
file: what changed since the last good save is lost), 2 when the policies, the
--candidate (refused as a reload would be), the config, the adapter or the --state
file or its directory cannot be set up (the reason is
printed). A failed save while running does not stop the service: /readyz turns 503
("state save failed: ..."), bastion_persist_failures_total{what="state"} counts it, and
no order is approved until a save works again.
With --once: exit 0 only when the poll succeeded and the evaluation ran (positions the
venue sent but that cannot be evaluated are listed as "unevaluable: ..."); 2 when the
adapter cannot be set up (a refused key, a benchmark the venue does not list) or the
poll failed (401 / 403, an unknown symbol, an unreadable payload, or a transient failure
that outlived its retries), with the reason on stderr in one line.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from bastion.adapters.sources.clock import SystemClock
from bastion.cli.eval import render_text
from bastion.cli.serve_http import add_http_arguments, http_options, start_http
from bastion.engine.errors import UsageError
from bastion.engine.state import StateError
from bastion.service.alerting.wiring import open_alerts
from bastion.service.audit import AuditTrail, key_from_env
from bastion.service.auditor import Auditor
from bastion.service.candidate import Candidate
from bastion.service.console import Console, make_console, mode_for, once_fields
from bastion.service.console_summary import ResetHint
from bastion.service.feeds import ADAPTERS, make_feed, read_config
from bastion.service.logs import configure_logging
from bastion.service.metrics import ServiceMetrics
from bastion.service.reload_events import log_lint_warnings, record_reload
from bastion.service.reloader import PolicyReloader
from bastion.service.replay_end import ReplayEnd
from bastion.service.runner import GC_THRESHOLDS, Cycle, Service
from bastion.service.scheduler import CycleScheduler, wait_until
from bastion.service.snapshot_record import DEFAULT_KEEP as RECORD_KEEP
from bastion.service.snapshot_record import SnapshotRecorder
from bastion.service.state_store import ACCEPT_EDITED_FLAG, LoadedState, StateStore
from bastion.service.versions import DEFAULT_KEEP

HELP = __doc__ or ""
CHECK_SWITCH_INTERVAL_S = 0.001  # the GIL hand-over bound while a cycle runs (see run)
log = structlog.get_logger("bastion.service")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        default="policies",
        metavar="DIR",
        help="policy directory, watched for changes (default: policies)",
    )
    parser.add_argument(
        "--candidate",
        metavar="DIR",
        help="a shadow candidate policy set, evaluated beside the serving one on every "
        "cycle and order check, never enforcing; disagreements are counted, logged, shown "
        "in /api/v1/status and audited. Loaded, linted and guarded as a reload (refused: "
        "exit 2) and watched like --policies. An officer promotes it with POST /-/promote",
    )
    parser.add_argument(
        "--keep-versions",
        type=int,
        default=DEFAULT_KEEP,
        metavar="N",
        help="policy versions kept in memory for POST /-/rollback (default: "
        f"{DEFAULT_KEEP}; older ones are in the audit trail only)",
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
    add_http_arguments(parser)  # --auth, --auth-metrics, --tls-cert, --tls-key
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
        help="keep the engine state, the order memory, the queued resets and the alert "
        "silences here across restarts (written atomically and fsynced after every cycle, "
        "reported order, reset and silence; the directory must exist and be writable: "
        "exit 2 otherwise)",
    )
    parser.add_argument(
        ACCEPT_EDITED_FLAG,
        action="store_true",
        help="start from a --state file whose digest does not match (edited by hand); "
        "without it such a file is refused (exit 2). Logged as state_edited_accepted",
    )
    parser.add_argument(
        "--audit",
        metavar="DIR",
        help="append the audit trail here: one hash-chained JSON line per decision, order "
        "check and report, reset, reload and auth refusal (default: audit/ beside the "
        "--state file, else ./audit/; HMAC-keyed when BASTION_AUDIT_KEY is set). "
        "Verify with `bastion audit verify DIR`",
    )
    parser.add_argument(
        "--no-audit",
        action="store_true",
        help="write no audit trail (logged as a warning at start; for throwaway runs)",
    )
    parser.add_argument(
        "--alerts",
        metavar="FILE",
        help="deliver alerts as this AlertPolicy file says (receivers: webhook, slack, "
        "email, alertmanager, log; routes, grouping, throttling: README 'Alerts'). "
        "Linted at start like `bastion lint FILE`: an error, or a *_env variable that is "
        "not set, is exit 2. Without it alerts are log events only",
    )
    parser.add_argument(
        "--record",
        metavar="DIR",
        help="keep every cycle's snapshot and the engine state it started from in DIR "
        "(made if missing; <cycle>.snapshot.json and <cycle>.state.json, written atomically) "
        "to reproduce a cycle later with `bastion eval --snapshot ... --state ...`; a failed "
        "write is counted and logged and never stops a cycle",
    )
    parser.add_argument(
        "--record-keep",
        type=int,
        default=RECORD_KEEP,
        metavar="N",
        help=f"with --record: keep the newest N cycles, delete older ones (default {RECORD_KEEP})",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="one full cycle (poll, evaluate, record), print it (text in a terminal or "
        "with --log-format console, else one cycle_evaluated JSON line), exit",
    )
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default="auto",
        help="auto (default): a live console view in a terminal, JSON lines otherwise; "
        "console: plain console lines (one per change) even when piped; json: JSON lines "
        "only, never mixed with plain text",
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS|local",
        help="scale out on Ray (the bastion-risk[ray] extra): accounts and their feeds are "
        "split across --partitions actors, each polling and evaluating its own accounts "
        "with its own state file (<state>.partition-K.json) and audit chain "
        "(<audit>/partition-K/); checks and reports go to the account's partition; reloads "
        "reach every partition behind a version barrier; escalations and lock releases "
        "go to the partition holding the position or lock; alerts and silences are the "
        "head's (--alerts delivers there; silences saved in <state>.head.json); --once "
        "runs one cycle on every partition. --candidate and --record are refused (exit "
        "2). `local` starts Ray here; an ADDRESS (host:6379, ray://host:10001, auto) joins "
        "a cluster. Needs --state. README 'Running on a Ray cluster'",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=2,
        metavar="N",
        help="with --ray: the number of partition actors (default 2); pinned in "
        "<state>.partitions.json at the first start (another N is refused: exit 2)",
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
    log_lint_warnings(reloader.warnings, loaded.version)  # it serves; a slip is still shown
    metrics.reload_succeeded(loaded.loaded_at, loaded.version, loaded.versions())
    store, saved = _open_state(args)
    if args.keep_versions < 1:
        raise UsageError("--keep-versions must be 1 or more (the serving version is kept)")
    alerts, dispatcher = open_alerts(  # --alerts FILE: AlertConfigError (exit 2) when bad
        getattr(args, "alerts", None), metrics, wall.now, os.environ if environ is None else environ
    )
    service = Service(
        feed, reloader, metrics, alerts=alerts, store=store, keep_versions=args.keep_versions
    )
    service.alert_dispatcher = dispatcher
    if dispatcher is not None:  # its threads; stopped (what is due sent) by _close_audit
        dispatcher.start()
    service.auditor = _open_audit(args, service, wall.now, environ)
    if saved is not None:
        try:  # the order authority starts from this state's memory too
            service.restore(saved.body)
        except StateError as error:
            raise UsageError(f"{args.state}: {error}") from error
        service.state_edited = saved.edited  # for the audit trail: started from an edit
        if saved.legacy:
            log.warning("state_legacy_accepted", path=args.state, format="1 (no digest)")
        if saved.edited:
            log.warning("state_edited_accepted", path=args.state, flag=ACCEPT_EDITED_FLAG)
            service.auditor.lifecycle(
                "state_edit_accepted", path=str(args.state), flag=ACCEPT_EDITED_FLAG
            )
    if args.candidate:  # from the serving state on; refused as a reload would be: exit 2
        service.candidate = Candidate.open(Path(args.candidate), service, wall.now)
    service.auditor.lifecycle(
        "service_started",
        adapter=args.adapter,
        policy_version=loaded.version,
        policies=loaded.versions(),
        lint_warnings=[warning.as_dict() for warning in reloader.warnings],
        state=None if args.state is None else str(args.state),
        once=bool(args.once),
        pid=os.getpid(),
        candidate=None
        if service.candidate is None
        else {"directory": str(args.candidate), "version": service.candidate.version},
        keep_versions=args.keep_versions,
    )
    return service


def audit_directory(args: argparse.Namespace) -> Path | None:
    """--audit DIR; by default audit/ beside the --state file, else ./audit/."""
    if args.no_audit:
        return None
    if args.audit:
        return Path(args.audit)
    return Path(args.state).parent / "audit" if args.state else Path("audit")


def _open_audit(
    args: argparse.Namespace, service: Service, clock: Callable[[], datetime], environ: Any
) -> Auditor:
    """The service's audit trail; exit 2 (a BastionError naming the directory) when it
    cannot be written or its chain does not check out at start."""
    directory = audit_directory(args)
    if directory is None:
        log.warning("audit_disabled", flag="--no-audit")
        return Auditor(None)
    key = key_from_env(os.environ if environ is None else environ)
    trail = AuditTrail.open(directory, clock=clock, key=key)
    return Auditor(trail, on_failed=service.persist_failed, on_recovered=service.persist_recovered)


def _close_audit(service: Service) -> None:
    """service_stopped (with the trail's head: keep it elsewhere as an anchor), then
    release the directory. The --alerts delivery first sends what it holds, then stops."""
    if service.alert_dispatcher is not None:
        service.alert_dispatcher.stop()
    auditor = service.auditor
    if auditor.trail is None:
        return
    auditor.lifecycle("service_stopped", state_saved=not service.persist_failures())
    head = auditor.head()
    if head is not None:
        print(
            f"bastion serve: audit trail {auditor.trail.directory} ends at record "
            f"{head['seq']} ({head['hash'][:16]}); anchor: `bastion audit verify "
            f"{auditor.trail.directory} --anchor {head['seq']}:{head['hash']}`",
            file=sys.stderr,
        )
    auditor.trail.close()


def _open_state(args: argparse.Namespace) -> tuple[StateStore | None, LoadedState | None]:
    """The --state store and what it holds; exit 2 (StateStoreError) when its directory
    is missing or read-only, or the file is unreadable or edited by hand (not accepted)."""
    if not args.state:
        return None, None
    store = StateStore(Path(args.state), accept_edited=args.accept_edited_state)
    store.check_directory()
    return store, store.load()


def run(args: argparse.Namespace) -> int:
    mode = mode_for(args.log_format, sys.stdout.isatty())  # live | text | json (console.py)
    if mode != "json":
        # The console lines show every decision; logs add only warnings and errors.
        configure_logging(json=False, level="warning")
    else:  # JSON lines only on stdout, never mixed with plain text
        configure_logging(json=True)
    if getattr(args, "ray", None):  # scale-out on Ray actors: cli/serve_ray.py
        from bastion.cli import serve_ray  # noqa: PLC0415 - only with --ray

        serve_ray.check_arguments(args)  # exit 2 before anything starts
        return serve_ray.run(args, audit_directory(args))
    options = None if args.once else http_options(args)  # exit 2 before anything starts
    service, record = _build_recording(args)  # --record DIR: each cycle's snapshot
    if args.once or options is None:
        return _run_once(args, service, record(service.cycle()), mode)
    # What start-up built (policies, rulesets, the snapshot builder) lives as long as the
    # process: moved out of the collector's sight, so that the collections every few
    # thousand allocations of a busy check path do not walk it again and again.
    gc.collect()
    gc.freeze()
    # A cycle's snapshot and decisions live until the next cycle: at the default thresholds
    # the collector walks them again and again. Measured (bench/eval/run.py, 2-core VM): a
    # 1M-position tick (build + evaluate) takes 0.84x the CPU time of the defaults with
    # these thresholds (collector off: 0.88x), a 100k one 0.84-0.95x (off: 0.87-0.91x).
    gc.set_threshold(*GC_THRESHOLDS)
    service.tune_gc = True  # then the young threshold follows the book (gc_thresholds)
    # A cycle (poll, evaluate, save: tens of ms of CPU) and the checks share the GIL; a
    # check waiting for it waits up to the switch interval at every turn of the event
    # loop. 1 ms instead of 5 keeps a check answered during a cycle within milliseconds.
    sys.setswitchinterval(CHECK_SWITCH_INTERVAL_S)
    http = start_http(args, options, service, service.metrics)
    authenticator = options.authenticator
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    # A signal handler runs on the main thread: reloading there could re-enter the
    # reload lock on a second SIGHUP. Hand it to a thread.
    def on_sighup() -> None:  # the policies, and the --auth file (revocation at once)
        if authenticator is not None:
            authenticator.reload()
        service.reloader.reload("sighup")

    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=on_sighup, daemon=True).start())

    console = _console(args, mode, service, http.url, token=authenticator is not None)
    # A replay ends at the end of its data: the `bastion replay` summary, then exit 0.
    replay_end = ReplayEnd(service, on_end=stop.set, report=console.replay_ended)

    def after(cycle: Cycle) -> None:
        service.save_state()  # never raises: a failure turns /readyz 503, the cadence goes on
        console.cycle(service, cycle)
        replay_end.after(cycle)  # nothing unless the feed is a replay

    scheduler = CycleScheduler(service, on_cycle=lambda cycle: after(record(cycle)))
    service.on_reset_queued = scheduler.run_soon  # a manual reset is applied at once
    _watch(service, start=True)  # the policies (and the --candidate's) from now on
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
        _watch(service, start=False)
        http.stop()
        console.stop(service)  # the summary: trips, time per state, how to reset
    code = _final_save(args, service)
    _close_audit(service)
    return code


def _build_recording(args: argparse.Namespace) -> tuple[Service, Callable[[Cycle], Cycle]]:
    """The service, and what each cycle goes through: --record DIR writes its snapshot
    (never raising: a failure is counted and logged). A DIR that cannot be made or
    written is refused (UsageError, exit 2) before the service is built."""
    if args.record_keep < 1:
        raise UsageError("--record-keep must be 1 or more")
    recorder = SnapshotRecorder.open(Path(args.record), args.record_keep) if args.record else None
    service = build_service(args)
    if recorder is None:
        return service, lambda cycle: cycle

    def record(cycle: Cycle) -> Cycle:
        recorder.record(cycle)
        return cycle

    recorder.register(service.metrics.registry)
    return service, record


def _watch(service: Service, *, start: bool) -> None:
    """Start (or stop) watching the policy directories; the candidate's check worker too."""
    if start:
        service.reloader.start_watching()
        if service.candidate is not None:
            service.candidate.start()
        return
    service.reloader.stop()
    if service.candidate is not None:
        service.candidate.stop()


def _final_save(args: argparse.Namespace, service: Service) -> int:
    """The last save before exit: 0 when saved (or no --state), else 1 with one line
    naming the file: what changed since the last good save is lost."""
    if service.save_state():
        return 0
    reason = service.persist_failures()[0] if service.persist_failures() else "unknown error"
    print(
        f"bastion serve: error: the final save of {args.state} failed ({reason}); "
        "the state since the last good save is lost",
        file=sys.stderr,
    )
    return 1


def _run_once(args: argparse.Namespace, service: Service, cycle: Cycle, mode: str) -> int:
    """--once: the cycle printed (text in a terminal, one JSON line otherwise), saved."""
    if not cycle.fresh_data:  # nothing was evaluated: never an all-clear (exit 2)
        _final_save(args, service)
        _close_audit(service)
        reason = " ".join(str(service.last_adapter_error or "no data").split())
        kind = "fatal" if service.last_poll_fatal else "transient, retried"
        print(
            f"bastion serve: error: the {args.adapter} poll failed ({kind}), nothing "
            f"was evaluated: {reason}",
            file=sys.stderr,
        )
        return 2
    if mode == "json":  # the cycle as one JSON line (console.once_fields)
        log.info("cycle_evaluated", **once_fields(service, cycle))
    else:
        sys.stdout.write(render_text(cycle.decisions, service.state, cycle.interval_s, False))
        for line in _unevaluable_lines(service):
            print(line)
    code = _final_save(args, service)
    _close_audit(service)
    return code


def _console(
    args: argparse.Namespace, mode: str, service: Service, url: str, *, token: bool
) -> Console:
    """What the operator reads (service/console.py): a line per change, reloads, and at
    stop the summary with the exact request that resets each breaker still tripped."""
    reset_hint = ResetHint(f"{url}/api/v1/breakers/reset", token, args.state)
    console = make_console(mode, reset_hint, f"bastion serve: {args.adapter} feed, {url}")
    service.on_reload = console.reloaded
    return console


def _unevaluable_lines(service: Service) -> list[str]:
    """Positions left out of the snapshot (one bad record), one line each, with why."""
    return [f"unevaluable: {item}" for item in service.unevaluable]
