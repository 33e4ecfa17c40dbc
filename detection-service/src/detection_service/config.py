"""Every variable the detection service reads, named once (see .env.example)."""

import os
from datetime import timedelta
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from detection_service.pipeline.lanes import MAX_BACKGROUND_SHARE
from detection_service.sandbox.limits import SandboxLimits
from detection_service.tracking.tracker import TrackingSettings
from objectvision_common.limits import MAX_DETECTIONS_LIMIT
from objectvision_common.settings import EventsConsumerSettings, GrpcServiceSettings

MIB = 1024 * 1024


class InferenceSettings(GrpcServiceSettings):
    """What serving detections needs: Triton, micro-batching, thresholds and upload limits.

    The realtime role (ADR 0019) reads these alone; the full service adds storage, jobs and
    video in DetectionSettings.
    """

    grpc_port: int = Field(default=50052, validation_alias="DETECTION_GRPC_PORT")
    metrics_port: int = Field(default=9102, validation_alias="DETECTION_METRICS_PORT")

    # One endpoint, several (`ipv4:10.0.0.1:8001,10.0.0.2:8001`) or a DNS name resolving to
    # every Triton pod (`dns:///triton-headless:8001`): calls go round-robin over all.
    triton_url: str = Field(default="127.0.0.1:8001", validation_alias="TRITON_URL")
    # gRPC serving processes sharing DETECTION_GRPC_PORT (SO_REUSEPORT): one Python process
    # serves on one core; a pod in front of a GPU needs several. The first also runs the job
    # workers, the outbox relay and the health port; the parent serves the merged metrics.
    serving_processes: int = Field(
        default=1, ge=1, le=64, validation_alias="DETECTION_SERVING_PROCESSES"
    )
    # The Triton channel is renewed this often, so DNS is resolved again and new pods get calls.
    triton_channel_max_age_seconds: float = Field(
        default=60.0, gt=0, validation_alias="TRITON_CHANNEL_MAX_AGE_SECONDS"
    )
    # The deployment's default model: requests that name none get it (GET /api/v1/models
    # lists the others; Triton's model repository decides which exist).
    triton_model_name: str = Field(
        default="yolov8n", min_length=1, validation_alias="TRITON_MODEL_NAME"
    )
    # How long the list of models and their states (Triton's repository index) is reused
    # before it is read again; an unknown or not-ready name is always checked afresh.
    model_catalog_refresh_seconds: float = Field(
        default=2.0, gt=0, validation_alias="MODEL_CATALOG_REFRESH_SECONDS"
    )
    # The served ONNX, read once at start-up for its class names; defaults under the data dir.
    model_path: Path | None = Field(default=None, validation_alias="SERVED_MODEL_PATH")
    inference_timeout_seconds: float = Field(
        default=10.0, gt=0, validation_alias="INFERENCE_TIMEOUT_SECONDS"
    )

    # Micro-batching: a batch leaves when it is full or its first frame has waited this long.
    # The batch is also capped by the served model's max_batch_size read from Triton.
    detect_max_batch: int = Field(default=16, ge=1, validation_alias="DETECT_MAX_BATCH")
    detect_max_delay_ms: float = Field(default=0.0, ge=0, validation_alias="DETECT_MAX_DELAY_MS")
    detect_max_inflight_batches: int = Field(
        default=2, ge=1, validation_alias="DETECT_MAX_INFLIGHT_BATCHES"
    )
    # Frames waiting for a batch beyond this, in one lane, are refused (UNAVAILABLE) instead
    # of queueing; job work waits in a lane of its own (ADR 0028).
    detect_max_queue: int = Field(default=512, ge=1, validation_alias="DETECT_MAX_QUEUE")
    # What one user may have waiting in one lane: more is refused with RESOURCE_EXHAUSTED
    # (429, Retry-After), so one user's flood cannot fill the lane for everybody.
    detect_max_queue_per_user: int = Field(
        default=256, ge=1, validation_alias="DETECT_MAX_QUEUE_PER_USER"
    )
    # The part of the images sent to Triton that job work (batch items, video frames) gets
    # while interactive callers (Detect, DetectStream) also wait: 0 gives callers strict
    # priority; either lane alone always gets the whole batcher.
    detect_background_share: float = Field(
        default=0.2, ge=0, le=MAX_BACKGROUND_SHARE, validation_alias="DETECT_BACKGROUND_SHARE"
    )
    stream_max_in_flight: int = Field(
        default=8, ge=1, validation_alias="DETECT_STREAM_MAX_IN_FLIGHT"
    )

    confidence_threshold: float = Field(
        default=0.25, gt=0, le=1, validation_alias="CONFIDENCE_THRESHOLD"
    )
    iou_threshold: float = Field(default=0.7, gt=0, le=1, validation_alias="IOU_THRESHOLD")
    max_detections: int = Field(
        default=300, ge=1, le=MAX_DETECTIONS_LIMIT, validation_alias="MAX_DETECTIONS"
    )

    # Refuse detection work (Detect, batch and video jobs, streams) to accounts whose email
    # address is not verified (ADR 0029): a sign-up with an address nobody reads gets no
    # free quota. Off by default, so a local stack works without reading its mail.
    require_verified_email: bool = Field(default=False, validation_alias="REQUIRE_VERIFIED_EMAIL")

    max_upload_bytes: int = Field(default=20 * MIB, ge=1, validation_alias="MAX_UPLOAD_BYTES")
    max_image_pixels: int = Field(default=40_000_000, ge=1, validation_alias="MAX_IMAGE_PIXELS")
    max_batch_files: int = Field(default=100, ge=1, validation_alias="MAX_BATCH_FILES")
    # Unfinished (pending or processing) batch and video jobs one account may have; another is
    # a 429 too_many_jobs (ADR 0044). 0: no limit.
    max_unfinished_jobs_per_user: int = Field(
        default=1000, ge=0, validation_alias="MAX_UNFINISHED_JOBS_PER_USER"
    )
    # Tracked streams and videos (ADR 0038): a box at least this confident may start a track,
    # and a track keeps its id this long while its object is out of sight.
    track_activation_confidence: float = Field(
        default=0.5, gt=0, le=1, validation_alias="TRACK_ACTIVATION_CONFIDENCE"
    )
    track_lost_seconds: float = Field(
        default=1.0, gt=0, le=60, validation_alias="TRACK_LOST_SECONDS"
    )
    decode_workers: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1), ge=1, validation_alias="DECODE_WORKERS"
    )
    # Annotated images are decoded and drawn by confined child processes (ADR 0043): how many
    # (started when first needed), the address space of each, and how long one image may take
    # before its child is stopped and replaced.
    annotation_workers: int = Field(default=2, ge=1, le=32, validation_alias="ANNOTATION_WORKERS")
    annotation_sandbox_memory_mb: int = Field(
        default=1024, ge=256, validation_alias="ANNOTATION_SANDBOX_MEMORY_MB"
    )
    annotation_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, validation_alias="ANNOTATION_TIMEOUT_SECONDS"
    )
    # Every sandbox child (videos, annotated images) takes away its own network, programs and
    # files (seccomp and Landlock, ADR 0041) where the kernel offers them. Off: a missing layer
    # is logged and exported at start and files are read with the rest of the sandbox. On: the
    # service refuses to start without both.
    sandbox_require_confinement: bool = Field(
        default=False, validation_alias="SANDBOX_REQUIRE_CONFINEMENT"
    )

    @model_validator(mode="after")
    def _model_under_data_dir(self) -> Self:
        if self.model_path is None:
            self.model_path = self.data_dir / "models" / "yolov8n_served.onnx"
        return self

    @property
    def served_model_path(self) -> Path:
        assert self.model_path is not None
        return self.model_path

    @property
    def annotation_sandbox(self) -> SandboxLimits:
        return SandboxLimits(
            memory_bytes=self.annotation_sandbox_memory_mb * MIB,
            cpu_seconds=None,
            require_confinement=self.sandbox_require_confinement,
        )

    @property
    def tracking(self) -> TrackingSettings:
        return TrackingSettings(
            activation_confidence=self.track_activation_confidence,
            lost_seconds=self.track_lost_seconds,
        )


