"""Usage metering and monthly quotas (ADR 0030), against real PostgreSQL, Redis and Triton.

Every image the detector answers counts for its user, per UTC day and source (a waiting
caller's, or job work's); the counts reach PostgreSQL every USAGE_FLUSH_SECONDS and when the
service stops. A quota is checked once for the work a request brings, before any of it is
done, so a request is refused whole; work already accepted always finishes.
"""

import asyncio
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa

from detection_service.accounts.service import erase_account
from detection_service.images.storage import LocalDirectoryStorage
from detection_service.jobs import service as jobs
from detection_service.usage.meter import UsageMeter
from detection_service.usage.models import usage_days, usage_quotas
from objectvision.v1 import common_pb2, detection_pb2
from objectvision_common.db import create_engine_for, session_factory
from objectvision_common.errors import QuotaExceeded
from objectvision_common.identity import principal_metadata

from .conftest import SECRET

DONE = {detection_pb2.JOB_STATUS_COMPLETED, detection_pb2.JOB_STATUS_FAILED}


def _admin() -> tuple[tuple[str, str], ...]:
    return principal_metadata(
        common_pb2.Principal(user_id=str(uuid.uuid4()), is_admin=True, auth_method="jwt"),
        secret=SECRET,
    )


async def _detect(harness, user: str, image: bytes, count: int = 1):
    return await harness.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=image, filename=f"{n}.jpg") for n in range(count)]
        ),
        metadata=harness.metadata(user),
        timeout=60,
    )


async def _submit(harness, user: str, image: bytes, count: int, key: str = ""):
    return await harness.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(
            images=[
                detection_pb2.ImageInput(data=image, filename=f"{n}.jpg") for n in range(count)
            ],
            idempotency_key=key,
        ),
        metadata=harness.metadata(user),
        timeout=60,
    )


async def _usage(harness, user: str, **request) -> detection_pb2.Usage:
    return await harness.stub.GetUsage(
        detection_pb2.GetUsageRequest(**request), metadata=harness.metadata(user), timeout=30
    )


async def _finished(harness, user: str, job_id: str) -> detection_pb2.Job:
    deadline = time.monotonic() + 60
    while True:
        job = await harness.stub.GetJob(
            detection_pb2.GetJobRequest(job_id=job_id), metadata=harness.metadata(user), timeout=30
        )
        if job.status in DONE:
            return job
        assert time.monotonic() < deadline, f"job still {job.status}: {job}"
        await asyncio.sleep(0.1)


def _refusal(error: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, int]:
    trailers = dict(error.trailing_metadata() or ())
    return error.code(), str(trailers["error-code"]), int(trailers["retry-after"])


def _seconds_to_next_month() -> float:
    today = datetime.now(UTC)
    first = today.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (first + timedelta(days=32)).replace(day=1)
    return (following - today).total_seconds()


async def test_every_answered_image_counts_for_its_user_by_day_and_source(
    make_harness, user, bus_jpg
):
    harness = await make_harness(USAGE_FLUSH_SECONDS=0.2)
    await _detect(harness, user, bus_jpg, count=2)
    job = await _submit(harness, user, bus_jpg, count=3)
    assert (await _finished(harness, user, job.id)).processed == 3

    usage = await _usage(harness, user)
    today = datetime.now(UTC).date()
    assert [(d.date, d.calls, d.jobs) for d in usage.days] == [(today.isoformat(), 2, 3)]
    assert usage.month_images == 5
    assert usage.month_start == today.replace(day=1).isoformat()
    assert usage.monthly_quota == 0 and not usage.HasField("remaining")
    assert not usage.custom_quota
    assert (await _usage(harness, f"user-{uuid.uuid4()}")).month_images == 0


async def test_counts_reach_postgresql_and_outlive_the_process(make_harness, user, bus_jpg):
    """The flush interval is longer than the test: only closing the meter, which the
    service's close does after its server drained, writes the counts."""
    first = await make_harness(USAGE_FLUSH_SECONDS=300)
    await _detect(first, user, bus_jpg, count=2)
    await first.service.usage.close()

    second = await make_harness()
    async with second.service.engine.connect() as conn:
        stored = await conn.scalar(
            sa.select(sa.func.sum(usage_days.c.images)).where(usage_days.c.user_id == user)
        )
    assert stored == 2
    assert (await _usage(second, user)).month_images == 2


