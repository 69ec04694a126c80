"""bastion_http_loop_lag_seconds: how late the HTTP event loop runs a timer.

A request arriving while the loop is busy elsewhere (a collector pause, a cycle holding
the GIL, a slow handler) waits before it is even read; `bastion_order_check_seconds`
starts after the body is read and cannot show that wait. These tests hold the probe to
what it measures with lower bounds only (a loop blocked for 60 ms cannot run a timer
less than ~50 ms late), never an upper bound on a shared machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client.parser import text_string_to_metric_families

from bastion.service.http import HttpServer, watch_loop_lag
from bastion.service.metrics import ServiceMetrics
from tests.service.http_support import FakeView, call, default_logging  # noqa: F401


def test_watch_loop_lag_when_the_loop_is_blocked_then_the_wait_is_reported() -> None:
    """A handler that blocks the loop for 60 ms makes the next timer at least ~50 ms late."""
    observed: list[float] = []

    async def scenario() -> None:
        probe = asyncio.create_task(watch_loop_lag(observed.append, every_s=0.01))
        await asyncio.sleep(0.001)  # the probe's first timer is set
        time.sleep(0.06)  # a slow handler: nothing else runs on the loop meanwhile
        while len(observed) < 2:
            await asyncio.sleep(0.005)
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe

    asyncio.run(scenario())
    assert max(observed) >= 0.045
    assert min(observed) >= 0.0


def test_http_server_when_serving_then_the_loop_lag_histogram_is_exported() -> None:
    """The served process samples its loop every 50 ms into the histogram on /metrics."""
    metrics = ServiceMetrics()
    http = HttpServer("127.0.0.1", 0, FakeView(), metrics)
    http.start()
    try:
        deadline = time.monotonic() + 5
        count = 0.0
        while count < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            text = call(http.url + "/metrics").body.decode()
            for family in text_string_to_metric_families(text):
                if family.name == "bastion_http_loop_lag_seconds":
                    assert family.type == "histogram"
                    count = next(s.value for s in family.samples if s.name.endswith("_count"))
        assert count >= 2
    finally:
        http.stop()
