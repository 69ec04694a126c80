"""RuleCache (an hour per symbol, last known kept on failure) and RuleReader (zero is no
rule, garbage is no rule plus a note, a minimum above its maximum drops both)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bastion.adapters.instrument_rules import RuleCache, RuleRead, RuleReader, with_rules
from bastion.adapters.sources.clock import ManualClock
from bastion.engine.errors import TransientAdapterError
from bastion.engine.snapshot.model import Instrument

NOW = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def test_rules_when_read_within_the_hour_then_venue_asked_once() -> None:
    """A second ask within refresh_s answers from the cache; after it, the venue again."""
    clock = ManualClock(NOW)
    cache = RuleCache(clock, refresh_s=3600)
    reads: list[int] = []

    def read() -> RuleRead:
        reads.append(1)
        return RuleRead({"lot_size": Decimal("0.001")})

    assert cache.rules("BTC", read, "here") == ({"lot_size": Decimal("0.001")}, ())
    clock.advance(3599)
    cache.rules("BTC", read, "here")
    assert len(reads) == 1
    clock.advance(1)
    cache.rules("BTC", read, "here")
    assert len(reads) == 2


def test_rules_when_refresh_fails_then_last_known_kept_with_a_note() -> None:
    """A failing refresh keeps the rules read before and says so; no rules before: none."""
    clock = ManualClock(NOW)
    cache = RuleCache(clock)
    cache.rules("BTC", lambda: RuleRead({"tick_size": Decimal("0.01")}), "here")
    clock.advance(7200)

    def fail() -> RuleRead:
        raise TransientAdapterError("HTTP 503")

    rules, notes = cache.rules("BTC", fail, "venue GET /x")
    assert rules == {"tick_size": Decimal("0.01")}
    ((where, value, reason),) = notes
    assert where == "instruments['BTC']" and value.startswith("rules read at 2024-01-02T14:30")
    assert reason == "venue GET /x: HTTP 503; kept the last known"
    assert cache.rules("ETH", fail, "venue GET /x") == (
        {},
        (("instruments['ETH']", "no venue rules", "venue GET /x: HTTP 503"),),
    )


def test_rules_when_read_failed_then_asked_again_only_after_retry_s() -> None:
    """A failed read is not repeated every poll: the same note until retry_s passed."""
    clock = ManualClock(NOW)
    cache = RuleCache(clock, retry_s=300)
    calls: list[int] = []

    def fail() -> RuleRead:
        calls.append(1)
        raise TransientAdapterError("HTTP 503")

    first = cache.rules("BTC", fail, "here")
    clock.advance(299)
    assert cache.rules("BTC", fail, "here") == first and len(calls) == 1
    clock.advance(1)
    assert cache.rules("BTC", lambda: RuleRead({"lot_size": Decimal(1)}), "here") == (
        {"lot_size": Decimal(1)},
        (),
    )


def test_take_when_zero_or_garbage_then_no_rule_and_garbage_noted() -> None:
    """0 is the venue's "no rule" (silent); text, a negative, NaN or a bool are noted."""
    reader = RuleReader("BTC", "w")
    reader.take("max_notional", "0.00000000", "maxNotional")
    reader.take("tick_size", "abc", "tickSize")
    reader.take("lot_size", "-0.001", "stepSize")
    reader.take("min_quantity", "NaN", "minQty")
    reader.take("max_quantity", True, "maxQty")
    reader.take("min_notional", "5", "minNotional")
    read = reader.read()
    assert read.rules == {"min_notional": Decimal(5)}
    assert [note[0] for note in read.notes] == [
        "instruments['BTC'].tick_size",
        "instruments['BTC'].lot_size",
        "instruments['BTC'].min_quantity",
        "instruments['BTC'].max_quantity",
    ]


def test_read_when_minimum_above_maximum_then_both_dropped_and_noted() -> None:
    """minQty above maxQty would allow no order (and fail the snapshot): both left out."""
    reader = RuleReader("BTC", "w")
    reader.take("min_quantity", "10", "minQty")
    reader.take("max_quantity", "1", "maxQty")
    reader.take("lot_size", "0.1", "stepSize")
    read = reader.read()
    assert read.rules == {"lot_size": Decimal("0.1")}
    assert len(read.notes) == 2


def test_with_rules_when_applied_then_every_other_rule_is_none() -> None:
    """with_rules sets the given rules and clears the rest."""
    before = Instrument("BTC", "crypto", tick_size=Decimal(1))
    after = with_rules(before, {"lot_size": Decimal("0.5")})
    assert (after.tick_size, after.lot_size, after.asset_class) == (None, Decimal("0.5"), "crypto")
