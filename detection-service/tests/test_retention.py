"""Retention (ADR 0031), against real PostgreSQL, Redis, Triton and storage: what is older
than RETENTION_DAYS goes as its owner's own deletions would take it, rows and files; what
is younger, and any job still pending or processing however old, stays.

The rows are made old by moving their timestamps back in the database: the sweep reads
nothing else.
"""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from detection_service.history.models import detections
from detection_service.images.models import images
from detection_service.images.storage import LocalDirectoryStorage, ObjectNotFoundError
from detection_service.jobs.models import jobs
from detection_service.metrics import DetectionMetrics
from detection_service.retention.sweeper import RetentionSweeper
from objectvision.v1 import detection_pb2
from objectvision_common.db import session_factory

RETENTION = timedelta(days=30)
LONG_AGO = datetime.now(UTC) - timedelta(days=40)
DONE = {detection_pb2.JOB_STATUS_COMPLETED, detection_pb2.JOB_STATUS_FAILED}


async def _stored_detect(harness, user: str, image: bytes) -> str:
    answer = await harness.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=image, filename="kept.jpg")], store=True
        ),
        metadata=harness.metadata(user),
        timeout=60,
    )
    return answer.results[0].detection_id


async def _job(harness, user: str, image: bytes, *, wait: bool) -> str:
    job = await harness.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(images=[detection_pb2.ImageInput(data=image)]),
        metadata=harness.metadata(user),
        timeout=60,
    )
    deadline = time.monotonic() + 60
    while wait:
        seen = await harness.stub.GetJob(
            detection_pb2.GetJobRequest(job_id=job.id), metadata=harness.metadata(user), timeout=30
        )
        if seen.status in DONE:
            break
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.1)
    return job.id


async def _age(harness, table: sa.Table, row_id: str, *columns: str) -> None:
    async with harness.service.engine.begin() as conn:
        await conn.execute(
            sa.update(table)
            .where(table.c.id == uuid.UUID(row_id))
            .values(**dict.fromkeys(columns, LONG_AGO))
        )


async def _storage_keys(harness, user: str) -> set[str]:
    async with harness.service.engine.connect() as conn:
        return set(
            await conn.scalars(sa.select(images.c.storage_key).where(images.c.user_id == user))
        )


async def _exists(harness, key: str) -> bool:
    try:
        await LocalDirectoryStorage(harness.settings.objects_dir).get(key)
    except ObjectNotFoundError:
        return False
    return True


def _sweeper(harness, registry: CollectorRegistry) -> RetentionSweeper:
    return RetentionSweeper(
        sessions=session_factory(harness.service.engine),
        storage=LocalDirectoryStorage(harness.settings.objects_dir),
        retention=RETENTION,
        interval_s=3600,
        chunk_size=1,
        removed=DetectionMetrics.create(registry).retention_removed,
    )


async def test_what_is_older_than_the_retention_goes_with_its_files_and_the_rest_stays(
    make_harness, user, bus_jpg, zidane_jpg
):
    harness = await make_harness()
    idle = await make_harness(JOB_WORKERS=0, JOB_STREAM=f"detection:jobs:idle:{uuid.uuid4().hex}")
    before = await _storage_keys(harness, user)
    old_detection = await _stored_detect(harness, user, bus_jpg)
    await _age(harness, detections, old_detection, "created_at", "updated_at")
    old_job = await _job(harness, user, zidane_jpg, wait=True)
    await _age(harness, jobs, old_job, "created_at", "updated_at", "completed_at")
    old_files = await _storage_keys(harness, user) - before
    assert len(old_files) == 2

    recent_detection = await _stored_detect(harness, user, bus_jpg)
    recent_job = await _job(harness, user, bus_jpg, wait=True)
    waiting_job = await _job(idle, user, bus_jpg, wait=False)
    await _age(harness, jobs, waiting_job, "created_at", "updated_at")
    kept_files = await _storage_keys(harness, user) - before - old_files

    registry = CollectorRegistry()
    swept = await _sweeper(harness, registry).sweep()

    assert swept.jobs >= 1 and swept.detections >= 1
    metadata = harness.metadata(user)
    for gone in (
        harness.stub.GetDetection(
            detection_pb2.GetDetectionRequest(detection_id=old_detection), metadata=metadata
        ),
        harness.stub.GetJob(detection_pb2.GetJobRequest(job_id=old_job), metadata=metadata),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await gone
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    for key in old_files:
        assert not await _exists(harness, key), key
    await harness.stub.GetDetection(
        detection_pb2.GetDetectionRequest(detection_id=recent_detection), metadata=metadata
    )
    for job_id in (recent_job, waiting_job):
        await harness.stub.GetJob(detection_pb2.GetJobRequest(job_id=job_id), metadata=metadata)
    assert len(kept_files) == 3
    for key in kept_files:
        assert await _exists(harness, key), key
    assert registry.get_sample_value("detection_retention_removed_total", {"kind": "job"}) >= 1
    assert (
        registry.get_sample_value("detection_retention_removed_total", {"kind": "detection"}) >= 1
    )

    assert await _sweeper(harness, CollectorRegistry()).sweep() == type(swept)()


def test_retention_is_off_unless_days_are_set(detection):
    assert detection.service.retention is None
