"""Fixtures of the deploy-kit tests."""

from __future__ import annotations

import pytest

from tests.deploy.kit import metric_names, scrape_live_service


@pytest.fixture(scope="session")
def exported_metrics(tmp_path_factory: pytest.TempPathFactory) -> frozenset[str]:
    """The sample names the live sim service exports on /metrics (started once)."""
    return metric_names(scrape_live_service(tmp_path_factory.mktemp("serve")))