class DetectionSettings(InferenceSettings, EventsConsumerSettings):
    """The full service: the inference settings plus stored results, jobs and video, and the
    erasure of deleted accounts, read from the events stream (ADR 0025)."""

    # Answers cached by image content + model version + options (0 seconds: no cache).
    result_cache_ttl_seconds: int = Field(
        default=3600, ge=0, validation_alias="RESULT_CACHE_TTL_SECONDS"
    )
    result_cache_max_entries: int = Field(
        default=100_000, ge=1, validation_alias="RESULT_CACHE_MAX_ENTRIES"
    )

    job_workers: int = Field(default=2, ge=0, validation_alias="JOB_WORKERS")
    job_stream: str = Field(default="detection:jobs", validation_alias="JOB_STREAM")
    job_consumer_group: str = Field(
        default="detection-workers", validation_alias="JOB_CONSUMER_GROUP"
    )
    job_claim_idle_ms: int = Field(default=30_000, ge=100, validation_alias="JOB_CLAIM_IDLE_MS")
    # Unfinished jobs with no worker heartbeat for this long and no message on the stream (it
    # was lost) are put on the stream again (ADR 0044).
    job_requeue_after_seconds: float = Field(
        default=60.0, gt=0, validation_alias="JOB_REQUEUE_AFTER_SECONDS"
    )

    @property
    def job_lease(self) -> timedelta:
        """How recent a processing job's heartbeat must be for its worker to count as alive:
        half the claim time, while a live worker beats every third of it (JobWorker) and a
        dead one's message is reclaimed only after all of it."""
        return timedelta(milliseconds=self.job_claim_idle_ms / 2)

    # Video jobs (ADR 0016): limits judged before anything is decoded, and the sampling used
    # when a request names none.
    max_video_bytes: int = Field(default=200 * MIB, ge=1, validation_alias="MAX_VIDEO_BYTES")
    max_video_seconds: float = Field(default=600.0, gt=0, validation_alias="MAX_VIDEO_SECONDS")
    max_video_frame_pixels: int = Field(
        default=4096 * 2160, ge=1, validation_alias="MAX_VIDEO_FRAME_PIXELS"
    )
    video_default_fps: float = Field(default=1.0, gt=0, validation_alias="VIDEO_DEFAULT_FPS")
    video_max_fps: float = Field(default=60.0, gt=0, validation_alias="VIDEO_MAX_FPS")
    # Decoded frames waiting for inference or for the annotated video's encoder, per job:
    # what bounds a video job's memory (each frame is width x height x 3 bytes).
    video_frames_in_flight: int = Field(
        default=8, ge=1, le=64, validation_alias="VIDEO_FRAMES_IN_FLIGHT"
    )
    # A running video job with counting lines or zones puts its counts so far on a progress
    # event at most this often (each is a query over its frames); 0: on every commit.
    video_live_counts_seconds: float = Field(
        default=2.0, ge=0, le=3600, validation_alias="VIDEO_LIVE_COUNTS_SECONDS"
    )
    # What the child process that parses and decodes one upload may use (ADR 0040): address
    # space, and CPU seconds before it is stopped (a probe, or a whole job's decoding).
    video_sandbox_memory_mb: int = Field(
        default=4096, ge=256, validation_alias="VIDEO_SANDBOX_MEMORY_MB"
    )
    video_sandbox_cpu_seconds: int = Field(
        default=1800, ge=1, validation_alias="VIDEO_SANDBOX_CPU_SECONDS"
    )

    @property
    def video_sandbox(self) -> SandboxLimits:
        return SandboxLimits(
            memory_bytes=self.video_sandbox_memory_mb * MIB,
            cpu_seconds=self.video_sandbox_cpu_seconds,
            require_confinement=self.sandbox_require_confinement,
        )

    storage_dir: Path | None = Field(default=None, validation_alias="STORAGE_DIR")
    # Stored images no row refers to (a crash between writing and committing) are removed
    # once older than the grace period, checked every interval.
    orphan_sweep_interval_seconds: float = Field(
        default=3600.0, gt=0, validation_alias="ORPHAN_SWEEP_INTERVAL_SECONDS"
    )
    orphan_grace_seconds: float = Field(
        default=3600.0, ge=60, validation_alias="ORPHAN_GRACE_SECONDS"
    )

    # The events stream's consumer group of this service (the EVENTS_* variables say how it
    # reads); it acts on `user.deleted` alone.
    detection_events_consumer_group: str = Field(
        default="detection", min_length=1, validation_alias="DETECTION_EVENTS_CONSUMER_GROUP"
    )

    # Retention (ADR 0031): finished jobs and detections outside jobs older than this many
    # days are deleted with their files, checked every interval; 0 keeps everything.
    retention_days: int = Field(default=0, ge=0, le=36_500, validation_alias="RETENTION_DAYS")
    retention_sweep_interval_seconds: float = Field(
        default=3600.0, gt=0, validation_alias="RETENTION_SWEEP_INTERVAL_SECONDS"
    )

    # Usage metering (ADR 0030): images each account had detected, per UTC day, written to
    # PostgreSQL every USAGE_FLUSH_SECONDS; USAGE_MONTHLY_IMAGE_QUOTA images per calendar
    # month (UTC) per account, 0 for no quota (an admin may set another per account).
    usage_monthly_image_quota: int = Field(
        default=0, ge=0, validation_alias="USAGE_MONTHLY_IMAGE_QUOTA"
    )
    usage_flush_seconds: float = Field(
        default=2.0, gt=0, le=300, validation_alias="USAGE_FLUSH_SECONDS"
    )

    @model_validator(mode="after")
    def _storage_under_data_dir(self) -> Self:
        if self.storage_dir is None:
            self.storage_dir = self.data_dir / "objects"
        return self

    @property
    def objects_dir(self) -> Path:
        assert self.storage_dir is not None
        return self.storage_dir


def serving_processes(settings: InferenceSettings) -> int:
    """DETECTION_SERVING_PROCESSES; a named function, as the runner travels to spawned
    serving processes by pickling."""
    return settings.serving_processes
