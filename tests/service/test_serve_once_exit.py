"""`bastion serve --adapter VENUE --once`: exit codes and words that tell the truth (issue #12).

Each venue's real SDK runs against its loopback stub (tests/venues). Exit 0 only when a
poll succeeded and the evaluation ran; 2 when the adapter cannot be set up or the poll
failed, with the reason on stderr in one line — never "no decisions" and exit 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bastion.cli.main import main
from tests.conftest import POLICIES
from tests.venues import routes_alpaca, routes_binance, routes_kraken
from tests.venues.stub import VenueFacts, VenueStub

FACTS: dict[str, VenueFacts] = {
    "alpaca": routes_alpaca.FACTS,
    "binance": routes_binance.FACTS,
    "kraken": routes_kraken.FACTS,
}
ENV_KEYS = [var for facts in FACTS.values() for var in (facts.key_var, facts.secret_var)]


@pytest.fixture(scope="module")
def stubs() -> Iterator[dict[str, VenueStub]]:
    started = {name: VenueStub(f.routes, f.key, f.secret) for name, f in FACTS.items()}
    yield started
    for stub in started.values():
        stub.close()


@pytest.fixture(params=list(FACTS))
def venue(
    request: pytest.FixtureRequest, stubs: dict[str, VenueStub], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, VenueStub]]:
    name: str = request.param
    stub = stubs[name]
    stub.reset()
    for var in ENV_KEYS:
        monkeypatch.delenv(var, raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv(FACTS[name].key_var, FACTS[name].key)
    monkeypatch.setenv(FACTS[name].secret_var, FACTS[name].secret)
    yield name, stub
    stub.reset()


def serve_once(
    name: str, stub: VenueStub, tmp_path: Path, capsys: pytest.CaptureFixture[str], **extra: object
) -> tuple[int, str, str]:
    """Run `bastion serve --adapter NAME --once` on the stub; (exit code, stdout, stderr)."""
    urls = (
        {"trading_url": stub.url, "data_url": stub.url}
        if name == "alpaca"
        else {"base_url": stub.url}
    )
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"timeout_s": 2.0, **urls, **extra}), encoding="utf-8")
    argv = ["serve", "--adapter", name, "--config", str(config), "--policies", str(POLICIES)]
    code = main([*argv, "--once", "--log-format", "json"])
    out, err = capsys.readouterr()
    return code, out, err


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_serve_once_when_venue_answers_then_exit_0_and_decisions_printed(
    venue: tuple[str, VenueStub], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A poll that worked and an evaluation that ran: exit 0 (the stub's option, expired by
    today's wall clock, is listed as unevaluable: one record, not a failed poll)."""
    code, out, err = serve_once(*venue, tmp_path, capsys)
    assert code == 0, err
    assert '"event": "cycle_evaluated"' in out  # --log-format json: JSON lines only
    assert "bastion serve: error" not in err


def test_serve_once_when_key_refused_then_exit_2_with_reason_on_stderr(
    venue: tuple[str, VenueStub],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """401 / -2015 / EAPI:Invalid key is a failure: exit 2, one stderr line, no all-clear."""
    name, stub = venue
    monkeypatch.setenv(FACTS[name].key_var, "not-the-key")
    code, out, err = serve_once(name, stub, tmp_path, capsys)
    assert code == 2
    line = last_line(err)
    assert line.startswith("bastion serve")
    assert FACTS[name].key_var in line  # the fix names the variable, never its value
    assert "not-the-key" not in err
    assert "nothing crossed a threshold" not in out
    assert "trading states: none" not in out


def test_serve_once_when_benchmark_not_listed_then_exit_2_naming_symbol_and_venue(
    venue: tuple[str, VenueStub], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A benchmark the venue does not list stops the start, naming both: never a poll."""
    name, stub = venue
    unknown = FACTS[name].unknown_symbol
    code, _out, err = serve_once(name, stub, tmp_path, capsys, benchmark=unknown)
    assert code == 2
    line = last_line(err)
    assert f"benchmark {unknown!r} is not listed by {name}" in line
    assert not any(
        seen.path.endswith(("/account", "/positions", "/Balance")) for seen in stub.requests
    )


def test_serve_once_when_benchmark_none_then_no_benchmark_is_polled(
    venue: tuple[str, VenueStub], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`benchmark: none` runs without one (correlations unevaluable) and exits 0."""
    name, stub = venue
    code, _out, err = serve_once(name, stub, tmp_path, capsys, benchmark="none")
    assert code == 0, err
    asked = {
        seen.param("symbol") or seen.param("symbols") or seen.param("pair")
        for seen in stub.requests
    }
    if name != "binance":  # BTCUSDT is also a held position's symbol on the Binance stub
        assert FACTS[name].benchmark not in asked


def test_serve_once_when_one_position_unusable_then_exit_0_and_it_is_listed(
    venue: tuple[str, VenueStub], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unlisted asset is one unevaluable position, listed with why; the rest evaluated."""
    name, stub = venue
    assert FACTS[name].add_unlisted is not None
    bad_id = FACTS[name].add_unlisted(stub)
    code, out, err = serve_once(name, stub, tmp_path, capsys)
    assert code == 0, err
    (evaluated,) = [e for e in map(json.loads, out.splitlines()) if e["event"] == "cycle_evaluated"]
    assert any(item.startswith(f"position {bad_id}") for item in evaluated["unevaluable"])
