"""The --alerts file: the shipped example lints clean, each mistake is found at its
file:line:col with its code, `bastion lint` reports it like a policy's, the schema
file is what the source generates, and loading refuses an unset variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.cli.main import main
from bastion.engine.policy.loader import is_service_config
from bastion.engine.schemas import schema_text
from bastion.service.alerting.config import AlertConfigError, load_alert_policy
from bastion.service.alerting.lint import lint_alert_file
from bastion.service.alerting.schema import ALERTS_SCHEMA
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "alerts" / "alerts.yaml"
HEAD = "apiVersion: bastion/v1\nkind: AlertPolicy\nmetadata: {name: t}\nspec:\n"


def _findings(tmp_path: Path, spec: str) -> list[tuple[int, int, str]]:
    path = tmp_path / "alerts.yaml"
    path.write_text(HEAD + spec)
    return [(f.line, f.column, f.code) for f in lint_alert_file(path)[1]]


def test_example_when_linted_then_clean_and_loads() -> None:
    """examples/alerts/alerts.yaml has no finding and loads into receivers and routes."""
    assert lint_alert_file(EXAMPLE)[1] == []
    policy = load_alert_policy(EXAMPLE, {})
    assert [r.type for r in policy.receivers] == ["log"]
    assert policy.routes[0].timing.first_wait_s("critical") == 1.0


def test_schema_file_when_compared_with_source_then_identical() -> None:
    """schemas/alerts.schema.json is what ALERTS_SCHEMA generates (`make schemas`)."""
    on_disk = (ROOT / "schemas" / "alerts.schema.json").read_text(encoding="utf-8")
    assert on_disk == schema_text(ALERTS_SCHEMA)
    described = json.dumps(ALERTS_SCHEMA).count('"description"')
    assert described > 60  # every property is documented (hover help)


def test_lint_when_route_names_unknown_receiver_then_bst801_at_the_name(tmp_path: Path) -> None:
    """A misspelt receiver in a route: BST801 at the list item, with a suggestion."""
    found = _findings(
        tmp_path,
        "  receivers:\n    - {name: oncall, type: log}\n  routes:\n    - receivers: [oncal]\n",
    )
    assert found == [(6, 14, "BST805"), (8, 19, "BST801")]


def test_lint_when_email_has_no_host_then_required_error(tmp_path: Path) -> None:
    """An email receiver without host: BST010 at the receiver."""
    found = _findings(
        tmp_path,
        "  receivers:\n    - name: mail\n      type: email\n      from: a@b.c\n"
        "      to: [x@y.z]\n  routes:\n    - receivers: [mail]\n",
    )
    assert found == [(6, 7, "BST010")]


@pytest.mark.parametrize(
    ("receiver", "place"),
    [
        (
            "{name: m, type: email, host: h, from: a@b.c, to: [x@y.z], password: hunter2}",
            "password",
        ),
        ("{name: m, type: webhook, url: 'https://u:p@example.com/hook'}", "url"),
        ("{name: m, type: slack, url: 'https://hooks.slack.com/services/T/B/X'}", "url"),
        ("{name: m, type: webhook, url: 'https://e.com', headers: {Authorization: x}}", "header"),
    ],
)
def test_lint_when_secret_in_clear_then_bst802(tmp_path: Path, receiver: str, place: str) -> None:
    """A credential written in the file (not through *_env) is an error, BST802."""
    path = tmp_path / "alerts.yaml"
    path.write_text(f"{HEAD}  receivers:\n    - {receiver}\n  routes:\n    - receivers: [m]\n")
    findings = lint_alert_file(path)[1]
    assert [f.code for f in findings] == ["BST802"]
    assert findings[0].line == 6
    assert "_env" in findings[0].message or "secret_env" in findings[0].message


def test_lint_when_names_repeat_or_go_unused_then_bst803_and_bst805(tmp_path: Path) -> None:
    """Two receivers named alike is an error; one no route uses is a warning."""
    found = _findings(
        tmp_path,
        "  receivers:\n    - {name: a, type: log}\n    - {name: a, type: log}\n"
        "    - {name: spare, type: log}\n  routes:\n    - receivers: [a]\n",
    )
    assert found == [(7, 14, "BST803"), (8, 14, "BST805")]


def test_lint_when_match_value_unknown_then_bst806_warning(tmp_path: Path) -> None:
    """A severity no alert has (critcal): a warning with the closest known value."""
    path = tmp_path / "alerts.yaml"
    path.write_text(
        HEAD + "  receivers:\n    - {name: a, type: log}\n"
        "  routes:\n    - match: {severity: [critcal]}\n      receivers: [a]\n"
    )
    (finding,) = lint_alert_file(path)[1]
    assert (finding.code, finding.severity) == ("BST806", "warning")
    assert 'did you mean "critical"' in finding.message


def test_bastion_lint_when_given_an_alerts_file_then_file_line_col_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bastion lint FILE` checks an AlertPolicy like a policy: text findings, exit 1;
    the example exits 0. The policy loader passes AlertPolicy files by."""
    bad = tmp_path / "alerts.yaml"
    bad.write_text(HEAD + "  receivers:\n    - {name: a, type: log}\n  routes:\n"
                   "    - receivers: [b]\n")  # fmt: skip
    assert is_service_config(bad)
    assert main(["lint", str(bad)]) == 1
    assert f"{bad}:8:19: error BST801" in capsys.readouterr().out
    assert main(["lint", str(EXAMPLE)]) == 0


def test_load_when_env_variable_unset_then_refused_naming_it(tmp_path: Path) -> None:
    """A receiver whose *_env variable is not set: refused at start (exit 2), naming the
    variable and the receiver; set, the secret is read from it."""
    path = tmp_path / "alerts.yaml"
    path.write_text(
        HEAD + "  receivers:\n    - {name: chat, type: slack, url_env: TEST_SLACK_URL}\n"
        "  routes:\n    - receivers: [chat]\n"
    )
    with pytest.raises(AlertConfigError, match="TEST_SLACK_URL is not set"):
        load_alert_policy(path, {})
    policy = load_alert_policy(path, {"TEST_SLACK_URL": "http://127.0.0.1:1/x"})
    assert policy.receivers[0].options["url"] == "http://127.0.0.1:1/x"


def test_load_when_lint_errors_then_refused_with_each_place(tmp_path: Path) -> None:
    """A file with errors does not load: the error lists file:line:col of each."""
    path = tmp_path / "alerts.yaml"
    path.write_text(HEAD + "  receivers: []\n  routes: []\n")
    with pytest.raises(AlertConfigError, match=r"alerts.yaml:5:\d+: BST"):
        load_alert_policy(path, {})
