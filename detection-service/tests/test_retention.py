"""Retention (ADR 0031), against real PostgreSQL, Redis, Triton and storage: what is older
than its account's period (an admin's for that account, else RETENTION_DAYS) goes as its
owner's own deletions would take it, rows and files; what is younger, and any job still
pending or processing however old, stays.

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

from detection_service.accounts.service import erase_account
from detection_service.history.models import detections
from detection_service.images.models import images
from detection_service.images.storage import LocalDirectoryStorage, ObjectNotFoundError
from detection_service.jobs.models import jobs
from detection_service.metrics import DetectionMetrics
from detection_service.retention.models import retention_periods
from detection_service.retention.sweeper import RetentionSweeper
from objectvision.v1 import common_pb2, detection_pb2
from objectvision_common.db import session_factory
from objectvision_common.identity import principal_metadata

from .conftest import SECRET

RETENTION_DAYS = 30
LONG_AGO = datetime.now(UTC) - timedelta(days=40)
# Older than a 10-day period, younger than the 30-day default.
WEEKS_AGO = datetime.now(UTC) - timedelta(days=20)
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


async def _age(
    harness, table: sa.Table, row_id: str, *columns: str, when: datetime = LONG_AGO
) -> None:
    async with harness.service.engine.begin() as conn:
        await conn.execute(
            sa.update(table)
            .where(table.c.id == uuid.UUID(row_id))
            .values(**dict.fromkeys(columns, when))
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


def _sweeper(
    harness, registry: CollectorRegistry, *, default_days: int = RETENTION_DAYS
) -> RetentionSweeper:
    return RetentionSweeper(
        sessions=session_factory(harness.service.engine),
        storage=LocalDirectoryStorage(harness.settings.objects_dir),
        default_days=default_days,
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


def test_the_sweep_runs_even_with_retention_days_0(detection):
    """An admin may have set one account's period while the deployment keeps everything."""
    assert detection.settings.retention_days == 0
    assert detection.service.retention in detection.service.background()


def _admin() -> tuple[tuple[str, str], ...]:
    return principal_metadata(
        common_pb2.Principal(user_id=str(uuid.uuid4()), is_admin=True, auth_method="jwt"),
        secret=SECRET,
    )


async def _set_period(harness, user: str, days: int | None) -> detection_pb2.Retention:
    request = (
        detection_pb2.SetRetentionRequest(user_id=user)
        if days is None
        else detection_pb2.SetRetentionRequest(user_id=user, days=days)
    )
    return await harness.stub.SetRetention(request, metadata=_admin(), timeout=30)


async def _stored_work(harness, user: str, image: bytes, when: datetime) -> tuple[str, str]:
    """A detection outside jobs and a finished job of `user`, both stored `when`."""
    detection_id = await _stored_detect(harness, user, image)
    await _age(harness, detections, detection_id, "created_at", "updated_at", when=when)
    job_id = await _job(harness, user, image, wait=True)
    await _age(harness, jobs, job_id, "created_at", "updated_at", "completed_at", when=when)
    return detection_id, job_id


async def _kept(harness, user: str, work: tuple[str, str]) -> bool:
    """Whether the detection and the job are both still there (or both gone)."""
    detection_id, job_id = work
    found = []
    for call in (
        harness.stub.GetDetection(
            detection_pb2.GetDetectionRequest(detection_id=detection_id),
            metadata=harness.metadata(user),
        ),
        harness.stub.GetJob(
            detection_pb2.GetJobRequest(job_id=job_id), metadata=harness.metadata(user)
        ),
    ):
        try:
            await call
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
            found.append(False)
        else:
            found.append(True)
    assert found[0] == found[1], found
    return found[0]


async def test_an_accounts_own_period_replaces_the_default(make_harness, bus_jpg):
    harness = await make_harness()
    longer, shorter, forever, default = (f"user-{uuid.uuid4()}" for _ in range(4))
    assert (await _set_period(harness, longer, 60)).days == 60
    await _set_period(harness, shorter, 10)
    await _set_period(harness, forever, 0)
    work = {
        longer: await _stored_work(harness, longer, bus_jpg, LONG_AGO),
        shorter: await _stored_work(harness, shorter, bus_jpg, WEEKS_AGO),
        forever: await _stored_work(harness, forever, bus_jpg, LONG_AGO),
        default: await _stored_work(harness, default, bus_jpg, LONG_AGO),
    }
    young = await _stored_work(harness, default, bus_jpg, WEEKS_AGO)

    await _sweeper(harness, CollectorRegistry()).sweep()

    assert await _kept(harness, longer, work[longer])
    assert not await _kept(harness, shorter, work[shorter])
    assert await _kept(harness, forever, work[forever])
    assert not await _kept(harness, default, work[default])
    assert await _kept(harness, default, young)


