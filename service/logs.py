"""Logging for the service: structured events, JSON for machines, colour for people.

Every log line is one event with a snake_case name (`http_request`, `policy_reloaded`),
an ISO-8601 UTC timestamp, a level, and the context bound with
`structlog.contextvars.bound_contextvars` (`request_id`, `policy`, `policy_version`, ...).
Records from the standard `logging` module (APScheduler, urllib3, ...) go through the
same renderer, so the stream stays one format.

Every line is written whole under one lock (`write_line`), shared by structlog, the
stdlib handler and the console (`service.console`): threads (cycles, HTTP workers,
the reloader) never interleave two JSON objects on one line.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from typing import Any

import structlog
from structlog.typing import Processor

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
# Libraries that log every scheduled run at INFO: only their warnings unless debugging.
CHATTY_LIBRARIES = ("apscheduler", "urllib3", "watchfiles")


# One lock for every line written to stdout (re-entrant: a handler may log).
STDOUT_LOCK = threading.RLock()


def write_line(line: str) -> None:
    """Write one whole line to the current sys.stdout, never interleaved with another."""
    with STDOUT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class LineLogger:
    """structlog's logger: each rendered event is one line through `write_line`."""

    def msg(self, message: str) -> None:
        write_line(message)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _line_logger(*_args: Any) -> LineLogger:
    return LineLogger()


class _BastionHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the root handler this module installed, so reconfiguring replaces it.
    Writes under `STDOUT_LOCK`, as structlog does."""

    def createLock(self) -> None:  # logging's name for it
        self.lock = STDOUT_LOCK

    def emit(self, record: logging.LogRecord) -> None:
        """To the current sys.stdout (the console's live view redirects it), whole."""
        try:
            write_line(self.format(record))
        except Exception:
            self.handleError(record)


def _not_coalesced_run(record: logging.LogRecord) -> bool:
    """False for APScheduler's note that a run was skipped or late: the cycle job is
    coalesced on purpose (one cycle at a time; service.scheduler), not a fault."""
    message = str(record.msg)
    return not (
        record.name == "apscheduler.scheduler"
        and ("maximum number of running instances" in message or "was missed by" in message)
    )


def configure_logging(*, json: bool | None = None, level: str = "info") -> None:
    """Configure structlog (and stdlib logging) for the process.

    `json=None` picks JSON unless stdout is a terminal, where a console renderer is
    easier to read. `level` is debug, info, warning, error or critical.
    """
    threshold = LEVELS.get(level.lower())
    if threshold is None:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    if json is None:
        json = not sys.stdout.isatty()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if json:
        shared += [structlog.processors.StackInfoRenderer(), structlog.processors.format_exc_info]
        renderer = structlog.processors.JSONRenderer()
    else:  # the console renderer prints exceptions itself, prettier than format_exc_info
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=_line_logger,  # the current sys.stdout, a whole line at a time
        # Not cached: a module-level logger used before this call (or before a test
        # reconfigures) must follow the new configuration; a few events a second is cheap.
        cache_logger_on_first_use=False,
    )
    _configure_stdlib(shared, renderer, threshold)


def _configure_stdlib(shared: list[Processor], renderer: Processor, threshold: int) -> None:
    handler = _BastionHandler(sys.stdout)
    if threshold > logging.DEBUG:
        handler.addFilter(_not_coalesced_run)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _BastionHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in CHATTY_LIBRARIES:
        quiet = logging.NOTSET if threshold <= logging.DEBUG else max(threshold, logging.WARNING)
        logging.getLogger(name).setLevel(quiet)


def new_correlation_id() -> str:
    """A fresh id to tie together the log events of one request or one cycle."""
    return uuid.uuid4().hex