async def test_a_detect_that_does_not_fit_the_quota_is_refused_whole_until_the_month_ends(
    make_harness, user, bus_jpg
):
    harness = await make_harness(USAGE_MONTHLY_IMAGE_QUOTA=3)
    await _detect(harness, user, bus_jpg, count=2)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _detect(harness, user, bus_jpg, count=2)
    code, error, retry_after = _refusal(refused.value)
    assert (code, error) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "quota_exceeded")
    assert abs(retry_after - _seconds_to_next_month()) < 60
    assert "2 images sent, but this account's quota of 3 images a month has 1 left" in (
        refused.value.details() or ""
    )

    await _detect(harness, user, bus_jpg, count=1)
    usage = await _usage(harness, user)
    assert (usage.month_images, usage.monthly_quota, usage.remaining) == (3, 3, 0)
    with pytest.raises(grpc.aio.AioRpcError) as used_up:
        await _detect(harness, user, bus_jpg, count=1)
    assert _refusal(used_up.value)[1] == "quota_exceeded"
    assert (await _usage(harness, user)).month_images == 3


async def test_a_job_is_admitted_whole_and_a_retried_submission_gets_its_job_back(
    make_harness, user, bus_jpg
):
    harness = await make_harness(USAGE_MONTHLY_IMAGE_QUOTA=3)
    accepted = await _submit(harness, user, bus_jpg, count=3, key="nightly-1")
    assert (await _finished(harness, user, accepted.id)).processed == 3

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _submit(harness, user, bus_jpg, count=1, key="nightly-2")
    assert _refusal(refused.value)[1] == "quota_exceeded"
    retried = await _submit(harness, user, bus_jpg, count=3, key="nightly-1")
    assert retried.id == accepted.id


async def test_a_stream_answers_frames_past_the_quota_with_the_reason(make_harness, user, bus_jpg):
    harness = await make_harness(USAGE_MONTHLY_IMAGE_QUOTA=2)

    answered: asyncio.Queue[None] = asyncio.Queue()

    async def frames():
        """One frame at a time: the next is sent once the last was answered."""
        for sequence in range(3):
            yield detection_pb2.Frame(
                sequence=sequence, image=detection_pb2.ImageInput(data=bus_jpg)
            )
            await answered.get()

    answers = []
    async for answer in harness.stub.DetectStream(
        frames(), metadata=harness.metadata(user), timeout=60
    ):
        answers.append(answer)
        answered.put_nowait(None)
    assert [a.HasField("result") for a in answers[:2]] == [True, True]
    assert "quota of 2 images a month is used up" in answers[2].error


async def test_an_admin_sets_and_clears_one_accounts_quota(make_harness, user, bus_jpg):
    harness = await make_harness()
    set_quota = detection_pb2.SetUsageQuotaRequest(user_id=user, monthly_images=1)
    usage = await harness.stub.SetUsageQuota(set_quota, metadata=_admin(), timeout=30)
    assert (usage.monthly_quota, usage.remaining, usage.custom_quota) == (1, 1, True)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _detect(harness, user, bus_jpg, count=2)
    assert _refusal(refused.value)[1] == "quota_exceeded"

    cleared = await harness.stub.SetUsageQuota(
        detection_pb2.SetUsageQuotaRequest(user_id=user), metadata=_admin(), timeout=30
    )
    assert (cleared.monthly_quota, cleared.custom_quota) == (0, False)
    await _detect(harness, user, bus_jpg, count=2)


async def test_only_an_admin_sets_quotas_or_reads_another_accounts_usage(make_harness, user):
    harness = await make_harness()
    other = f"user-{uuid.uuid4()}"
    calls = (
        harness.stub.SetUsageQuota(
            detection_pb2.SetUsageQuotaRequest(user_id=user, monthly_images=0),
            metadata=harness.metadata(user),
            timeout=30,
        ),
        harness.stub.GetUsage(
            detection_pb2.GetUsageRequest(user_id=other),
            metadata=harness.metadata(user),
            timeout=30,
        ),
    )
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    read_by_admin = await harness.stub.GetUsage(
        detection_pb2.GetUsageRequest(user_id=other), metadata=_admin(), timeout=30
    )
    assert read_by_admin.user_id == other


@pytest.mark.parametrize("days", [-1, 367])
async def test_a_usage_window_outside_a_year_is_refused(make_harness, user, days):
    harness = await make_harness()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _usage(harness, user, days=days)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def meter_at(migrated):
    """A meter on the real database whose clock the test sets."""
    engine = create_engine_for(migrated.database_url)
    clock = [datetime(2026, 1, 31, 23, 59, tzinfo=UTC)]
    meter = UsageMeter(
        sessions=session_factory(engine),
        default_quota=5,
        flush_interval_s=60,
        waiting_images=jobs.images_waiting,
        now=lambda: clock[0],
    )
    yield meter, clock
    await engine.dispose()


