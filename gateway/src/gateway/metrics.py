"""Prometheus metrics of one gateway app, in a registry of its own.

A registry per app (not the process-wide default) lets tests and embedders build several
apps in one process without "duplicated timeseries" errors.
"""

import enum

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# Label for requests that matched no route, so scanners cannot explode the label space.
UNMATCHED_ROUTE = "unmatched"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class StreamKind(enum.Enum):
    """The gateway's two kinds of WebSocket, counted apart."""

    JOB = "job"
    DETECT = "detect"


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests served, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to serve an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.job_streams_open = Gauge(
            "gateway_job_streams_open",
            "Live job-progress WebSockets this replica holds (each with a gRPC stream).",
            registry=self.registry,
        )
        self.job_streams_closed = Counter(
            "gateway_job_streams_closed_total",
            "Live job-progress WebSockets this replica closed on its own, by reason: "
            "too_many (past WS_MAX_STREAMS_PER_ACCOUNT), revoked (the credential was revoked).",
            ["reason"],
            registry=self.registry,
        )
        self.detect_streams_open = Gauge(
            "gateway_live_detect_streams_open",
            "Live detection WebSockets this replica holds (each with a DetectStream).",
            registry=self.registry,
        )
        self.detect_streams_closed = Counter(
            "gateway_live_detect_streams_closed_total",
            "Live detection WebSockets this replica closed on its own, by reason: too_many "
            "(past WS_MAX_STREAMS_PER_ACCOUNT), revoked (the credential was revoked).",
            ["reason"],
            registry=self.registry,
        )
        self.live_frames = Counter(
            "gateway_live_detect_frames_total",
            "Frames answered on live detection WebSockets, by outcome: detected, or "
            "frame_error (not an image, over the quota, inference unavailable).",
            ["outcome"],
            registry=self.registry,
        )

    def streams(self, kind: StreamKind) -> tuple[Gauge, Counter]:
        """The open-streams gauge and the closed-streams counter of one kind of WebSocket."""
        if kind is StreamKind.JOB:
            return self.job_streams_open, self.job_streams_closed
        return self.detect_streams_open, self.detect_streams_closed

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
