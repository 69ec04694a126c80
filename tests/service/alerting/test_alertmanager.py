"""The alertmanager receiver against a real Alertmanager (Debian package
prometheus-alertmanager; `.ci/run` installs it), started on loopback with a free port
and a temporary storage path: alerts posted are read back from its v2 API, firing and
then resolved (endsAt set)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bastion.service.alerting.config import ReceiverConfig
from bastion.service.alerting.grouping import Grouper
from bastion.service.alerting.model import labelled
from bastion.service.alerting.receivers import build_receiver
from bastion.service.alerts import AlertRaised
from tests.service.alerting.support import log_policy

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
pytestmark = pytest.mark.skipif(
    not Path(BINARY).exists(),
    reason="needs Alertmanager: apt-get install prometheus-alertmanager (.ci/run does)",
)
CONFIG = 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read() or b"null")


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1:<free port>, clustering off; its base URL."""
    directory = tmp_path_factory.mktemp("alertmanager")
    (directory / "alertmanager.yml").write_text(CONFIG)
    port = _free_port()
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={directory / 'alertmanager.yml'}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("alertmanager did not start")
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _alerts(url: str, breaker: str) -> list[dict[str, Any]]:
    found = _get(f"{url}/api/v2/alerts?active=true&inhibited=true&silenced=true&unprocessed=true")
    return [a for a in found if a["labels"].get("breaker") == breaker]


def test_alertmanager_when_alert_posted_then_read_back_with_labels(alertmanager: str) -> None:
    """A trip posted to /api/v2/alerts is listed by Alertmanager with its labels (the
    kind as alertname) and its summary."""
    now = datetime.now(UTC)
    raised = AlertRaised(
        now, "breaker_tripped", "critical", "daily loss 5200 > 5000",
        {"breaker": "am_daily_loss", "subject": "account:gen-01", "account": "gen-01"},
    )  # fmt: skip
    grouper = Grouper(log_policy(), {})
    grouper.add(labelled(raised), 0.0)
    notification = next(n for n in grouper.due(10.0) if n.receiver == "a")
    build_receiver(ReceiverConfig("am", "alertmanager", {"url": alertmanager})).send(notification)
    (listed,) = _alerts(alertmanager, "am_daily_loss")
    assert listed["labels"] == {
        "alertname": "breaker_tripped",
        "severity": "critical",
        "kind": "breaker_tripped",
        "breaker": "am_daily_loss",
        "subject": "account:gen-01",
        "account": "gen-01",
        "service": "bastion",
    }
    assert listed["annotations"]["summary"] == "daily loss 5200 > 5000"
    assert listed["status"]["state"] == "active"


def test_alertmanager_when_resolved_then_ends_at_set(alertmanager: str) -> None:
    """The resolved message carries endsAt: Alertmanager no longer lists the alert."""
    started = datetime.now(UTC)
    raised = AlertRaised(
        started, "breaker_tripped", "critical", "stale data",
        {"breaker": "am_stale_data", "subject": "system:feed"},
    )  # fmt: skip
    grouper = Grouper(log_policy(), {})
    alert = labelled(raised)
    grouper.add(alert, 0.0)
    receiver = build_receiver(ReceiverConfig("am", "alertmanager", {"url": alertmanager}))
    receiver.send(next(n for n in grouper.due(10.0) if n.receiver == "a"))
    assert [a["status"]["state"] for a in _alerts(alertmanager, "am_stale_data")] == ["active"]
    time.sleep(0.01)  # endsAt strictly after startsAt
    grouper.resolve(alert.fingerprint, datetime.now(UTC), 20.0)
    resolved = next(n for n in grouper.due(10_000.0) if n.receiver == "a")
    assert resolved.status == "resolved"
    receiver.send(resolved)
    # Accepted (a refusal raises DeliveryFailed) and ended: Alertmanager lists only
    # alerts whose endsAt is in the future, so it is gone from the list.
    assert _alerts(alertmanager, "am_stale_data") == []