async def test_the_count_starts_again_each_calendar_month_utc(meter_at, user):
    meter, clock = meter_at
    meter.record(user, "calls", images=5)
    with pytest.raises(QuotaExceeded) as refused:
        await meter.admit(user, 1)
    assert refused.value.retry_after_seconds == 61
    assert "renews on 2026-02-01" in refused.value.message

    await meter.flush()
    clock[0] = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)
    await meter.admit(user, 5)
    standing, days = await meter.report(user, days=2)
    assert (standing.month_start, standing.used, standing.remaining) == (date(2026, 2, 1), 0, 5)
    assert [(d.day, d.calls, d.jobs) for d in days] == [(date(2026, 1, 31), 5, 0)]


async def test_a_deleted_accounts_usage_and_quota_are_erased(meter_at, migrated, user, tmp_path):
    meter, _ = meter_at
    meter.record(user, "jobs", images=2)
    await meter.flush()
    await meter.set_quota(user, 10)
    engine = create_engine_for(migrated.database_url)
    sessions = session_factory(engine)
    await erase_account(
        sessions=sessions,
        storage=LocalDirectoryStorage(tmp_path),
        user_id=user,
        deleted_at=datetime.now(UTC),
        chunk_size=10,
    )
    async with engine.connect() as conn:
        for table in (usage_days, usage_quotas):
            rows = await conn.scalar(
                sa.select(sa.func.count()).select_from(table).where(table.c.user_id == user)
            )
            assert rows == 0, table.name
    await engine.dispose()


async def test_a_waiting_jobs_images_are_held_against_the_quota_until_it_runs_or_is_cancelled(
    make_harness, user, bus_jpg
):
    """A job accepted always runs to its end, so its images count from the moment it is
    accepted: submitting, or running a job again, cannot queue more than the quota leaves."""
    waiting = await make_harness(USAGE_MONTHLY_IMAGE_QUOTA=5, JOB_WORKERS=0)
    queued = await _submit(waiting, user, bus_jpg, count=3)
    usage = await _usage(waiting, user)
    assert (usage.month_images, usage.held_images, usage.remaining) == (0, 3, 2)

    with pytest.raises(grpc.aio.AioRpcError) as second:
        await _submit(waiting, user, bus_jpg, count=3)
    assert _refusal(second.value)[:2] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "quota_exceeded")
    assert second.value.details().startswith(
        "3 images sent, but this account's quota of 5 images a month has 2 left"
        " (3 more are held by its unfinished jobs)"
    )
    with pytest.raises(grpc.aio.AioRpcError) as rerun:
        await waiting.stub.RerunJob(
            detection_pb2.RerunJobRequest(job_id=queued.id),
            metadata=waiting.metadata(user),
            timeout=30,
        )
    assert _refusal(rerun.value)[1] == "quota_exceeded"

    # Calls fit in what the job leaves, and no further.
    await _detect(waiting, user, bus_jpg, count=2)
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await _detect(waiting, user, bus_jpg, count=1)
    assert taken.value.details().startswith(
        "this account's quota of 5 images a month is taken: 2 used, 3 held by its unfinished jobs"
    )

    await waiting.stub.CancelJob(
        detection_pb2.CancelJobRequest(job_id=queued.id), metadata=waiting.metadata(user)
    )
    again = await _submit(waiting, user, bus_jpg, count=3)
    assert again.id != queued.id


async def test_submissions_at_once_are_admitted_one_after_another_against_the_quota(
    make_harness, user, bus_jpg
):
    """Each is asked again in the transaction that adds its job, under the account's job
    lock, so two submissions that both fit on their own cannot both be accepted together."""
    waiting = await make_harness(USAGE_MONTHLY_IMAGE_QUOTA=5, JOB_WORKERS=0)
    outcomes = await asyncio.gather(
        *(_submit(waiting, user, bus_jpg, count=3) for _ in range(3)), return_exceptions=True
    )
    accepted = [o for o in outcomes if isinstance(o, detection_pb2.Job)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(accepted) == 1 and len(refused) == 2, outcomes
    assert {_refusal(error)[1] for error in refused} == {"quota_exceeded"}
