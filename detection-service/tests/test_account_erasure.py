"""A deleted account's erasure (ADR 0025): on `user.deleted`, read from the events stream in
detection-service's own consumer group, every row and stored file of the user goes (stored
detections, batch jobs, video jobs, their images, frames and videos, the result cache's
answers for the images), a running job is cancelled first, another user's data stays, nothing
can be stored for the user afterwards, and a redelivered event finds nothing and does nothing.

Against real PostgreSQL, Redis, Triton and the service's storage directory. The event is
appended to the service's events stream as auth-service's relay would; the test waits until
the group has acknowledged it, which the consumer does only once the erasure committed.
"""

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from detection_service.accounts import service as accounts_service
from detection_service.accounts.models import ERASED_ACCOUNTS
from detection_service.history.models import detections, results
from detection_service.images.models import images
from detection_service.images.storage import LocalDirectoryStorage
from detection_service.jobs import service as jobs_service
from detection_service.jobs.models import job_items, jobs
from detection_service.outbox import OUTBOX
from detection_service.video.models import video_frames, video_jobs
from objectvision.v1 import detection_pb2, notification_pb2
from objectvision_common.db import session_factory
from objectvision_devstack.videos import make_video

from .conftest import IMAGES, announce_event

COMPLETED = detection_pb2.JOB_STATUS_COMPLETED
FINISHED = (COMPLETED, detection_pb2.JOB_STATUS_FAILED)
NO_SWEEPING = {"JOB_REQUEUE_AFTER_SECONDS": 3600}


@pytest.fixture
async def queued(make_harness):
    """A service whose jobs wait: no worker consumes its job stream (its events consumer
    runs, as in every instance)."""
    return await make_harness(
        JOB_WORKERS=0, JOB_STREAM=f"detection:jobs:queued:{uuid.uuid4().hex[:8]}", **NO_SWEEPING
    )


def _unique(jpeg: bytes) -> bytes:
    """The image with a JPEG comment of fresh bytes: no other test's upload shares its cache
    entries."""
    note = f"erasure {uuid.uuid4()}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + jpeg[2:]


async def _store(harness, user, *sent: tuple[str, bytes]) -> list[str]:
    reply = await harness.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=data, filename=name) for name, data in sent],
            store=True,
        ),
        metadata=harness.metadata(user),
        timeout=60,
    )
    return [result.detection_id for result in reply.results]


async def _submit(harness, user, *sent: tuple[str, bytes]) -> detection_pb2.Job:
    return await harness.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(
            images=[detection_pb2.ImageInput(data=data, filename=name) for name, data in sent]
        ),
        metadata=harness.metadata(user),
        timeout=60,
    )


async def _submit_video(harness, user, data: bytes) -> detection_pb2.Job:
    async def upload():
        yield detection_pb2.VideoUpload(
            header=detection_pb2.VideoUploadHeader(
                filename="bus.mp4",
                sampling=detection_pb2.VideoSampling(every=5),
                size_bytes=len(data),
            )
        )
        yield detection_pb2.VideoUpload(chunk=data)

    return await harness.stub.SubmitVideoJob(upload(), metadata=harness.metadata(user), timeout=60)


async def _finished(harness, user, job_id: str) -> detection_pb2.Job:
    deadline = time.monotonic() + 120
    while True:
        job = await harness.stub.GetJob(
            detection_pb2.GetJobRequest(job_id=job_id), metadata=harness.metadata(user), timeout=30
        )
        if job.status in FINISHED:
            return job
        assert time.monotonic() < deadline, f"job still {job.status}"
        await asyncio.sleep(0.1)


def _deleted(user: str) -> notification_pb2.Event:
    """`user.deleted` as auth-service stages it."""
    event = notification_pb2.Event(
        id=str(uuid.uuid4()),
        type="user.deleted",
        user_id=user,
        user_deleted=notification_pb2.UserDeleted(email="leaving@example.com"),
    )
    event.occurred_at.FromDatetime(datetime.now(UTC))
    return event


async def _rows(harness, user: str) -> dict[str, int]:
    """Every row of the user, in every table that holds one (items, objects, video rows and
    frames through their job or detection)."""
    user_jobs = sa.select(jobs.c.id).where(jobs.c.user_id == user)
    user_detections = sa.select(detections.c.id).where(detections.c.user_id == user)
    queries = {
        "detections": sa.select(sa.func.count())
        .select_from(detections)
        .where(detections.c.user_id == user),
        "results": sa.select(sa.func.count())
        .select_from(results)
        .where(results.c.detection_id.in_(user_detections)),
        "images": sa.select(sa.func.count()).select_from(images).where(images.c.user_id == user),
        "jobs": sa.select(sa.func.count()).select_from(jobs).where(jobs.c.user_id == user),
        "job_items": sa.select(sa.func.count())
        .select_from(job_items)
        .where(job_items.c.job_id.in_(user_jobs)),
        "video_jobs": sa.select(sa.func.count())
        .select_from(video_jobs)
        .where(video_jobs.c.job_id.in_(user_jobs)),
        "video_frames": sa.select(sa.func.count())
        .select_from(video_frames)
        .where(video_frames.c.job_id.in_(user_jobs)),
    }
    async with harness.service.engine.connect() as conn:
        return {name: int(await conn.scalar(query)) for name, query in queries.items()}


