"""The status page's Escalate button in a real browser (headless Chromium) against the
real service on the sim feed with the shipped policies and --auth: a viewer sees no
button; an operator escalates a calm position by hand and sees it held at the level."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.adapters.sources import ManualClock
from bastion.service.auth import Authenticator
from bastion.service.http import HttpServer
from tests.browser.test_status_page_browser import TIMEOUT_MS, _open, _screenshot
from tests.service.http_support import default_logging, write_auth_file  # noqa: F401
from tests.service.status_page_support import Desk
from tests.service.test_escalation_endpoint import _service

ROW = 'tr[data-position="SPY-101"]'


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Desk]:
    """The real service (shipped policies, sim feed, --auth), one cycle run; a manual
    escalation runs the next cycle at once on a thread (as the scheduler's run_soon)."""
    service = _service(tmp_path)
    service.cycle()
    authenticator = Authenticator(write_auth_file(tmp_path / "principals.yaml"))
    http = HttpServer("127.0.0.1", 0, service, service.metrics, authenticator=authenticator)
    http.start()
    running = Desk(service, http, ManualClock(service.feed.now()), tmp_path)
    service.on_reset_queued = lambda: threading.Thread(target=service.cycle, daemon=True).start()
    try:
        yield running
    finally:
        http.stop()


def test_page_when_viewer_then_no_escalate_button(served: Desk, page: Any) -> None:
    """A viewer sees the positions by level, and no Escalate button anywhere."""
    _open(page, served, "vera")
    page.wait_for_selector('[data-testid="escalations"] h3, [data-testid="escalations"] p')
    assert page.locator('[data-testid="escalate"]').count() == 0
    assert page.console_errors == []


def test_page_when_operator_escalates_then_position_held_at_the_level(
    served: Desk, page: Any, tmp_path: Path
) -> None:
    """An operator presses Escalate… on a calm position, picks recovery, gives a reason:
    the position shows at recovery, held by hand by the operator; the state has it."""
    _open(page, served, "olga")
    row = page.locator(ROW)
    row.wait_for(timeout=TIMEOUT_MS)
    row.locator('[data-testid="escalate"]').click()
    page.select_option('[data-testid="escalate-level"]', "recovery")
    page.fill('[data-testid="escalate-reason"]', "earnings call")
    _screenshot(page, tmp_path, "escalate-form")
    page.click('[data-testid="escalate-confirm"]')
    held = f'table[data-level="2"] {ROW} [data-testid="manual-escalation"]'
    page.wait_for_selector(held, timeout=TIMEOUT_MS)
    assert "by olga: earnings call" in page.inner_text(held)
    assert served.service.state.manual_escalations["SPY-101"].by == "olga"
    _screenshot(page, tmp_path, "escalated")
    assert page.console_errors == []
