"""The snapshot's ``option_chains``: field rules, consistency, round trip, built path."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bastion.engine.errors import SnapshotError
from bastion.engine.snapshot import Snapshot, SnapshotInvalid, load_snapshot
from bastion.engine.snapshot.built import normalized_document, snapshot_from_built
from bastion.engine.snapshot.validate import _SCHEMA, SNAPSHOT_TABLE, check_document
from tests.snapshot.conftest import EXAMPLES, example_data
from tests.snapshot.test_built import _mutations

D = Decimal
SPY = 'option_chains["SPY"]'


def with_chain(*contracts: dict[str, Any], as_of: str = "2026-11-20T15:29:00Z") -> dict[str, Any]:
    """The option-near-roll example plus a SPY chain of ``contracts``."""
    data = example_data("option-near-roll")
    data["option_chains"] = {"SPY": {"as_of": as_of, "contracts": list(contracts)}}
    return data


def put(strike: int = 560, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "symbol": f"SPY270115P{strike * 1000:08d}",
        "option_type": "put",
        "strike_usd": strike,
        "expires_at": "2027-01-15T21:00:00Z",
        "bid_usd": "6.40",
        "ask_usd": "6.70",
    }
    record.update(changes)
    return record


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SnapshotInvalid) as raised:
        Snapshot.from_dict(data)
    return [str(error) for error in raised.value.errors]


def test_chain_when_valid_then_typed_and_keyed_by_underlying() -> None:
    """Strings become Decimals and UTC times; optional greeks stay None when absent."""
    snapshot = Snapshot.from_dict(with_chain(put(), put(565, delta="-0.27", open_interest=12)))
    chain = snapshot.option_chains["SPY"]
    assert chain.underlying == "SPY"
    assert chain.as_of == datetime(2026, 11, 20, 15, 29, tzinfo=UTC)
    first, second = chain.contracts
    assert (first.bid_usd, first.ask_usd, first.delta) == (D("6.40"), D("6.70"), None)
    assert (second.delta, second.open_interest) == (D("-0.27"), 12)


def test_chain_when_absent_then_empty_and_left_out_of_to_dict() -> None:
    """No option_chains: an empty mapping, and to_dict does not write the key."""
    snapshot = Snapshot.from_dict(example_data("option-near-roll"))
    assert dict(snapshot.option_chains) == {}
    assert "option_chains" not in snapshot.to_dict()


def test_chain_when_round_tripped_then_equal() -> None:
    """from_dict(to_dict(s)) == s for a snapshot with a chain."""
    snapshot = load_snapshot(EXAMPLES / "option-chain.json")
    assert Snapshot.from_dict(snapshot.to_dict()) == snapshot
    assert len(snapshot.option_chains["SPY"].contracts) == 85


def test_chain_when_quote_crossed_then_refused_naming_the_contract() -> None:
    """bid above ask is a crossed quote: refused, with the place and the fix."""
    found = problems(with_chain(put(bid_usd="6.80", ask_usd="6.70")))
    assert found == [
        f"{SPY}.contracts[0].bid_usd: 6.80 is above the ask (6.70): a crossed quote; "
        "leave the contract out or fix the quote"
    ]


def test_chain_when_bid_equals_ask_then_accepted() -> None:
    """A locked quote (bid = ask) is not crossed."""
    Snapshot.from_dict(with_chain(put(bid_usd="6.70", ask_usd="6.70")))


def test_chain_when_contract_expired_at_as_of_then_refused() -> None:
    """An expiry at the chain's as_of (not after it) is no listed contract."""
    found = problems(with_chain(put(expires_at="2026-11-20T15:29:00Z")))
    assert len(found) == 1 and f"{SPY}.contracts[0].expires_at" in found[0]
    assert "not after the chain's as_of" in found[0]


def test_chain_when_as_of_after_snapshot_then_refused() -> None:
    """A chain read after the snapshot was taken is a clock error."""
    found = problems(with_chain(put(), as_of="2026-11-20T15:31:00Z"))
    assert found == [f"{SPY}.as_of: 2026-11-20T15:31:00Z is after as_of (2026-11-20T15:30:00Z)"]


def test_chain_when_symbol_or_terms_listed_twice_then_refused() -> None:
    """The same symbol twice, or the same (type, strike, expiry) under two symbols."""
    twice = problems(with_chain(put(), put()))
    assert twice == [f'{SPY}.contracts[1].symbol: "SPY270115P00560000" is also contracts[0].symbol']
    aliased = problems(with_chain(put(), put(symbol="SPY  270115P00560000")))
    assert len(aliased) == 1 and "under another symbol" in aliased[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [("strike_usd", 0), ("ask_usd", 0), ("bid_usd", -1), ("option_type", "straddle"),
     ("implied_volatility", 0), ("delta", "-1.5"), ("open_interest", -1), ("quoted_at", "soon")],
)  # fmt: skip
def test_chain_when_field_out_of_range_then_refused(field: str, value: object) -> None:
    """Each field's rule: positive strike and ask, bid ≥ 0, call/put, IV > 0, |Δ| ≤ 1..."""
    found = problems(with_chain(put(**{field: value})))
    assert len(found) == 1 and found[0].startswith(f"{SPY}.contracts[0].{field}: must be")


def test_built_when_chain_typed_then_same_snapshot_as_validator() -> None:
    """A document assembled in code (Decimals, datetimes) passes the fast check unchanged."""
    data = with_chain(put(), put(565))
    snapshot = Snapshot.from_dict(copy.deepcopy(data))
    assert snapshot_from_built(snapshot.to_dict()) == snapshot
    problems_, document = check_document(copy.deepcopy(data), SNAPSHOT_TABLE, _SCHEMA)
    assert not problems_ and normalized_document(copy.deepcopy(data)) == document


def test_built_when_chain_crossed_then_validator_reports_it() -> None:
    """The fast check runs the consistency checks too: a crossed quote is refused."""
    data = with_chain(put(bid_usd="7", ask_usd="6.70"))
    with pytest.raises(SnapshotError, match="crossed quote"):
        snapshot_from_built(data, source="poll")


def test_built_when_chain_field_broken_then_refuses_exactly_what_validator_refuses() -> None:
    """Field by field over the chain records: the fast check agrees with the validator."""
    document = Snapshot.from_dict(with_chain(put(delta="-0.3", quoted_at="2026-11-20T15:28:00Z")))
    checked = 0
    for label, changed in _mutations(document.to_dict()):
        if "option_chains" not in label:
            continue
        expected_problems, expected = check_document(
            copy.deepcopy(changed), SNAPSHOT_TABLE, _SCHEMA
        )
        got = normalized_document(copy.deepcopy(changed))
        assert (got is None) == bool(expected_problems), label
        if not expected_problems:
            assert got == expected, label
        checked += 1
    assert checked > 100
