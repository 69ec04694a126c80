"""The provisioned Grafana dashboard reads only metrics the service really exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.kit import DEPLOY, SCRAPE_SERIES, metric_names, referenced_metrics

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "bastion.json"
PROVISIONING = DEPLOY / "grafana" / "provisioning"
# What the dashboard must show (issue 15.5): each topic is in some panel's expression.
TOPICS = {
    "trading states": "bastion_trading_state",
    "breakers": "bastion_breaker_state",
    "escalation levels": "bastion_positions_by_level",
    "cycle latency": "bastion_evaluation_seconds_bucket",
    "data age": "bastion_data_age_seconds",
    "reloads": "bastion_policy_reloads_total",
    "alerts": "bastion_alerts_total",
    "order checks": "bastion_order_checks_total",
    "alert delivery": "bastion_alerts_sent_total",
}


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


def _expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            yield f"annotation {annotation['name']}", annotation["expr"]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def test_dashboard_when_parsed_then_every_metric_name_is_exported(
    dashboard: dict[str, Any], exported_metrics: frozenset[str]
) -> None:
    """Every metric a panel or annotation queries is on the live service's /metrics."""
    known = exported_metrics | SCRAPE_SERIES
    unknown = {
        (title, name)
        for title, expression in _expressions(dashboard)
        for name in referenced_metrics(expression)
        if name not in known
    }
    assert not unknown, f"panels query metrics the service does not export: {sorted(unknown)}"


def test_dashboard_when_parsed_then_every_panel_queries_a_metric(
    dashboard: dict[str, Any],
) -> None:
    """No panel is empty or queries nothing Bastion exports (a typo would read as no data)."""
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        expressions = [target["expr"] for target in panel.get("targets", [])]
        assert expressions, f"panel {panel['title']!r} has no query"
        for expression in expressions:
            assert referenced_metrics(expression), f"{panel['title']!r}: {expression!r}"


def test_dashboard_when_parsed_then_it_covers_every_topic(dashboard: dict[str, Any]) -> None:
    """Trading states, breakers, escalation, latency, data age, reloads, alerts, checks."""
    read = {
        name for _, expression in _expressions(dashboard) for name in referenced_metrics(expression)
    }
    missing = {topic for topic, metric in TOPICS.items() if metric not in read}
    assert not missing


def test_dashboard_when_parsed_then_ids_are_unique_and_source_is_templated(
    dashboard: dict[str, Any],
) -> None:
    """Grafana needs unique panel ids; every query goes through the `datasource` variable."""
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "bastion-overview"
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_provisioning_when_read_then_it_loads_the_checked_in_dashboard() -> None:
    """The provider's path is where compose mounts deploy/grafana/dashboards/, and the
    data source points at the compose Prometheus."""
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "bastion.yml").read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    path = provider["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{path}:ro" in mounts
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert source["datasources"][0]["uid"] == "prometheus"


def test_metric_names_when_exposition_has_types_then_sample_names_follow() -> None:
    """The name helper derives what Prometheus stores: counters `_total`, histograms
    `_bucket` / `_sum` / `_count`, gauges as they are."""
    text = "# TYPE bastion_x_total counter\n# TYPE bastion_h histogram\n# TYPE bastion_g gauge\n"
    assert metric_names(text) == {
        "bastion_x",
        "bastion_x_total",
        "bastion_h_bucket",
        "bastion_h_sum",
        "bastion_h_count",
        "bastion_g",
    }


def test_referenced_metrics_when_expression_has_labels_and_functions_then_names_only() -> None:
    """Label values, functions and `by` clauses are not metric names."""
    expression = (
        "histogram_quantile(0.99, sum by (le) (rate(bastion_order_check_seconds_bucket"
        '{job="bastion_x"}[5m]))) > 0 and up{job="bastion"} == 1'
    )
    assert referenced_metrics(expression) == {"bastion_order_check_seconds_bucket", "up"}
