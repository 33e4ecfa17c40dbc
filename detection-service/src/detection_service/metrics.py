"""Prometheus metrics of the detection path, created against a registry the caller chooses.

The server passes the default registry (exported on DETECTION_METRICS_PORT); tests pass a
fresh one, so several services in one process do not collide.
"""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class DetectionMetrics:
    batch_size: Histogram
    queue_wait: Histogram
    inference_latency: Histogram
    inference_errors: Counter
    images: Counter
    tiles: Counter
    job_items: Counter
    job_turns_given: Counter
    orphans_removed: Counter
    cache_lookups: Counter
    usage_unflushed: Gauge
    retention_removed: Counter
    sandbox_confined: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "DetectionMetrics":
        return cls(
            batch_size=Histogram(
                "detection_batch_size",
                "Frames per request sent to Triton by the micro-batcher.",
                buckets=(1, 2, 4, 8, 16, 32, 64),
                registry=registry,
            ),
            queue_wait=Histogram(
                "detection_queue_wait_seconds",
                "Time a frame waited in the micro-batcher before its batch was sent, by lane"
                " (interactive: Detect and DetectStream; background: job items and video frames).",
                ["lane"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            inference_latency=Histogram(
                "detection_inference_seconds",
                "Round trip of one batched Triton request.",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            inference_errors=Counter(
                "detection_inference_errors_total",
                "Batched Triton requests that failed, by kind.",
                ["kind"],
                registry=registry,
            ),
            images=Counter(
                "detection_images_total",
                "Images through the detector, by outcome (detected, cached, refused, unavailable).",
                ["outcome"],
                registry=registry,
            ),
            tiles=Counter(
                "detection_tiles_total",
                "Tiles cut from tiled images and sent to inference beside them (ADR 0051): how"
                " much tiling multiplies the inference detection_images_total asks for.",
                registry=registry,
            ),
            job_items=Counter(
                "detection_job_items_total",
                "Job items finished by the workers, by status.",
                ["status"],
                registry=registry,
            ),
            job_turns_given=Counter(
                "detection_job_turns_given_total",
                "Job messages a worker put back at the end of the stream so that another"
                " account's job, queued behind them, starts first (ADR 0044).",
                registry=registry,
            ),
            orphans_removed=Counter(
                "detection_orphaned_objects_removed_total",
                "Stored images removed because no database row referred to them.",
                registry=registry,
            ),
            cache_lookups=Counter(
                "detection_result_cache_lookups_total",
                "Answers looked up in the result cache, by outcome (hit, miss, unavailable).",
                ["outcome"],
                registry=registry,
            ),
            retention_removed=Counter(
                "detection_retention_removed_total",
                "Finished jobs and detections outside jobs deleted for being older than"
                " RETENTION_DAYS, by kind (job, detection).",
                ["kind"],
                registry=registry,
            ),
            sandbox_confined=Gauge(
                "detection_sandbox_confined",
                "1 where the video decoder child's confinement layer (syscall_filter: seccomp;"
                " file_rules: Landlock) was applied and held in the check at start (ADR 0041),"
                " 0 where this kernel left it off.",
                ["layer"],
                multiprocess_mode="livemin",
                registry=registry,
            ),
            usage_unflushed=Gauge(
                "detection_usage_unflushed_images",
                "Images metered and not yet written to PostgreSQL (ADR 0030); growing while"
                " the database cannot be written.",
                multiprocess_mode="livesum",
                registry=registry,
            ),
        )
