"""Logging for the service: structured events, JSON for machines, colour for people.

Every log line is one event with a snake_case name (`http_request`, `policy_reloaded`),
an ISO-8601 UTC timestamp, a level, and the context bound with
`structlog.contextvars.bound_contextvars` (`request_id`, `policy`, `policy_version`, ...).
Records from the standard `logging` module (APScheduler, urllib3, ...) go through the
same renderer, so the stream stays one format.
"""

from __future__ import annotations

import logging
import sys
import uuid

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


class _BastionHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the root handler this module installed, so reconfiguring replaces it."""


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
        logger_factory=structlog.PrintLoggerFactory(),  # the current sys.stdout, per logger
        # Not cached: a module-level logger used before this call (or before a test
        # reconfigures) must follow the new configuration; a few events a second is cheap.
        cache_logger_on_first_use=False,
    )
    _configure_stdlib(shared, renderer, threshold)


def _configure_stdlib(shared: list[Processor], renderer: Processor, threshold: int) -> None:
    handler = _BastionHandler(sys.stdout)
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
