"""configure_logging: JSON or console, level, bound context, stdlib records; correlation ids."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import structlog

from bastion.service.logs import CHATTY_LIBRARIES, configure_logging, new_correlation_id


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Leave structlog and the stdlib root logger as this test found them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in CHATTY_LIBRARIES}
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, library_level in libraries.items():
        logging.getLogger(name).setLevel(library_level)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_configure_when_json_then_one_json_object_per_event_with_bound_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """JSON mode: event name, level, UTC ISO timestamp and the bound context on each line."""
    configure_logging(json=True)
    with structlog.contextvars.bound_contextvars(policy="default-breakers", request_id="r-1"):
        structlog.get_logger().info("policy_reloaded", policy_version="sha256:abc")
    (line,) = _json_lines(capsys.readouterr().out)
    assert line["event"] == "policy_reloaded"
    assert line["level"] == "info"
    assert (line["policy"], line["request_id"]) == ("default-breakers", "r-1")
    assert line["policy_version"] == "sha256:abc"
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.utcoffset() == timedelta(0) and line["timestamp"].endswith("Z")


def test_configure_when_console_then_readable_line_not_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Console mode: one human-readable line with the event name and key=value pairs."""
    configure_logging(json=False)
    structlog.get_logger().warning("snapshot_stale", adapter="sim", age_s=42)
    out = capsys.readouterr().out
    assert "snapshot_stale" in out and "adapter=sim" in out and "age_s=42" in out
    assert "warn" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_configure_when_auto_and_stdout_not_a_terminal_then_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """json=None on a pipe (as under a service manager) writes JSON."""
    configure_logging()
    structlog.get_logger().info("service_started")
    assert _json_lines(capsys.readouterr().out)[0]["event"] == "service_started"


def test_configure_when_auto_and_stdout_a_terminal_then_console(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """json=None in a terminal writes the console format."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    configure_logging()
    structlog.get_logger().info("service_started", port=9108)
    out = terminal.getvalue()
    assert "service_started" in out
    assert not out.lstrip().startswith("{")


def test_configure_when_level_warning_then_info_dropped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Events under the level are dropped, for structlog and stdlib loggers alike."""
    configure_logging(json=True, level="warning")
    structlog.get_logger().info("http_request")
    logging.getLogger("some.library").info("chatter")
    structlog.get_logger().warning("reload_rejected")
    assert [line["event"] for line in _json_lines(capsys.readouterr().out)] == ["reload_rejected"]


def test_configure_when_level_unknown_then_value_error_naming_choices() -> None:
    """A misspelt level is refused with the accepted names."""
    with pytest.raises(ValueError, match="debug, info, warning, error, critical"):
        configure_logging(level="verbose")


def test_configure_when_stdlib_logger_used_then_same_json_with_logger_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Records of libraries using `logging` come out in the same JSON shape."""
    configure_logging(json=True)
    logging.getLogger("apscheduler.scheduler").warning("Execution of job skipped")
    (line,) = _json_lines(capsys.readouterr().out)
    assert line["event"] == "Execution of job skipped"
    assert (line["level"], line["logger"]) == ("warning", "apscheduler.scheduler")
    assert line["timestamp"].endswith("Z")


def test_configure_when_info_then_chatty_libraries_only_warn(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """APScheduler's per-run INFO lines are muted at info; debug lets them through."""
    configure_logging(json=True, level="info")
    logging.getLogger("apscheduler.executors.default").info("Running job")
    assert capsys.readouterr().out == ""
    configure_logging(json=True, level="debug")
    logging.getLogger("apscheduler.executors.default").info("Running job")
    assert _json_lines(capsys.readouterr().out)[0]["event"] == "Running job"


def test_configure_when_called_twice_then_one_handler_and_no_duplicate_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Reconfiguring replaces the handler this module installed instead of adding one."""
    configure_logging(json=True)
    configure_logging(json=True)
    logging.getLogger("x").warning("once")
    assert len(_json_lines(capsys.readouterr().out)) == 1


def test_configure_when_exception_logged_in_json_then_traceback_in_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Exceptions are rendered into an `exception` field of the same JSON line."""
    configure_logging(json=True)
    try:
        raise RuntimeError("adapter down")
    except RuntimeError:
        structlog.get_logger().exception("poll_failed", adapter="kraken")
    (line,) = _json_lines(capsys.readouterr().out)
    assert line["level"] == "error"
    assert "RuntimeError: adapter down" in line["exception"]


def test_new_correlation_id_when_called_twice_then_distinct_hex_ids() -> None:
    """Correlation ids are 32 hex characters and never repeat."""
    first, second = new_correlation_id(), new_correlation_id()
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second
