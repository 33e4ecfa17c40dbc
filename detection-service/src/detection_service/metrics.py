"""Prometheus metrics of the detection path, created against a registry the caller chooses.

The server passes the default registry (exported on DETECTION_METRICS_PORT); tests pass a
fresh one, so several services in one process do not collide.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from detection_service.pipeline.types import DetectedObject

_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Confidence of kept objects: tenths, and finer at the top where most of a good model's are.
_CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
# Objects in one image; 0 first, so that the share of images with nothing in them is a bucket.
_OBJECTS_PER_IMAGE_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 300)


@dataclass(frozen=True)
class ModelMonitor:
    """What each model sees, in aggregate (ADR 0057): objects by class, their confidence, and
    objects per image, over fresh detections (a cached answer was seen before). A shift of
    these against their own past is the first sign that the pictures changed under a model
    (a camera moved, night fell, a lens fogged) before anyone looks at a result. Class names
    come from the models' descriptions, never from callers, so the series are bounded."""

    objects: Counter
    confidence: Histogram
    objects_per_image: Histogram

    def observe(self, model: str, objects: Sequence[DetectedObject]) -> None:
        self.objects_per_image.labels(model).observe(len(objects))
        confidence = self.confidence.labels(model)
        for obj in objects:
            self.objects.labels(model, obj.class_name).inc()
            confidence.observe(obj.confidence)


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
    model_monitor: ModelMonitor

    def __post_init__(self) -> None:
        # Each kind from the start, so that increase() sees the first failure of each
        # (DetectionModelBackendDown alerts on the first backend_down).
        for kind in ("error", "unavailable", "backend_down"):
            self.inference_errors.labels(kind)

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
                "Batched Triton requests that failed, by kind (backend_down: a model's backend"
                " process did not answer).",
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
            model_monitor=ModelMonitor(
                objects=Counter(
                    "detection_objects_total",
                    "Objects kept in fresh detections, by model and class (what each model"
                    " sees; ADR 0057).",
                    ["model", "class_name"],
                    registry=registry,
                ),
                confidence=Histogram(
                    "detection_object_confidence",
                    "Confidence of the objects kept in fresh detections, by model.",
                    ["model"],
                    buckets=_CONFIDENCE_BUCKETS,
                    registry=registry,
                ),
                objects_per_image=Histogram(
                    "detection_objects_per_image",
                    "Objects kept in one freshly detected image (or video frame), by model:"
                    ' the le="0" bucket counts images with nothing in them.',
                    ["model"],
                    buckets=_OBJECTS_PER_IMAGE_BUCKETS,
                    registry=registry,
                ),
            ),
        )