async def test_with_retention_days_0_an_account_with_a_period_is_still_swept(detection, bus_jpg):
    """The service's own sweeper (RETENTION_DAYS=0 in the tests) takes what is past an
    account's period and leaves every other account's work, however old."""
    swept, kept = f"user-{uuid.uuid4()}", f"user-{uuid.uuid4()}"
    await _set_period(detection, swept, 10)
    swept_work = await _stored_work(detection, swept, bus_jpg, WEEKS_AGO)
    kept_work = await _stored_work(detection, kept, bus_jpg, LONG_AGO)

    await detection.service.retention.sweep()

    assert not await _kept(detection, swept, swept_work)
    assert await _kept(detection, kept, kept_work)


async def test_clearing_an_accounts_period_returns_it_to_the_default(make_harness, user, bus_jpg):
    harness = await make_harness()
    await _set_period(harness, user, 60)
    work = await _stored_work(harness, user, bus_jpg, LONG_AGO)
    await _sweeper(harness, CollectorRegistry()).sweep()
    assert await _kept(harness, user, work)

    cleared = await _set_period(harness, user, None)
    assert (cleared.custom, cleared.days) == (False, harness.settings.retention_days)
    await _sweeper(harness, CollectorRegistry()).sweep()
    assert not await _kept(harness, user, work)


async def test_an_account_reads_its_period_and_an_admin_sets_it(make_harness, user):
    harness = await make_harness(RETENTION_DAYS=30, RETENTION_SWEEP_INTERVAL_SECONDS=3600)
    own = await harness.stub.GetRetention(
        detection_pb2.GetRetentionRequest(), metadata=harness.metadata(user), timeout=30
    )
    assert (own.user_id, own.days, own.custom, own.default_days) == (user, 30, False, 30)

    await _set_period(harness, user, 0)
    own = await harness.stub.GetRetention(
        detection_pb2.GetRetentionRequest(user_id=user),
        metadata=harness.metadata(user),
        timeout=30,
    )
    assert (own.days, own.custom, own.default_days) == (0, True, 30)
    by_admin = await harness.stub.GetRetention(
        detection_pb2.GetRetentionRequest(user_id=user), metadata=_admin(), timeout=30
    )
    assert by_admin == own


async def test_only_an_admin_sets_periods_or_reads_another_accounts(make_harness, user):
    harness = await make_harness()
    other = f"user-{uuid.uuid4()}"
    calls = (
        harness.stub.SetRetention(
            detection_pb2.SetRetentionRequest(user_id=user, days=0),
            metadata=harness.metadata(user),
            timeout=30,
        ),
        harness.stub.SetRetention(
            detection_pb2.SetRetentionRequest(user_id=user),
            metadata=harness.metadata(user),
            timeout=30,
        ),
        harness.stub.GetRetention(
            detection_pb2.GetRetentionRequest(user_id=other),
            metadata=harness.metadata(user),
            timeout=30,
        ),
    )
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not (
        await harness.stub.GetRetention(
            detection_pb2.GetRetentionRequest(), metadata=harness.metadata(user), timeout=30
        )
    ).custom


@pytest.mark.parametrize(
    "request_",
    [
        detection_pb2.SetRetentionRequest(user_id="someone", days=-1),
        detection_pb2.SetRetentionRequest(user_id="someone", days=36_501),
        detection_pb2.SetRetentionRequest(user_id=" ", days=30),
    ],
)
async def test_a_period_outside_a_hundred_years_or_without_an_account_is_refused(
    detection, request_
):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await detection.stub.SetRetention(request_, metadata=_admin(), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_deleted_accounts_period_is_erased(detection, user, tmp_path):
    await _set_period(detection, user, 7)
    await erase_account(
        sessions=session_factory(detection.service.engine),
        storage=LocalDirectoryStorage(tmp_path),
        user_id=user,
        deleted_at=datetime.now(UTC),
        chunk_size=10,
    )
    async with detection.service.engine.connect() as conn:
        rows = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(retention_periods)
            .where(retention_periods.c.user_id == user)
        )
    assert rows == 0
