"""Delivery off the evaluation path: the bounded intake, storms, hanging and failing
receivers, retries, throttling. A fake clock drives the dispatcher (`pump`); receivers
are sent to with `deliver_next` on the test's thread, except where a real worker thread
is the point (a hanging receiver)."""

from __future__ import annotations

import threading

from bastion.service.alerting import delivery
from bastion.service.alerting.dispatcher import AlertDispatcher
from bastion.service.alerting.intake import Intake
from bastion.service.alerting.model import labelled
from tests.service.alerting.support import (
    Clock,
    Hanging,
    Metrics,
    Recording,
    log_policy,
    policy,
    rearm,
    trip,
)


def _dispatcher(alert_policy=None, **receivers):  # type: ignore[no-untyped-def]
    clock, metrics = Clock(), Metrics()
    alert_policy = alert_policy or log_policy(group_by=["kind", "breaker"])
    built = receivers or {"a": Recording("a"), "b": Recording("b")}
    dispatcher = AlertDispatcher(alert_policy, metrics, clock=clock, receivers=built)
    return dispatcher, clock, metrics, built


def _deliver_all(dispatcher: AlertDispatcher) -> None:
    for worker in dispatcher.workers.values():
        while worker.deliver_next():
            pass


def test_storm_when_1000_trips_in_a_second_then_one_message_per_group_per_receiver() -> None:
    """1,000 trips (5 breakers x 200 accounts) within one second: each receiver gets one
    message per (kind, breaker) group, and every put returned without waiting."""
    dispatcher, clock, metrics, receivers = _dispatcher()
    for index in range(1000):
        dispatcher.send(trip(breaker=f"breaker_{index % 5}", account=f"acct-{index // 5}"))
        clock.advance(0.001)
    assert len(dispatcher.intake) == 1000  # queued, nothing routed on the caller's thread
    dispatcher.pump()
    clock.advance(1.0)
    dispatcher.pump()
    clock.advance(3600.0)
    dispatcher.pump()
    _deliver_all(dispatcher)
    for receiver in receivers.values():
        groups = [n.group_key for n in receiver.sent]
        assert len(groups) == len(set(groups)) == 5
        assert sum(len(n.firing) for n in receiver.sent) == 200 * 5
    assert metrics.dropped == []
    assert metrics.outcomes("a") == ["ok"] * 5


def test_intake_when_full_then_oldest_lowest_severity_dropped_and_counted() -> None:
    """A full queue makes room by dropping the oldest warning, never a critical alert
    for a warning, and never blocks."""
    intake = Intake(max_alerts=10)
    for index in range(5):
        intake.put("raised", labelled(trip(account=f"w{index}", severity="warning")), 0.0)
    for index in range(5):
        intake.put("raised", labelled(trip(account=f"c{index}", severity="critical")), 0.0)
    dropped = intake.put("raised", labelled(trip(account="c5", severity="critical")), 0.0)
    assert dropped is not None and dropped.labels["account"] == "w0"
    for index in range(4):
        intake.put("raised", labelled(trip(account=f"c{6 + index}", severity="critical")), 0.0)
    late_warning = labelled(trip(account="w9", severity="warning"))
    assert intake.put("raised", late_warning, 0.0) is late_warning  # all queued matter more
    queued = [item.alert.labels["account"] for item in intake.take_all()]
    assert queued == [f"c{i}" for i in range(10)]


def test_dispatcher_when_queue_full_then_drop_counted_in_metrics() -> None:
    """bastion_alerts_dropped_total{severity} counts what the full intake dropped."""
    small = policy([{"name": "a", "type": "log"}], [{"receivers": ["a"]}], queue_size=10)
    dispatcher, _clock, metrics, _ = _dispatcher(small, a=Recording("a"))
    for index in range(15):
        dispatcher.send(trip(account=f"acct-{index}", severity="warning"))
    assert metrics.dropped == ["warning"] * 5


def test_hanging_receiver_when_alerts_keep_coming_then_others_deliver_and_puts_never_wait() -> None:
    """A receiver that never answers holds its own thread only: the other receiver gets
    its messages, the intake keeps taking alerts, and the hanging one's outbox stays
    bounded (the overflow counted as dropped)."""
    hanging, healthy = Hanging("a"), Recording("b")
    dispatcher, clock, metrics, _ = _dispatcher(a=hanging, b=healthy)
    worker = dispatcher.workers["a"]
    worker.outbox_size = 3
    worker.start()  # a real thread: it blocks inside send
    try:
        dispatcher.send(trip(breaker="first"))
        clock.advance(2.0)
        dispatcher.pump()
        assert hanging.entered.wait(5)
        for index in range(10):  # ten more groups while "a" hangs
            dispatcher.send(trip(breaker=f"b{index}"))
            clock.advance(2.0)
            dispatcher.pump()
        assert len(dispatcher.intake) == 0
        while dispatcher.workers["b"].deliver_next():
            pass
        assert len(healthy.sent) == 11
        assert len(worker.outbox) == 3 and worker.busy
        assert metrics.outcomes("a") == ["dropped"] * 7
    finally:
        hanging.release.set()
        worker.stop()


