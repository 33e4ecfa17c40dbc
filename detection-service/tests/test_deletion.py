"""Users delete what they uploaded: a stored detection, or a finished job with everything it
stored; against real PostgreSQL, Redis, Triton and the service's storage directory.

Rows go in one transaction, then the files (images.service.remove). A crash between the two
is the first step run on its own: its files are then what the orphan sweep removes. Jobs that
must stay queued are submitted to a service with no job workers, and the test runs the worker
steps itself, as in test_job_list_and_cancel.py.
"""

import asyncio
import os
import time
import uuid
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter

from detection_service.history import service as history_service
from detection_service.history.models import results
from detection_service.images.models import images
from detection_service.images.orphans import OrphanSweeper
from detection_service.images.storage import LocalDirectoryStorage
from detection_service.jobs import service as jobs_service
from detection_service.video.models import video_frames, video_jobs
from objectvision.v1 import detection_pb2
from objectvision_common.db import session_factory
from objectvision_devstack.videos import make_video

from .conftest import IMAGES, csv_export

COMPLETED = detection_pb2.JOB_STATUS_COMPLETED
NO_SWEEPING = {"JOB_REQUEUE_AFTER_SECONDS": 3600}
GRACE_SECONDS = 3600.0


@pytest.fixture
async def queued(make_harness):
    """A service whose jobs wait: no worker consumes its job stream."""
    return await make_harness(
        JOB_WORKERS=0, JOB_STREAM=f"detection:jobs:queued:{uuid.uuid4().hex[:8]}", **NO_SWEEPING
    )


async def _store(harness, user, *images_sent: tuple[str, bytes]) -> list[str]:
    """Detect with store=True; the detection ids, in the order sent."""
    reply = await harness.stub.Detect(
        detection_pb2.DetectRequest(
            images=[
                detection_pb2.ImageInput(data=data, filename=name) for name, data in images_sent
            ],
            store=True,
        ),
        metadata=harness.metadata(user),
        timeout=30,
    )
    return [result.detection_id for result in reply.results]


async def _submit(harness, user, *images_sent: tuple[str, bytes]) -> detection_pb2.Job:
    return await harness.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(
            images=[
                detection_pb2.ImageInput(data=data, filename=name) for name, data in images_sent
            ]
        ),
        metadata=harness.metadata(user),
        timeout=30,
    )


async def _get_job(harness, user, job_id: str) -> detection_pb2.Job:
    return await harness.stub.GetJob(
        detection_pb2.GetJobRequest(job_id=job_id), metadata=harness.metadata(user), timeout=30
    )


async def _finished(harness, user, job_id: str) -> detection_pb2.Job:
    deadline = time.monotonic() + 120
    while (job := await _get_job(harness, user, job_id)).status not in (
        COMPLETED,
        detection_pb2.JOB_STATUS_FAILED,
    ):
        assert time.monotonic() < deadline, f"job still {job.status}"
        await asyncio.sleep(0.1)
    return job


async def _delete_detection(harness, user, detection_id: str) -> None:
    await harness.stub.DeleteDetection(
        detection_pb2.DeleteDetectionRequest(detection_id=detection_id),
        metadata=harness.metadata(user),
        timeout=30,
    )


async def _delete_job(harness, user, job_id: str) -> None:
    await harness.stub.DeleteJob(
        detection_pb2.DeleteJobRequest(job_id=job_id), metadata=harness.metadata(user), timeout=30
    )


async def _refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def _image_keys(harness, user) -> set[str]:
    """The storage keys of every image row the user has."""
    async with harness.service.engine.connect() as conn:
        keys = await conn.scalars(sa.select(images.c.storage_key).where(images.c.user_id == user))
        return set(keys)


async def _results_of(harness, detection_id: str) -> int:
    async with harness.service.engine.connect() as conn:
        return await conn.scalar(
            sa.select(sa.func.count())
            .select_from(results)
            .where(results.c.detection_id == uuid.UUID(detection_id))
        )


async def _rows(harness, user) -> dict[str, int]:
    """The user's detections, images and jobs (the harness also counts everyone's files)."""
    counts = await harness.counts(user)
    return {table: counts[table] for table in ("detections", "images", "jobs")}


def _stored(harness, key: str) -> bool:
    return (harness.settings.objects_dir / key[:2] / key).is_file()


