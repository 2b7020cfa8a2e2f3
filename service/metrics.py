"""Prometheus metrics: requests as the API sees them, the queue and the jobs as Redis sees them.

Workers are other processes (other machines, even), so job counts and durations are not kept in
this process's memory: workers add them to a Redis hash (worker.record_duration) and a collector
reads it, with the queue depth and the number of live workers, at every scrape.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from service.jobs import DURATION_BUCKETS, STATS

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self, queue_getter, storage=None):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ramfer_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "ramfer_http_request_duration_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
        )
        self.submitted = Counter("ramfer_jobs_submitted", "videos accepted and queued", registry=self.registry)
        self.rejected = Counter(
            "ramfer_uploads_rejected", "uploads refused before queueing", ["code"], registry=self.registry
        )
        self.registry.register(QueueCollector(queue_getter))
        if storage is not None:
            self.registry.register(StorageCollector(storage))


class StorageCollector:
    """Whether the uploads' and results' storage (folder or S3 bucket) answers, at every scrape."""

    def __init__(self, storage):
        self.storage = storage

    def collect(self):
        try:
            self.storage.ping()
            up = 1
        except Exception as e:
            log.warning("metrics: storage unavailable: %s", e)
            up = 0
        yield GaugeMetricFamily("ramfer_storage_up", "whether the storage answered this scrape", value=up)


class QueueCollector:
    def __init__(self, queue_getter):
        self.queue_getter = queue_getter

    def collect(self):
        from rq.worker import Worker

        try:
            queue = self.queue_getter()
            depth = queue.count
            started = queue.started_job_registry.count
            workers = len(Worker.all(queue=queue))
            stats = {k.decode(): float(v) for k, v in queue.connection.hgetall(STATS).items()}
        except Exception as e:  # Redis down: say so through the gauge, do not fail the scrape
            log.warning("metrics: cannot read Redis: %s", e)
            yield GaugeMetricFamily("ramfer_redis_up", "whether Redis answered this scrape", value=0)
            return
        yield GaugeMetricFamily("ramfer_redis_up", "whether Redis answered this scrape", value=1)
        yield GaugeMetricFamily("ramfer_queue_depth", "jobs waiting for a worker", value=depth)
        yield GaugeMetricFamily("ramfer_jobs_running", "jobs being analysed now", value=started)
        yield GaugeMetricFamily("ramfer_workers", "live workers with the model loaded", value=workers)
        done = CounterMetricFamily("ramfer_jobs_completed", "jobs ended, by outcome", labels=["outcome"])
        done.add_metric(["finished"], stats.get("finished", 0))
        done.add_metric(["failed"], stats.get("failed", 0))
        yield done
        count = stats.get("finished", 0) + stats.get("failed", 0)
        buckets = [(str(le), stats.get(f"le_{le}", 0)) for le in DURATION_BUCKETS] + [("+Inf", count)]
        yield HistogramMetricFamily(
            "ramfer_job_duration_seconds",
            "time a worker spent on a job",
            buckets=buckets,
            sum_value=stats.get("seconds_sum", 0),
        )