NOTHING = dict.fromkeys(
    ("detections", "results", "images", "jobs", "job_items", "video_jobs", "video_frames"), 0
)


async def _storage_keys(harness, user: str) -> set[str]:
    """The storage keys of every stored object of the user: images, uploaded and annotated
    videos."""
    async with harness.service.engine.connect() as conn:
        image_keys = await conn.scalars(
            sa.select(images.c.storage_key).where(images.c.user_id == user)
        )
        videos = await conn.execute(
            sa.select(video_jobs.c.storage_key, video_jobs.c.annotated_key)
            .join(jobs, jobs.c.id == video_jobs.c.job_id)
            .where(jobs.c.user_id == user)
        )
        keys = set(image_keys)
        for row in videos:
            keys.update(key for key in row if key is not None)
    return keys


def _stored(harness, key: str) -> bool:
    return (harness.settings.objects_dir / key[:2] / key).is_file()


async def _cancelled_events(harness, job_id: str) -> int:
    async with harness.service.engine.connect() as conn:
        return int(
            await conn.scalar(
                sa.select(sa.func.count())
                .select_from(OUTBOX)
                .where(
                    OUTBOX.c.event_type == "job.cancelled",
                    OUTBOX.c.payload["jobFinished"]["jobId"].astext == job_id,
                )
            )
        )


async def test_everything_the_user_stored_goes_and_another_users_data_stays(
    make_harness, user, bus_jpg, zidane_jpg, tmp_path: Path
):
    harness = await make_harness(RESULT_CACHE_TTL_SECONDS=600)
    other = f"user-{uuid.uuid4()}"
    bus, zidane = _unique(bus_jpg), _unique(zidane_jpg)
    await _store(harness, user, ("bus.jpg", bus), ("zidane.jpg", zidane))
    job = await _submit(harness, user, ("a.jpg", _unique(bus_jpg)), ("b.jpg", _unique(zidane_jpg)))
    clip = make_video(
        tmp_path / "bus.mp4", [(IMAGES / "bus.jpg", 10)], fps=5, width=320, height=240
    )
    video = await _submit_video(harness, user, clip.read_bytes())
    assert (await _finished(harness, user, job.id)).status == COMPLETED
    assert (await _finished(harness, user, video.id)).video.annotated_available
    await _store(harness, other, ("bus.jpg", _unique(bus_jpg)))
    other_job = await _submit(harness, other, ("c.jpg", _unique(zidane_jpg)))
    await _finished(harness, other, other_job.id)
    keys = await _storage_keys(harness, user)
    assert len(keys) == 6 and all(_stored(harness, key) for key in keys)
    rows = await _rows(harness, user)
    assert all(rows[table] > 0 for table in NOTHING), rows
    others_rows, others_keys = await _rows(harness, other), await _storage_keys(harness, other)
    # The stored upload's answer is in the result cache: a repeat is answered from it.
    repeat = await harness.stub.Detect(
        detection_pb2.DetectRequest(images=[detection_pb2.ImageInput(data=bus)]),
        metadata=harness.metadata(other),
        timeout=60,
    )
    assert repeat.results[0].cached

    await announce_event(harness, _deleted(user))

    assert await _rows(harness, user) == NOTHING
    assert not any(_stored(harness, key) for key in keys)
    listed = await harness.stub.ListDetections(
        detection_pb2.ListDetectionsRequest(), metadata=harness.metadata(user), timeout=30
    )
    assert (list(listed.items), listed.total) == ([], 0)
    # The erased image's answers are forgotten: the same bytes are detected afresh.
    again = await harness.stub.Detect(
        detection_pb2.DetectRequest(images=[detection_pb2.ImageInput(data=bus)]),
        metadata=harness.metadata(other),
        timeout=60,
    )
    assert not again.results[0].cached
    # Another user's data is untouched.
    assert await _rows(harness, other) == others_rows
    assert all(_stored(harness, key) for key in others_keys)
    async with harness.service.engine.connect() as conn:
        erased = await conn.scalar(
            sa.select(ERASED_ACCOUNTS.c.user_id).where(ERASED_ACCOUNTS.c.user_id == user)
        )
    assert erased == user


