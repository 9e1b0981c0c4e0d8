"""The service's Prometheus metrics, shared by every layer, and their exposition.

The metric objects live here, beside `config`, so that storage (S3 request durations), the
upload lifecycle (uploads, bytes, probes, leases, cleanup, webhooks) and the HTTP layer
(requests, open requests) record into the same registry without importing each other.

With several worker processes (`serve --workers N`), each process writes its samples to files
in `PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode, which `serve` switches on
by itself), and whichever worker answers `GET /metrics` adds up every worker's files: one truth
for the whole server. That directory must be set before this module is first imported.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "video_upload"

requests = Counter(
    f"{PREFIX}_http_requests", "HTTP requests answered, by method and status", ["method", "status"]
)
errors = Counter(
    f"{PREFIX}_http_errors", "HTTP requests answered with an error status", ["method", "status"]
)
open_requests = Gauge(
    f"{PREFIX}_http_open_requests",
    "HTTP requests being served now (each on a connection of its own)",
    multiprocess_mode="livesum",
)
bytes_received = Counter(f"{PREFIX}_bytes_received", "Upload bytes received and committed")
uploads_created = Counter(f"{PREFIX}_uploads_created", "Uploads created")
uploads_finished = Counter(f"{PREFIX}_uploads_finished", "Uploads whose every byte arrived")
uploads_terminated = Counter(f"{PREFIX}_uploads_terminated", "Uploads deleted by their owner")
s3_request_seconds = Histogram(
    f"{PREFIX}_s3_request_duration_seconds", "S3 requests, by operation", ["operation"]
)
probe_seconds = Histogram(f"{PREFIX}_probe_duration_seconds", "Probing a completed upload")
probes = Counter(f"{PREFIX}_probes", "Probes of completed uploads, by outcome", ["outcome"])
lease_preemptions = Counter(
    f"{PREFIX}_lease_preemptions",
    "Writers asked to stop because their owner sent a newer request",
)
cleanup_runs = Counter(f"{PREFIX}_cleanup_runs", "Expired-upload cleanup rounds")
cleanup_removed = Counter(
    f"{PREFIX}_cleanup_removed", "Uploads and orphans removed by cleanup", ["kind"]
)
webhook_deliveries = Counter(
    f"{PREFIX}_webhook_deliveries", "Webhook delivery attempts, by outcome", ["outcome"]
)
outbox_depth = Gauge(
    f"{PREFIX}_webhook_outbox_depth",
    "Webhook deliveries waiting to be sent",
    multiprocess_mode="mostrecent",
)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type: this process's, or in
    multiprocess mode every worker's, added up."""
    return generate_latest(_registry()), CONTENT_TYPE_LATEST


def serve_on_port(host: str, port: int) -> None:
    """Expose the metrics at `http://host:port/` from a thread of this process (prometheus-
    client's own server): `serve`'s METRICS_PORT. Run by the process that starts the workers,
    after multiprocess mode is on, so it adds up every worker's files."""
    start_http_server(port, addr=host, registry=_registry())


def _registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY
