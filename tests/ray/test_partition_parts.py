"""The Ray scale-out's plain-Python parts (no Ray needed): the partition map, the feed
cut to one partition, the fence, the merged /metrics and the audit chains verified
together."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bastion.adapters.builder_parts import BuilderConfig
from bastion.adapters.sources.clock import ManualClock, SystemClock
from bastion.adapters.venue import Fill, VenueAccount
from bastion.cli.main import build_parser, main
from bastion.cli.serve_ray import LOOPBACK_ONLY_ENV, check_arguments
from bastion.engine.errors import UsageError
from bastion.engine.snapshot import ClosedTrade
from bastion.service.audit import AuditTrail
from bastion.service.feeds import Feed
from bastion.service.ray.accounts import AccountFilter, PartitionMap, open_map, owned_by
from bastion.service.ray.audit_chains import chain_directories, verify_chains
from bastion.service.ray.gate import Gate, GateClosedTooLong
from bastion.service.ray.metrics_merge import merge_expositions
from bastion.service.ray.partition import PartitionSpec, partition_feed

ACCOUNTS = ["gen-01", "rev-01", "com-01", "acc-4", "acc-5"]


def test_deal_when_accounts_are_many_then_partitions_differ_by_one_at_most() -> None:
    """Sorted accounts dealt round-robin: 5 accounts over 2 partitions are 3 and 2."""
    partition_map = PartitionMap.dealt(2, ACCOUNTS)
    sizes = sorted(len(partition_map.accounts_of(k)) for k in range(2))
    assert sizes == [2, 3]
    assert {partition_map.owner(a) for a in ACCOUNTS} == {0, 1}


def test_owner_when_account_is_not_pinned_then_every_process_finds_the_same() -> None:
    """A new account goes by its CRC-32: the head and any actor agree, with no call."""
    first, second = PartitionMap.dealt(3, ACCOUNTS), PartitionMap.dealt(3, ACCOUNTS)
    assert first.owner("opened-later") == second.owner("opened-later")
    assert 0 <= first.owner("opened-later") < 3


def test_open_map_when_file_pins_another_n_then_refused_naming_the_n(tmp_path: Path) -> None:
    """Changing --partitions would move accounts away from their state: exit 2."""
    path = tmp_path / "bastion.partitions.json"
    made = open_map(path, 2, lambda: ACCOUNTS)
    assert open_map(path, 2, list) == made  # read back, the venue not asked again
    with pytest.raises(UsageError, match="--partitions 2"):
        open_map(path, 3, lambda: ACCOUNTS)
    assert json.loads(path.read_text())["partitions"] == 2


class _Venue:
    name = "fake"

    def fetch_accounts(self) -> tuple[VenueAccount, ...]:
        return tuple(
            VenueAccount(a, "gen", Decimal(1), Decimal(1), Decimal(0), Decimal(0)) for a in ACCOUNTS
        )

    def market_only(self) -> str:
        return "whole venue"


def test_account_filter_when_polled_then_only_its_accounts_and_the_rest_passes() -> None:
    """A partition's feed: its own accounts; market data and other calls untouched."""
    partition_map = PartitionMap.dealt(2, ACCOUNTS)
    venue = AccountFilter(_Venue(), owned_by(partition_map, 1))
    assert [a.id for a in venue.fetch_accounts()] == [
        a for a in ACCOUNTS if partition_map.owner(a) == 1
    ]
    assert venue.market_only() == "whole venue"
    assert venue.name == "fake"


class _HistoryVenue(_Venue):
    """A venue with the one-request fills and trades (HistorySource), as the real ones."""

    def fetch_history(
        self, fills_since: datetime, trades_since: datetime
    ) -> tuple[tuple[Fill, ...], tuple[ClosedTrade, ...]]:
        at = datetime(2026, 1, 5, tzinfo=UTC)
        fills = tuple(
            Fill(f"f-{a}", a, "SPY", "buy", Decimal(1), Decimal(500), at) for a in ACCOUNTS
        )
        prices = (Decimal(500), Decimal(490), Decimal(-10), Decimal(-2))
        trades = tuple(
            ClosedTrade(f"t-{a}", a, "SPY", "long", "", Decimal(1), at, at, *prices, "signal")
            for a in ACCOUNTS
        )
        return fills, trades


def test_account_filter_when_venue_gives_history_then_only_its_accounts_fills_and_trades() -> None:
    """The real adapters answer fills and trades in one request (`fetch_history`): the
    filter cuts that to the partition's accounts too (another partition's closed trades
    would feed this partition's history protections)."""
    partition_map = PartitionMap.dealt(2, ACCOUNTS)
    venue = AccountFilter(_HistoryVenue(), owned_by(partition_map, 1))
    since = datetime(2026, 1, 1, tzinfo=UTC)
    fills, trades = venue.fetch_history(since, since)
    mine = partition_map.accounts_of(1)
    assert sorted(f.account_id for f in fills) == mine
    assert sorted(t.account_id for t in trades) == mine
    assert not hasattr(AccountFilter(_Venue(), owned_by(partition_map, 1)), "fetch_history")


def test_gate_when_closed_then_passing_waits_until_opened() -> None:
    """The fence: a cycle arriving while a version is swapped waits for the swap."""
    gate = Gate()
    assert gate.close(1, wait_s=1, lease_s=30)
    entered = threading.Event()

    def cycle() -> None:
        with gate.passing():
            entered.set()

    worker = threading.Thread(target=cycle)
    worker.start()
    assert not entered.wait(0.05)
    assert gate.held_by(1)
    assert gate.open(1)
    worker.join(5)
    assert entered.is_set()