def test_enqueue_when_dispatcher_holds_its_lock_then_put_does_not_wait() -> None:
    """The cycle's side (send) never takes the dispatcher's lock: it returns while a pump
    is stuck inside it."""
    dispatcher, _clock, _metrics, _ = _dispatcher()
    with dispatcher._lock:  # a pump in progress
        done = threading.Event()
        thread = threading.Thread(target=lambda: (dispatcher.send(trip()), done.set()))
        thread.start()
        assert done.wait(5)
        thread.join()
    assert len(dispatcher.intake) == 1


def test_receiver_when_it_fails_then_retried_with_backoff_then_ok() -> None:
    """Two failures, then success: three attempts, waits of 0.5 s then 1 s, one ok."""
    flaky = Recording("a", fail=2)
    single = policy([{"name": "a", "type": "log", "backoff_s": 0.5}], [{"receivers": ["a"]}])
    dispatcher, clock, metrics, _ = _dispatcher(single, a=flaky)
    worker = dispatcher.workers["a"]
    waits: list[float] = []
    worker._stop.wait = lambda delay: waits.append(delay) or False  # type: ignore[method-assign]
    dispatcher.send(trip())
    clock.advance(1.0)
    dispatcher.pump()
    assert worker.deliver_next()
    assert waits == [0.5, 1.0]
    assert len(flaky.sent) == 1 and metrics.outcomes("a") == ["ok"]


def test_receiver_when_retries_run_out_then_failed_counted() -> None:
    """A receiver that keeps failing: retries + 1 attempts, then outcome failed."""
    broken = Recording("a", fail=100)
    single = policy([{"name": "a", "type": "log", "retries": 2}], [{"receivers": ["a"]}])
    dispatcher, clock, metrics, _ = _dispatcher(single, a=broken)
    dispatcher.workers["a"]._stop.wait = lambda delay: False  # type: ignore[method-assign]
    dispatcher.send(trip())
    clock.advance(1.0)
    dispatcher.pump()
    dispatcher.workers["a"].deliver_next()
    assert broken.fail == 97 and metrics.outcomes("a") == ["failed"]


def test_receiver_when_over_its_budget_then_throttled() -> None:
    """max_per_minute: 2 — the third message within a minute is dropped, counted."""
    single = policy(
        [{"name": "a", "type": "log", "max_per_minute": 2}],
        [{"receivers": ["a"], "group_by": ["breaker"]}],
    )
    dispatcher, clock, metrics, receivers = _dispatcher(single, a=Recording("a"))
    for index in range(3):
        dispatcher.send(trip(breaker=f"b{index}"))
    clock.advance(1.0)
    dispatcher.pump()
    _deliver_all(dispatcher)
    assert metrics.outcomes("a") == ["ok", "ok", "throttled"]
    assert len(receivers["a"].sent) == 2


def test_delivery_when_sent_then_seconds_measured_from_the_alert() -> None:
    """bastion_alert_delivery_seconds: from the alert's enqueue to the message sent."""
    dispatcher, clock, metrics, _ = _dispatcher()
    dispatcher.send(trip(severity="critical"))
    clock.advance(1.0)
    dispatcher.pump()
    clock.advance(0.25)
    _deliver_all(dispatcher)
    assert {(r, o, s) for r, o, s in metrics.sent} == {("a", "ok", 1.25), ("b", "ok", 1.25)}


def test_dispatcher_when_resolved_then_a_resolved_message() -> None:
    """A resolution after the trip's message: one resolved message per receiver."""
    dispatcher, clock, _metrics, receivers = _dispatcher()
    dispatcher.send(trip())
    clock.advance(1.0)
    dispatcher.pump()
    dispatcher.resolve(rearm())
    clock.advance(600.0)
    dispatcher.pump()
    _deliver_all(dispatcher)
    assert [n.status for n in receivers["a"].sent] == ["firing", "resolved"]


def test_receiver_when_send_outlives_its_timeout_then_abandoned_and_failed() -> None:
    """A send stuck past timeout_s (plus the grace) is abandoned: the attempt fails, the
    worker moves on, the stuck send is left on its daemon thread."""
    hanging = Hanging("a")
    single = policy(
        [{"name": "a", "type": "log", "timeout_s": 0.05, "retries": 0}], [{"receivers": ["a"]}]
    )
    dispatcher, clock, metrics, _ = _dispatcher(single, a=hanging)
    worker = dispatcher.workers["a"]
    worker_grace = delivery.ATTEMPT_GRACE_S
    delivery.ATTEMPT_GRACE_S = 0.0  # the test's own bound: no extra second
    try:
        dispatcher.send(trip())
        clock.advance(1.0)
        dispatcher.pump()
        assert worker.deliver_next()
    finally:
        delivery.ATTEMPT_GRACE_S = worker_grace
        hanging.release.set()
    assert hanging.entered.is_set() and metrics.outcomes("a") == ["failed"]
    assert not worker.busy
