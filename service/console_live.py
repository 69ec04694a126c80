"""The live console view in a terminal (rich): lines scroll, a status panel stays below.

The panel: market time, poll, next poll, the sim's regime, the policy version, every
account's trading state (coloured), the escalated positions and the breakers not armed
(with why they wait). Lines (`ConsoleLine`) print above it, coloured by severity.
Logs at warning and above (the only ones shown in a terminal) print above it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bastion.service.console import status_text
from bastion.service.console_lines import ConsoleLine

if TYPE_CHECKING:
    from bastion.service.runner import Cycle, Service

STYLES = {"critical": "bold red", "emergency": "bold red", "warning": "yellow", "info": ""}
STATE_STYLES = {"HALTED": "bold red", "REDUCING": "yellow", "ACTIVE": "green"}


class LiveSink:
    def __init__(self, title: str) -> None:
        self.title = title
        self.console = Console()
        self.live = Live(
            Text("waiting for the first cycle ..."),
            console=self.console,
            refresh_per_second=4,
            transient=True,  # at stop the panel goes; the summary stays
            redirect_stdout=True,
            redirect_stderr=False,
        )
        self.live.start()

    def line(self, line: ConsoleLine) -> None:
        text = Text(f"{line.at:%H:%M:%S} ", style="dim")
        text.append(line.text, style=STYLES.get(line.severity, ""))
        self.live.console.print(text, soft_wrap=True)

    def status(self, service: Service, cycle: Cycle) -> None:
        self.live.update(panel(service, cycle, self.title))

    def block(self, event: str, lines: Sequence[str], fields: Mapping[str, Any]) -> None:
        self.live.stop()  # the summary after the live view, as plain lines
        for text in lines:
            self.console.print(text, soft_wrap=True, highlight=False)

    def close(self) -> None:
        self.live.stop()


def panel(service: Service, cycle: Cycle, title: str) -> Panel:
    states = Table.grid(padding=(0, 2))
    for account, value in sorted(service.state.trading_states.items()):
        states.add_row(account, Text(value, style=STATE_STYLES.get(value, "")))
    tripped = Table.grid(padding=(0, 2))
    for key, breaker in sorted(service.state.breakers.items()):
        if breaker.status == "armed":
            continue
        waiting = (
            "awaiting a manual reset"
            if breaker.awaiting_manual_reset
            else "re-arms once clear"
            if breaker.awaiting_clear
            else f"until {breaker.until:%H:%M:%S}"
            if breaker.until
            else ""
        )
        tripped.add_row(key.partition(":")[2], breaker.status, waiting)
    escalated = ", ".join(
        f"{key} {value.level_name}" for key, value in sorted(service.state.escalations.items())
    )
    body = Group(
        Text(status_text(service, cycle)),
        Text(f"policies {cycle.policy_version[:19]}", style="dim"),
        states,
        Text(f"escalated: {escalated or 'none'}"),
        Text("breakers not armed:" if tripped.row_count else "breakers not armed: none"),
        tripped,
    )
    return Panel(body, title=title, subtitle="Ctrl-C: stop with a summary")
