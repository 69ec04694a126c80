"""One /metrics for the head and every partition: each sample labelled `partition`.

Each partition renders its own registry (the single-process service's metrics, its
process collector included); the head parses those expositions and its own, and writes
one exposition where every family appears once and every sample carries
`partition="K"` (the head's: `partition="head"`). Sum across partitions in PromQL
(`sum without (partition) (...)`); nothing is summed here, so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from bastion.service.metrics import CONTENT_TYPE, ServiceMetrics

PARTITION_LABEL = "partition"


def merge_expositions(parts: Iterable[tuple[str, bytes]]) -> bytes:
    """The expositions `(partition, text)` as one, each sample labelled by its part."""
    families: dict[str, Metric] = {}
    for partition, text in parts:
        for family in text_string_to_metric_families(text.decode("utf-8")):
            merged = families.get(family.name)
            if merged is None:
                merged = Metric(family.name, family.documentation, family.type, family.unit)
                families[family.name] = merged
            for sample in family.samples:
                labels = {**sample.labels, PARTITION_LABEL: partition}
                merged.add_sample(sample.name, labels, sample.value, sample.timestamp)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))
    return generate_latest(registry)


class _Fixed(Collector):
    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self._families)


class HeadMetrics(ServiceMetrics):
    """The head's metrics (its HTTP front's refusals, the partitions' health, reloads)
    rendered together with every partition's (`partition_texts`, fetched per scrape)."""

    def __init__(self) -> None:
        super().__init__()
        self.partition_texts: Callable[[], list[tuple[str, bytes]]] = list
        self.partition_up = Gauge(
            "bastion_ray_partition_up",
            "1 while the partition's actor serves; 0 while it is down or restarting "
            "(its accounts are REDUCING).",
            ["partition_index"],
            registry=self.registry,
        )
        self.partition_restarts = Counter(
            "bastion_ray_partition_restarts",
            "Times the partition's actor was started again after it died.",
            ["partition_index"],
            registry=self.registry,
        )
        self.reload_epoch = Gauge(
            "bastion_ray_reload_epoch",
            "The reload epoch every partition serves (it grows by one per reload committed).",
            registry=self.registry,
        )
        self.health_check_failures = Counter(
            "bastion_ray_health_check_failures",
            "Rounds of the head's partition health check that raised (not a partition "
            "down: the check itself). While it fails a dead partition is noticed only by "
            "the next call routed to it, which answers 503.",
            registry=self.registry,
        )
        self.reloads_aborted = Counter(
            "bastion_ray_reloads_aborted",
            "Reloads aborted on every partition because one could not prepare or fence.",
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        own, _ = super().render()
        return merge_expositions([("head", own), *self.partition_texts()]), CONTENT_TYPE
