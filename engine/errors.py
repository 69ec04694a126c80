"""The one error root and who catches each subclass.

A failed *check* is never an exception (it is a Finding or a Decision). These are
for unreadable input and programmer errors. Every user-facing message names the
file, the place and the fix.
"""

from __future__ import annotations


class BastionError(Exception):
    """Root of every error Bastion raises on purpose. The CLI maps it to exit 2."""


class PolicyError(BastionError):
    """A policy file cannot be read or resolved at all.

    Caught by the linter (turned into a finding) and by the hot reloader (the last
    good policy set stays active).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str = "",
        line: int = 0,
        column: int = 0,
        code: str = "BST007",
    ) -> None:
        self.code = code  # the lint code a finding made from this error carries
        self.file = file
        self.line = line
        self.column = column
        where = f"{file}:{line}:{column}: " if file and line else (f"{file}: " if file else "")
        super().__init__(f"{where}{message}")
        self.message = message


class SnapshotError(BastionError):
    """A snapshot is malformed. Caught by the CLI (exit 2) and the service (stale)."""


class DataError(BastionError):
    """Market data (a CSV, a bar series) cannot be read. Names the line where it can."""

    def __init__(self, message: str, *, file: str = "", line: int = 0) -> None:
        self.file = file
        self.line = line
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(f"{where}{message}")
        self.message = message


class AdapterError(BastionError):
    """A venue adapter failed. Fatal unless it is a TransientAdapterError."""


class TransientAdapterError(AdapterError):
    """Retry with backoff (429, 5xx, timeouts). Caught by the scheduler's poll job."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UsageError(BastionError):
    """The command line itself is wrong. The CLI prints it and exits 2."""


class RuleEngineError(BastionError):
    """The rules engine could not compile a rule set or evaluate facts against it.

    Caught by the evaluator, which turns it into the conservative decision (deny new
    risk), and by the hot reloader at compile time (the last good policy set stays
    active). The message names the rule or the fact field at fault.
    """
