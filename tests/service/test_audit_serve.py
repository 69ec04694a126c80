"""The real `bastion serve --auth --audit`: every action lands in a verifiable trail,
under the identity of the token that asked; a failing trail is loud and fails closed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bastion.cli.main import main
from tests.conftest import POLICIES
from tests.service.test_persist_serve import Running, _serve, _stop, _until

KEY = "k" * 32  # BASTION_AUDIT_KEY: the trail is HMAC-keyed
ORDER = {"account_id": "gen-01", "symbol": "ETH-USD", "action": "open", "target_size": "0.1"}


def _bastion() -> str:
    script = shutil.which("bastion", path=str(Path(sys.executable).parent))
    assert script is not None
    return script


def _token(auth: Path, name: str, role: str) -> str:
    """A token from `bastion auth token NAME --role ROLE --add-to FILE`."""
    done = subprocess.run(
        [
            _bastion(),
            "auth",
            "token",
            name,
            "--role",
            role,
            "--add-to",
            str(auth),
            "--format",
            "token",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _call(
    url: str, token: str | None = None, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if body is None else "POST"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _audit(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        [_bastion(), "audit", *args],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "BASTION_AUDIT_KEY": KEY},
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(autouse=True)
def audit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The served process inherits the key from the environment."""
    monkeypatch.setenv("BASTION_AUDIT_KEY", KEY)


def test_serve_when_every_kind_of_action_is_taken_then_the_trail_holds_each_with_its_principal(
    tmp_path: Path, cleanup: list[Running]
) -> None:
    """Checks, reports, refusals, a guarded reload and its officer's acceptance: each is
    one record naming the token's principal; the trail verifies, and an edit is caught."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    auth = tmp_path / "principals.yaml"
    tom, alice, olivia = (
        _token(auth, "tom", "trader"),
        _token(auth, "alice", "operator"),
        _token(auth, "olivia", "officer"),
    )
    state = tmp_path / "state.json"
    running = _serve(state, "--policies", str(policies), "--auth", str(auth))
    cleanup.append(running)
    url = running.url
    _until(lambda: _call(f"{url}/readyz")[0] == 200, "the service to be ready")

    assert _call(f"{url}/api/v1/status")[0] == 401  # anonymous
    assert _call(f"{url}/-/reload", tom, {})[0] == 403  # a trader may not reload
    assert _call(f"{url}/api/v1/check", tom, ORDER)[0] == 200
    assert _call(f"{url}/api/v1/orders", tom, {**ORDER, "order_id": "T-1"})[0] == 200
    reset = {"breaker": "portfolio_loss", "subject": "portfolio:all", "reason": "test"}
    assert _call(f"{url}/api/v1/breakers/reset", alice, reset)[0] == 409  # not tripped
    # Remove a breaker: the reload is refused (guard), then accepted by the officer.
    text = (policies / "breakers.yaml").read_text()
    start = text.index("    - id: volume_anomaly")
    end = text.index("    - id: system_error_rate")
    (policies / "breakers.yaml").write_text(text[:start] + text[end:])
    status, refused = _call(f"{url}/-/reload", alice, {})
    assert status == 422, refused
    keys = [removal["key"] for removal in refused["removals"]]
    assert any(key.endswith("breaker/volume_anomaly") for key in keys)
    assert _call(f"{url}/-/reload", alice, {"accept_removal": keys})[0] == 403  # officer only
    status, accepted = _call(f"{url}/-/reload", olivia, {"accept_removal": keys})
    assert status == 200, accepted
    head = _call(f"{url}/api/v1/status", olivia)[1]["audit_head"]
    assert head["seq"] > 0
    assert _stop(running) == 0

    trail = tmp_path / "audit"  # the default: beside the --state file
    code, out = _audit("verify", str(trail))
    assert code == 0, out
    code, out = _audit("show", str(trail), "--format", "json")
    assert code == 0, out
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_kind.setdefault(record["kind"], []).append(record)
    refusals = [(r["principal"], r["data"]["status"]) for r in by_kind["auth_refused"]]
    assert refusals == [(None, 401), ("tom", 403), ("alice", 403)]
    assert [r["principal"] for r in by_kind["order_checked"]] == ["tom"]
    assert by_kind["order_checked"][0]["data"]["decision"]["inputs"]  # what decided it
    assert [r["principal"] for r in by_kind["order_reported"]] == ["tom"]
    assert by_kind["order_reported"][0]["data"]["order_id"] == "T-1"
    (reset_record,) = by_kind["breaker_reset_requested"]
    assert (reset_record["principal"], reset_record["data"]["status"]) == ("alice", 409)
    rejected = [r for r in by_kind["reload_rejected"] if r["principal"] == "alice"]
    assert [r["data"]["reason"] for r in rejected] == ["removes_protection"]
    (reloaded,) = [r for r in by_kind["policy_reloaded"] if r["principal"] == "olivia"]
    assert reloaded["data"]["version_before"] != reloaded["data"]["version_after"]
    assert reloaded["data"]["files"]  # the files behind the changed policies
    assert by_kind["service_started"] and by_kind["service_stopped"]
    assert tom not in out and alice not in out and olivia not in out

    # One byte edited in a copy of the real trail: verify names the file and line.
    copy = tmp_path / "copy"
    shutil.copytree(trail, copy)
    first = sorted(copy.glob("audit-*.jsonl"))[0]
    lines = first.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"kind":', '"kind" :', 1)
    first.write_text("".join(lines))
    code, out = _audit("verify", str(copy))
    assert code == 1
    assert f"{first.name}:3" in out


def test_serve_when_the_audit_directory_cannot_be_written_then_exit_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An audit directory that is a file: refused at start, the path named, no traceback."""
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("x")
    code = main(["serve", "--once", "--policies", str(POLICIES), "--audit", str(blocked)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(blocked) in err
    assert "Traceback" not in err