async def _history_ids(harness, user) -> list[str]:
    listed = await harness.stub.ListDetections(
        detection_pb2.ListDetectionsRequest(), metadata=harness.metadata(user), timeout=30
    )
    return [item.id for item in listed.items]


async def test_a_deleted_detection_leaves_no_row_no_file_and_no_trace_in_history_or_exports(
    detection, user, bus_jpg, zidane_jpg
):
    bus, zidane = await _store(detection, user, ("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg))
    keys = await _image_keys(detection, user)
    assert len(keys) == 2 and all(_stored(detection, key) for key in keys)
    assert await _results_of(detection, bus) == 5

    await _delete_detection(detection, user, bus)

    (kept_key,) = await _image_keys(detection, user)
    (gone_key,) = keys - {kept_key}
    assert not _stored(detection, gone_key) and _stored(detection, kept_key)
    assert await _results_of(detection, bus) == 0
    assert await _rows(detection, user) == {"detections": 1, "images": 1, "jobs": 0}
    refused = await _refused(
        detection.stub.GetDetection(
            detection_pb2.GetDetectionRequest(detection_id=bus),
            metadata=detection.metadata(user),
            timeout=30,
        )
    )
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    for annotated in (True, False):
        image = detection.stub.GetAnnotatedImage(
            detection_pb2.GetAnnotatedImageRequest(detection_id=bus, annotated=annotated),
            metadata=detection.metadata(user),
            timeout=30,
        )
        refused = await _refused(anext(aiter(image)))
        assert refused.code() == grpc.StatusCode.NOT_FOUND
    assert await _history_ids(detection, user) == [zidane]
    assert {row["detection_id"] for row in await csv_export(detection, user)} == {zidane}

    # Deleting it again: nothing is there any more.
    refused = await _refused(_delete_detection(detection, user, bus))
    assert refused.code() == grpc.StatusCode.NOT_FOUND


async def test_only_the_owner_can_delete_a_detection(detection, user, bus_jpg):
    (bus,) = await _store(detection, user, ("bus.jpg", bus_jpg))
    stranger = f"user-{uuid.uuid4()}"

    refused = await _refused(_delete_detection(detection, stranger, bus))
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    assert refused.details() == "no such detection"
    refused = await _refused(_delete_detection(detection, user, "not-an-id"))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT

    assert await _history_ids(detection, user) == [bus]
    assert all(_stored(detection, key) for key in await _image_keys(detection, user))


def _as_stored(job: detection_pb2.Job) -> detection_pb2.Job:
    """The job without its finish estimate (ADR 0055), which is reckoned when read."""
    stored = detection_pb2.Job()
    stored.CopyFrom(job)
    stored.ClearField("items_per_second")
    stored.ClearField("estimated_completion_at")
    return stored


async def test_a_detection_of_a_running_job_is_refused_and_of_a_finished_one_leaves_the_job(
    queued, user, bus_jpg, zidane_jpg
):
    job = await _submit(queued, user, ("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg))
    async with session_factory(queued.service.engine).begin() as session:
        started = await jobs_service.start_job(session=session, job_id=uuid.UUID(job.id))
    assert started is not None
    options, items = started
    await queued.service.processor.process(options, items[:1])
    running = await _get_job(queued, user, job.id)
    assert running.status == detection_pb2.JOB_STATUS_PROCESSING
    bus = running.items[0].detection_id

    refused = await _refused(_delete_detection(queued, user, bus))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(refused.trailing_metadata())["error-code"] == "failed_precondition"
    assert f"belongs to job {job.id}, which is still processing" in refused.details()
    assert "cancel the job or wait for it to finish" in refused.details()
    # The job is as it was; only its estimate, reckoned at each read, moves on.
    assert _as_stored(await _get_job(queued, user, job.id)) == _as_stored(running)

    await queued.service.processor.process(options, items[1:])
    done = await _get_job(queued, user, job.id)
    assert done.status == COMPLETED
    await _delete_detection(queued, user, bus)

    after = await _get_job(queued, user, job.id)
    assert [item.filename for item in after.items] == ["zidane.jpg"]
    assert (after.status, after.total, after.processed) == (COMPLETED, 2, 2)
    assert await _history_ids(queued, user) == [after.items[0].detection_id]
    exported = await csv_export(queued, user, job_id=job.id)
    assert {row["filename"] for row in exported} == {"zidane.jpg"}
    assert len(await _image_keys(queued, user)) == 1


async def test_a_finished_job_goes_with_its_items_detections_and_images(
    detection, user, bus_jpg, zidane_jpg
):
    job = await _submit(detection, user, ("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg))
    await _finished(detection, user, job.id)
    keys = await _image_keys(detection, user)
    assert len(keys) == 2 and all(_stored(detection, key) for key in keys)
    stranger = f"user-{uuid.uuid4()}"
    refused = await _refused(_delete_job(detection, stranger, job.id))
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    assert refused.details() == "no such job"

    await _delete_job(detection, user, job.id)

    refused = await _refused(_get_job(detection, user, job.id))
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    assert await _rows(detection, user) == {"detections": 0, "images": 0, "jobs": 0}
    assert not any(_stored(detection, key) for key in keys)
    assert await _history_ids(detection, user) == []
    assert await csv_export(detection, user) == []
    refused = await _refused(_delete_job(detection, user, job.id))
    assert refused.code() == grpc.StatusCode.NOT_FOUND


async def test_deletions_racing_each_other_neither_deadlock_nor_delete_twice(
    detection, user, coco8
):
    """The same job deleted twice at once: one deletion does it, the other finds nothing.
    A job and one of its detections deleted at once: whichever locks the item first wins,
    and nothing of either is left."""
    first = await _submit(detection, user, *[(name, data) for name, data, _ in coco8[:2]])
    await _finished(detection, user, first.id)
    outcomes = await asyncio.gather(
        _delete_job(detection, user, first.id),
        _delete_job(detection, user, first.id),
        return_exceptions=True,
    )
    refused = [outcome for outcome in outcomes if outcome is not None]
    assert len(refused) == 1 and refused[0].code() == grpc.StatusCode.NOT_FOUND

    second = await _finished(
        detection,
        user,
        (await _submit(detection, user, *[(name, data) for name, data, _ in coco8[2:4]])).id,
    )
    job_deleted, detection_deleted = await asyncio.gather(
        _delete_job(detection, user, second.id),
        _delete_detection(detection, user, second.items[0].detection_id),
        return_exceptions=True,
    )
    assert job_deleted is None
    assert detection_deleted is None or detection_deleted.code() == grpc.StatusCode.NOT_FOUND
    assert await _rows(detection, user) == {"detections": 0, "images": 0, "jobs": 0}


async def test_a_pending_or_processing_job_is_refused_until_it_is_cancelled(
    queued, user, bus_jpg, zidane_jpg
):
    job = await _submit(queued, user, ("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg))
    refused = await _refused(_delete_job(queued, user, job.id))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.details() == f"job {job.id} is still pending; cancel it first, then delete it"

    # A worker takes it: still refused while it runs.
    async with session_factory(queued.service.engine).begin() as session:
        started = await jobs_service.start_job(session=session, job_id=uuid.UUID(job.id))
    assert started is not None
    refused = await _refused(_delete_job(queued, user, job.id))
    assert "is still processing; cancel it first" in refused.details()
    assert len(await _image_keys(queued, user)) == 2

    await queued.stub.CancelJob(
        detection_pb2.CancelJobRequest(job_id=job.id), metadata=queued.metadata(user), timeout=30
    )
    await _delete_job(queued, user, job.id)
    assert await _rows(queued, user) == {"detections": 0, "images": 0, "jobs": 0}

    # The worker that had started reaches its items: they are gone, nothing is recorded.
    await queued.service.processor.process(*started)
    assert await _rows(queued, user) == {"detections": 0, "images": 0, "jobs": 0}


async def test_a_video_job_goes_with_its_upload_frames_and_annotated_video(
    detection, user, tmp_path: Path
):
    clip = make_video(
        tmp_path / "bus.mp4", [(IMAGES / "bus.jpg", 10)], fps=5, width=320, height=240
    )
    data = clip.read_bytes()

    async def upload():
        yield detection_pb2.VideoUpload(
            header=detection_pb2.VideoUploadHeader(
                filename="bus.mp4",
                sampling=detection_pb2.VideoSampling(every=5),
                size_bytes=len(data),
            )
        )
        yield detection_pb2.VideoUpload(chunk=data)

    job = await detection.stub.SubmitVideoJob(
        upload(), metadata=detection.metadata(user), timeout=60
    )
    done = await _finished(detection, user, job.id)
    assert done.status == COMPLETED and done.video.annotated_available
    job_id = uuid.UUID(job.id)
    async with detection.service.engine.connect() as conn:
        video = (
            await conn.execute(sa.select(video_jobs).where(video_jobs.c.job_id == job_id))
        ).one()
    keys = [video.storage_key, video.annotated_key]
    assert all(_stored(detection, key) for key in keys)

    await _delete_job(detection, user, job.id)

    assert not any(_stored(detection, key) for key in keys)
    async with detection.service.engine.connect() as conn:
        for table in (video_jobs, video_frames):
            left = await conn.scalar(
                sa.select(sa.func.count()).select_from(table).where(table.c.job_id == job_id)
            )
            assert left == 0, table.name
    frames = detection.stub.ListVideoFrames(
        detection_pb2.ListVideoFramesRequest(job_id=job.id),
        metadata=detection.metadata(user),
        timeout=30,
    )
    assert (await _refused(frames)).code() == grpc.StatusCode.NOT_FOUND


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


async def test_a_crash_between_the_rows_and_the_files_leaves_files_the_orphan_sweep_removes(
    make_harness, user, bus_jpg, zidane_jpg, tmp_path: Path
):
    """The first step of each deletion commits on its own, as a crash right after it would
    leave things: the rows are gone, the files are still there, and a reader already finds
    nothing. The sweep takes the files once they are older than its grace period, counted
    from their upload; a file that is still young waits."""
    harness = await make_harness(STORAGE_DIR=str(tmp_path / "objects"))
    storage = LocalDirectoryStorage(harness.settings.objects_dir)
    (bus,) = await _store(harness, user, ("bus.jpg", bus_jpg))
    job = await _submit(harness, user, ("zidane.jpg", zidane_jpg))
    await _finished(harness, user, job.id)
    keys = await _image_keys(harness, user)
    paths = [storage.root / key[:2] / key for key in keys]
    sessions = session_factory(harness.service.engine)

    async with sessions.begin() as session:
        await history_service.delete_detection_rows(
            session=session, user_id=user, detection_id=uuid.UUID(bus)
        )
    async with sessions.begin() as session:
        await jobs_service.delete_job_rows(session=session, job_id=uuid.UUID(job.id), user_id=user)

    assert all(path.is_file() for path in paths)
    assert await _image_keys(harness, user) == set()
    assert await _history_ids(harness, user) == []
    sweeper = OrphanSweeper(
        sessions=sessions,
        storage=storage,
        grace_s=GRACE_SECONDS,
        interval_s=GRACE_SECONDS,
        removed=Counter("removed", "Objects removed.", registry=CollectorRegistry()),
    )
    assert await sweeper.sweep() == 0  # uploaded a moment ago: within the grace period
    assert all(path.is_file() for path in paths)

    for path in paths:
        _age(path, GRACE_SECONDS + 60)
    assert await sweeper.sweep() == 2
    assert not any(path.exists() for path in paths)


async def test_a_deleted_images_answers_leave_the_result_cache(make_harness, user, bus_jpg):
    cached = await make_harness(RESULT_CACHE_TTL_SECONDS=600)
    # Bytes of its own (a JPEG comment segment), so no other test's upload is in the cache.
    note = f"deletion {uuid.uuid4()}".encode()
    image = bus_jpg[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + bus_jpg[2:]

    async def detect(store: bool, **params) -> detection_pb2.ImageResult:
        reply = await cached.stub.Detect(
            detection_pb2.DetectRequest(
                images=[detection_pb2.ImageInput(data=image, filename="bus.jpg")],
                params=detection_pb2.DetectionParams(**params),
                store=store,
            ),
            metadata=cached.metadata(user),
            timeout=30,
        )
        return reply.results[0]

    stored = await detect(True)
    stricter = await detect(False, confidence=0.6)
    assert not stored.cached and not stricter.cached
    assert (await detect(False)).cached and (await detect(False, confidence=0.6)).cached

    await _delete_detection(cached, user, stored.detection_id)

    # Every answer for those bytes is gone, whatever the options it was made with.
    assert not (await detect(False)).cached
    assert not (await detect(False, confidence=0.6)).cached
