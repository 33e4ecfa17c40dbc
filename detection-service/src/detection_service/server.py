"""Explicit wiring: settings -> database, Redis, storage, Triton, batcher, workers, relay, gRPC.

`objectvision-detection serve` (the default) runs the gRPC server and the job workers in one
process (or DETECTION_SERVING_PROCESSES of them behind one port); `objectvision-detection
migrate` brings the `detection` schema to head. How it is run is objectvision_common.runner's.
"""

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from detection_service.accounts.events import AccountEvents
from detection_service.config import DetectionSettings, serving_processes
from detection_service.database import SCHEMA
from detection_service.grpc_api import DetectionServicer
from detection_service.images.orphans import OrphanSweeper
from detection_service.images.storage import LocalDirectoryStorage
from detection_service.jobs import service as jobs
from detection_service.jobs.queue import JobQueue
from detection_service.jobs.worker import JobProcessor, JobSweeper, JobWorker
from detection_service.metrics import DetectionMetrics
from detection_service.outbox import OUTBOX
from detection_service.pipeline.assembly import InferencePipeline
from detection_service.pipeline.result_cache import ResultCache
from detection_service.realtime.servicer import registration
from detection_service.retention.sweeper import RetentionSweeper
from detection_service.sandbox.check import check_sandbox
from detection_service.usage.meter import UsageMeter
from detection_service.video.probe import VideoLimits
from detection_service.video.worker import VideoProcessor
from objectvision_common.backlog import BacklogMonitor, outbox_probe, stream_probe
from objectvision_common.events import EventConsumer
from objectvision_common.outbox import OutboxRelay
from objectvision_common.runner import BackgroundWorker, Migrations, ServiceParts, ServiceRunner
from objectvision_common.stores import Stores

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass
class DetectionService:
    """Everything one process runs, built in dependency order and closed in reverse."""

    settings: DetectionSettings
    metrics: DetectionMetrics
    stores: Stores
    usage: UsageMeter
    pipeline: InferencePipeline
    queue: JobQueue
    processor: JobProcessor
    workers: list[JobWorker]
    sweeper: JobSweeper
    orphans: OrphanSweeper
    # Runs even with RETENTION_DAYS=0: an admin may have set one account's period.
    retention: RetentionSweeper
    # Reads the events stream in this service's own group: erases deleted accounts.
    accounts: EventConsumer
    relay: OutboxRelay
    backlog: BacklogMonitor
    servicer: DetectionServicer

    @classmethod
    async def create(
        cls, settings: DetectionSettings, *, registry: CollectorRegistry
    ) -> "DetectionService":
        metrics = DetectionMetrics.create(registry)
        stores = Stores.from_settings(settings, decode_responses=True)
        sessions, redis = stores.sessions, stores.redis
        storage = LocalDirectoryStorage(settings.objects_dir)
        usage = UsageMeter(
            sessions=sessions,
            default_quota=settings.usage_monthly_image_quota,
            flush_interval_s=settings.usage_flush_seconds,
            waiting_images=jobs.images_waiting,
            unflushed=metrics.usage_unflushed,
        )
        pipeline = await InferencePipeline.create(
            settings,
            metrics=metrics,
            usage=usage,
            cache=(
                ResultCache(
                    redis,
                    ttl_s=settings.result_cache_ttl_seconds,
                    max_entries=settings.result_cache_max_entries,
                    lookups=metrics.cache_lookups,
                )
                if settings.result_cache_ttl_seconds
                else None
            ),
        )
        detector, executor = pipeline.detector, pipeline.executor
        queue = JobQueue(redis, stream=settings.job_stream, group=settings.job_consumer_group)
        processor = JobProcessor(
            sessions=sessions,
            storage=storage,
            detector=detector,
            metrics=metrics,
            concurrency=settings.detect_max_batch,
            lease=settings.job_lease,
            video=VideoProcessor(
                sessions=sessions,
                storage=storage,
                detector=detector,
                executor=executor,
                metrics=metrics,
                frames_in_flight=settings.video_frames_in_flight,
                tracking=settings.tracking,
                sandbox=settings.video_sandbox,
                lease=settings.job_lease,
                live_counts_seconds=settings.video_live_counts_seconds,
            ),
        )
        # Unique per process start: a restarted replica must not inherit a dead one's identity.
        base = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        workers = [
            JobWorker(
                queue=queue,
                processor=processor,
                consumer=f"{base}-{n}",
                claim_idle_ms=settings.job_claim_idle_ms,
            )
            for n in range(settings.job_workers)
        ]
        sweeper = JobSweeper(
            sessions=sessions, queue=queue, requeue_after_s=settings.job_requeue_after_seconds
        )
        servicer = DetectionServicer(
            detector=detector,
            sessions=sessions,
            storage=storage,
            queue=queue,
            service_secret=settings.service_token_secret,
            max_batch_files=settings.max_batch_files,
            stream_max_in_flight=settings.stream_max_in_flight,
            tracking=settings.tracking,
            executor=executor,
            usage=usage,
            video_sandbox=settings.video_sandbox,
            video_limits=VideoLimits(
                max_bytes=settings.max_video_bytes,
                max_seconds=settings.max_video_seconds,
                max_frame_pixels=settings.max_video_frame_pixels,
                max_fps=settings.video_max_fps,
            ),
            video_default_fps=settings.video_default_fps,
            retention_days=settings.retention_days,
            max_unfinished_jobs=settings.max_unfinished_jobs_per_user,
        )
        return cls(
            settings=settings,
            metrics=metrics,
            stores=stores,
            usage=usage,
            pipeline=pipeline,
            queue=queue,
            processor=processor,
            workers=workers,
            sweeper=sweeper,
            orphans=OrphanSweeper(
                sessions=sessions,
                storage=storage,
                grace_s=settings.orphan_grace_seconds,
                interval_s=settings.orphan_sweep_interval_seconds,
                removed=metrics.orphans_removed,
            ),
            retention=RetentionSweeper(
                sessions=sessions,
                storage=storage,
                default_days=settings.retention_days,
                interval_s=settings.retention_sweep_interval_seconds,
                chunk_size=settings.erasure_chunk_size,
                removed=metrics.retention_removed,
                forget=detector.forget,
            ),
            accounts=EventConsumer.from_settings(
                settings,
                redis=redis,
                group=settings.detection_events_consumer_group,
                handle=AccountEvents(
                    sessions=sessions,
                    storage=storage,
                    chunk_size=settings.erasure_chunk_size,
                    forget=detector.forget,
                ).handle,
            ),
            relay=OutboxRelay(sessions, OUTBOX, redis, stream=settings.events_stream),
            backlog=BacklogMonitor(
                [
                    outbox_probe(sessions, OUTBOX),
                    stream_probe(
                        redis, stream=settings.job_stream, group=settings.job_consumer_group
                    ),
                    stream_probe(
                        redis,
                        stream=settings.events_stream,
                        group=settings.detection_events_consumer_group,
                    ),
                ],
                interval_s=settings.backlog_metrics_interval_seconds,
            ),
            servicer=servicer,
        )

    async def start(self) -> None:
        """Batching and metering start before the server accepts calls; Redis being down
        only delays jobs."""
        await check_sandbox(
            self.settings.video_sandbox,
            protected=self.settings.objects_dir,
            confined=self.metrics.sandbox_confined,
        )
        await self.pipeline.start()
        await self.usage.start()
        try:
            await self.queue.ensure_group()
        except Exception:
            logger.warning("could not create the job consumer group yet", exc_info=True)

    def background(self) -> list[BackgroundWorker]:
        """The loops the runner runs beside the server and stops after it drained."""
        loops: list[BackgroundWorker] = [
            *self.workers,
            self.relay,
            self.orphans,
            self.accounts,
            self.backlog,
            self.retention,
        ]
        if self.workers:
            loops.append(self.sweeper)
        return loops

    @property
    def engine(self) -> AsyncEngine:
        return self.stores.engine

    @property
    def redis(self) -> Redis:
        return self.stores.redis

    def parts(self) -> ServiceParts:
        return ServiceParts(
            registrations=[registration(self.servicer)],
            workers=self.background(),
            on_start=[self.start],
            on_close=[self.usage.close, self.pipeline.close, self.stores.close],
        )


async def build(settings: DetectionSettings) -> ServiceParts:
    service = await DetectionService.create(settings, registry=REGISTRY)
    return service.parts()


def runner() -> ServiceRunner[DetectionSettings]:
    return ServiceRunner(
        name="detection-service",
        prog="objectvision-detection",
        settings=DetectionSettings,
        build=build,
        migrations=Migrations(MIGRATIONS_DIR, schema=SCHEMA),
        serving_processes=serving_processes,
    )


def main(argv: Sequence[str] | None = None) -> None:
    runner().main(argv)