async def test_nothing_can_be_stored_for_an_erased_account_even_by_a_late_request(
    make_harness, user, bus_jpg, tmp_path: Path
):
    # Storage of its own: the test counts every file in it.
    detection = await make_harness(STORAGE_DIR=str(tmp_path / "objects"))
    await _store(detection, user, ("bus.jpg", bus_jpg))
    await announce_event(detection, _deleted(user))
    files_before = (await detection.counts(user))["files"]

    for late in (
        _store(detection, user, ("late.jpg", bus_jpg)),
        _submit(detection, user, ("late.jpg", bus_jpg)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await late
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert refused.value.details() == "this account has been deleted"

    counts = await detection.counts(user)
    assert {table: counts[table] for table in ("detections", "images", "jobs")} == {
        "detections": 0,
        "images": 0,
        "jobs": 0,
    }
    # The refused uploads' bytes were written before their rows were refused, then discarded.
    assert counts["files"] == files_before
    # Detecting without storing keeps nothing, and still works.
    answer = await detection.stub.Detect(
        detection_pb2.DetectRequest(images=[detection_pb2.ImageInput(data=bus_jpg)]),
        metadata=detection.metadata(user),
        timeout=60,
    )
    assert answer.results[0].objects


async def test_a_running_job_is_cancelled_then_erased_and_its_worker_records_nothing(
    queued, user, bus_jpg, zidane_jpg
):
    job = await _submit(
        queued, user, ("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg), ("again.jpg", bus_jpg)
    )
    waiting = await _submit(queued, user, ("later.jpg", zidane_jpg))
    # A worker has started the job and finished its first item.
    async with session_factory(queued.service.engine).begin() as session:
        started = await jobs_service.start_job(session=session, job_id=uuid.UUID(job.id))
    assert started is not None
    options, items = started
    await queued.service.processor.process(options, items[:1])
    keys = await _storage_keys(queued, user)
    assert len(keys) == 4

    await announce_event(queued, _deleted(user))

    # Each unfinished job ended as its owner's cancel ends it: one job.cancelled event, which
    # tells live progress streams and webhooks that it stopped.
    assert await _cancelled_events(queued, job.id) == 1
    assert await _cancelled_events(queued, waiting.id) == 1
    assert await _rows(queued, user) == NOTHING
    assert not any(_stored(queued, key) for key in keys)
    # The worker reaches its remaining items: they are gone, nothing is recorded or detected.
    await queued.service.processor.process(options, items[1:])
    assert await _rows(queued, user) == NOTHING


async def test_a_redelivered_deletion_finds_nothing_and_does_nothing(
    queued, user, bus_jpg, zidane_jpg
):
    await _store(queued, user, ("bus.jpg", bus_jpg))
    job = await _submit(queued, user, ("zidane.jpg", zidane_jpg))
    event = _deleted(user)
    await announce_event(queued, event)
    assert await _rows(queued, user) == NOTHING
    assert await _cancelled_events(queued, job.id) == 1

    await announce_event(queued, event)

    assert await _rows(queued, user) == NOTHING
    assert await _cancelled_events(queued, job.id) == 1
    again = await accounts_service.erase_account(
        sessions=session_factory(queued.service.engine),
        storage=LocalDirectoryStorage(queued.settings.objects_dir),
        user_id=user,
        deleted_at=event.occurred_at.ToDatetime(UTC),
        chunk_size=queued.settings.erasure_chunk_size,
    )
    assert again == accounts_service.Erased()


async def test_an_erasure_in_small_chunks_erases_everything(
    make_harness, user, bus_jpg, zidane_jpg, coco8
):
    harness = await make_harness(
        ERASURE_CHUNK_SIZE=2,
        JOB_WORKERS=0,
        JOB_STREAM=f"detection:jobs:chunks:{uuid.uuid4().hex[:8]}",
        **NO_SWEEPING,
    )
    assert harness.settings.erasure_chunk_size == 2
    other = f"user-{uuid.uuid4()}"
    await _store(harness, user, *[(name, data) for name, data, _ in coco8[:5]])
    for name, data, _ in coco8[5:8]:
        await _submit(harness, user, (name, data))
    await _store(harness, other, ("bus.jpg", bus_jpg))
    rows = await _rows(harness, user)
    assert (rows["detections"], rows["images"], rows["jobs"]) == (5, 8, 3)
    keys = await _storage_keys(harness, user)

    await announce_event(harness, _deleted(user))

    assert await _rows(harness, user) == NOTHING
    assert not any(_stored(harness, key) for key in keys)
    assert (await _rows(harness, other))["detections"] == 1