def test_gate_when_something_passes_then_close_waits_or_gives_up() -> None:
    """A fence never cuts a running cycle: it waits for it, or reports it could not."""
    gate = Gate()
    with gate.passing():
        assert not gate.close(1, wait_s=0.01, lease_s=30)  # the cycle still runs
    assert not gate.closed  # gave up: new arrivals were let through again
    assert gate.close(2, wait_s=1, lease_s=30)
    assert not gate.close(3, wait_s=0.01, lease_s=30)  # another reload holds it
    with pytest.raises(GateClosedTooLong), gate.passing(wait_s=0.01):
        pass
    gate.open(2)


def test_gate_when_lease_runs_out_then_reopens_and_the_commit_is_refused() -> None:
    """A head gone quiet mid-reload never freezes a partition: the lease reopens the
    gate on the old version and the late commit sees it."""
    gate = Gate()
    assert gate.close(7, wait_s=1, lease_s=0.01)
    with gate.passing(wait_s=5):
        pass
    assert 7 in gate.expired
    assert not gate.held_by(7)
    assert not gate.open(7)


def test_merge_when_partitions_share_a_family_then_one_family_labelled_by_partition() -> None:
    """One exposition: each family once, each sample with its partition."""
    text = (
        b"# HELP bastion_evaluations_total Evaluations run.\n"
        b"# TYPE bastion_evaluations_total counter\n"
        b"bastion_evaluations_total 3.0\n"
    )
    merged = merge_expositions([("head", text), ("0", text), ("1", text.replace(b"3.0", b"5.0"))])
    lines = merged.decode().splitlines()
    assert sum(line.startswith("# TYPE bastion_evaluations_total") for line in lines) == 1
    assert 'bastion_evaluations_total{partition="1"} 5.0' in lines
    assert 'bastion_evaluations_total{partition="head"} 3.0' in lines


def _chain(directory: Path, records: int) -> None:
    directory.mkdir(parents=True)
    clock = lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # noqa: E731
    with AuditTrail.open(directory, clock=clock) as trail:
        for index in range(records):
            trail.append("decision_made", principal=None, subject=f"account:a-{index}")


def test_verify_when_directory_holds_partition_chains_then_all_checked_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bastion audit verify audit/` checks head/ and every partition-K/: one edited
    line in one chain is exit 1 naming that chain."""
    audit = tmp_path / "audit"
    for name, records in (("partition-1", 2), ("head", 1), ("partition-0", 3)):
        _chain(audit / name, records)
    assert [d.name for d in chain_directories(audit)] == ["head", "partition-0", "partition-1"]
    assert all(chain.result.ok for chain in verify_chains(audit, key=None))
    assert main(["audit", "verify", str(audit)]) == 0
    assert "intact: 3 chains" in capsys.readouterr().out
    victim = next((audit / "partition-1").glob("audit-*.jsonl"))
    victim.write_text(victim.read_text().replace("a-1", "a-9"))
    assert main(["audit", "verify", str(audit)]) == 1
    assert "TAMPERED: 1 of 3 chain(s): partition-1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--state", "s.json", "--record", "r/"], "--record is not available with --ray"),
        (["--state", "s.json", "--candidate", "c/"], "--candidate is not available with --ray"),
        (["--state", "s.json", "--partitions", "0"], "--partitions must be 1 or more"),
        ([], "--ray needs --state FILE"),
    ],
)
def test_serve_ray_when_flags_do_not_fit_then_exit_2_naming_why(
    extra: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What --ray does not do (yet) is refused before anything starts, with the reason."""
    assert main(["serve", "--ray", "local", *extra]) == 2
    assert said in capsys.readouterr().err


def test_check_arguments_when_ray_local_then_ray_kept_on_loopback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`--ray local` switches Ray's cluster mode off before Ray is imported: otherwise
    Ray turns 127.0.0.1 into the machine's routable address and its unauthenticated
    ports listen on the network. Joining a cluster (`--ray ADDRESS`) leaves it alone."""
    monkeypatch.delenv(LOOPBACK_ONLY_ENV, raising=False)
    args = build_parser().parse_args(
        ["serve", "--ray", "10.0.0.5:6379", "--state", str(tmp_path / "s.json")]
    )
    check_arguments(args)
    assert LOOPBACK_ONLY_ENV not in os.environ
    args = build_parser().parse_args(
        ["serve", "--ray", "local", "--state", str(tmp_path / "s.json")]
    )
    check_arguments(args)
    assert os.environ[LOOPBACK_ONLY_ENV] == "0"


class _Restrictable(_Venue):
    def __init__(self) -> None:
        self.asked_for: list[str] = []

    def restricted_to(self, owns: Callable[[str], bool]) -> _Restrictable:
        self.asked_for = [a for a in ACCOUNTS if owns(a)]
        return self


def restrictable_feed(spec: PartitionSpec) -> Feed:
    """A feed factory (`PartitionSpec.feed_factory`) over `_Restrictable`."""
    return Feed(_Restrictable(), BuilderConfig(), ManualClock(), 1.0)  # type: ignore[arg-type]


def test_partition_feed_when_adapter_can_restrict_then_it_polls_its_share_only() -> None:
    """A venue that can be asked for some accounts is asked for the partition's only, and
    the filter still stands in front of it."""
    partition_map = PartitionMap.dealt(2, ACCOUNTS)
    spec = PartitionSpec(
        0, partition_map, feed_factory=f"{__name__}:restrictable_feed", adapter="fake"
    )
    feed = partition_feed(spec, SystemClock())
    assert isinstance(feed.adapter, AccountFilter)
    assert sorted(feed.adapter.asked_for) == partition_map.accounts_of(0)
    assert {a.id for a in feed.adapter.fetch_accounts()} == set(partition_map.accounts_of(0))
