"""Listing a user's jobs and cancelling one (ADR 0022), against real PostgreSQL, Redis and Triton.

The jobs here are submitted to a service with no job workers (JOB_WORKERS=0), so they stay
queued until the test itself runs a worker step: that is how a job is cancelled while its
items are still queued, or between a worker starting it and reaching its next item, without
racing a worker. No sleep is a synchronisation point.
"""

import asyncio
import time
import uuid

import grpc
import pytest
import sqlalchemy as sa

from detection_service.history.models import detections
from detection_service.images.storage import LocalDirectoryStorage
from detection_service.jobs import service as jobs_service
from detection_service.outbox import OUTBOX
from detection_service.video.worker import VideoProcessor
from objectvision.v1 import common_pb2, detection_pb2
from objectvision_common.db import session_factory
from objectvision_common.limits import MAX_PAGE_LIMIT
from objectvision_devstack.videos import make_video

from .conftest import IMAGES

PENDING = detection_pb2.JOB_STATUS_PENDING
CANCELLED = detection_pb2.JOB_STATUS_CANCELLED
COMPLETED = detection_pb2.JOB_STATUS_COMPLETED
FRAMES_IN_FLIGHT = 4


@pytest.fixture(scope="module")
def bus_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """4 s of bus.jpg at 10 fps (40 frames), H.264 in MP4."""
    path = tmp_path_factory.mktemp("videos") / "bus.mp4"
    return make_video(path, [(IMAGES / "bus.jpg", 40)], fps=10).read_bytes()


# No sweeper re-enqueues another test's leftover jobs onto these streams while a test runs.
NO_SWEEPING = {"JOB_REQUEUE_AFTER_SECONDS": 3600}


@pytest.fixture
async def queued(make_harness):
    """A service whose jobs wait: no worker consumes its job stream."""
    return await make_harness(
        JOB_WORKERS=0, JOB_STREAM=f"detection:jobs:queued:{uuid.uuid4().hex[:8]}", **NO_SWEEPING
    )


async def _submit(harness, user, *images: tuple[str, bytes]) -> detection_pb2.Job:
    return await harness.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(
            images=[detection_pb2.ImageInput(data=data, filename=name) for name, data in images]
        ),
        metadata=harness.metadata(user),
        timeout=30,
    )


async def _submit_video(harness, user, data: bytes) -> detection_pb2.Job:
    async def messages():
        yield detection_pb2.VideoUpload(
            header=detection_pb2.VideoUploadHeader(
                filename="bus.mp4",
                sampling=detection_pb2.VideoSampling(every=1),
                size_bytes=len(data),
            )
        )
        yield detection_pb2.VideoUpload(chunk=data)

    return await harness.stub.SubmitVideoJob(
        messages(), metadata=harness.metadata(user), timeout=60
    )


async def _list(harness, user, **request) -> detection_pb2.ListJobsResponse:
    return await harness.stub.ListJobs(
        detection_pb2.ListJobsRequest(**request), metadata=harness.metadata(user), timeout=30
    )


async def _cancel(harness, user, job_id: str) -> detection_pb2.Job:
    return await harness.stub.CancelJob(
        detection_pb2.CancelJobRequest(job_id=job_id), metadata=harness.metadata(user), timeout=30
    )


async def _get(harness, user, job_id: str) -> detection_pb2.Job:
    return await harness.stub.GetJob(
        detection_pb2.GetJobRequest(job_id=job_id), metadata=harness.metadata(user), timeout=30
    )


async def _refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def _inferred_images(harness) -> float:
    """Images this service instance sent to Triton (its own metrics)."""
    (metric,) = harness.service.metrics.batch_size.collect()
    return next(s.value for s in metric.samples if s.name.endswith("_sum"))


async def _events(harness, job_id: str) -> list[tuple[str, dict]]:
    """(event type, payload) of this job's outbox rows, progress first, by processed count."""
    payload = OUTBOX.c.payload
    async with harness.service.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(OUTBOX.c.event_type, OUTBOX.c.payload).where(
                (payload["jobProgress"]["jobId"].astext == job_id)
                | (payload["jobFinished"]["jobId"].astext == job_id)
            )
        )
    found = [
        (row.event_type, row.payload.get("jobProgress") or row.payload["jobFinished"])
        for row in rows
    ]
    return sorted(found, key=lambda e: (e[0] != "job.progress", int(e[1].get("processed", 0))))


async def _detections_of(harness, job_id: str) -> int:
    async with harness.service.engine.connect() as conn:
        return await conn.scalar(
            sa.select(sa.func.count())
            .select_from(detections)
            .where(detections.c.job_id == uuid.UUID(job_id))
        )


async def test_jobs_are_listed_newest_first_filtered_and_paged_for_their_owner_only(
    queued, user, bus_jpg, zidane_jpg, bus_video
):
    oldest = await _submit(queued, user, ("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg))
    video = await _submit_video(queued, user, bus_video)
    cancelled = await _cancel(queued, user, (await _submit(queued, user, ("a.jpg", bus_jpg))).id)
    completed = await _submit(queued, user, ("b.jpg", bus_jpg))
    await queued.service.processor.run(uuid.UUID(completed.id))
    newest_first = [completed.id, cancelled.id, video.id, oldest.id]

    everything = await _list(queued, user)
    assert [job.id for job in everything.jobs] == newest_first
    assert (everything.total, everything.limit, everything.offset) == (4, 20, 0)
    assert [job.status for job in everything.jobs] == [COMPLETED, CANCELLED, PENDING, PENDING]
    # A list is for finding a job: no items; a video job keeps its video.
    assert all(len(job.items) == 0 for job in everything.jobs)
    assert [job.total for job in everything.jobs] == [1, 1, 40, 2]
    listed_video = everything.jobs[2]
    assert listed_video.kind == "video" and listed_video.video.filename == "bus.mp4"
    assert listed_video.video.sampled_frames == 40

    async def ids(**request) -> list[str]:
        return [job.id for job in (await _list(queued, user, **request)).jobs]

    assert await ids(status=PENDING) == [video.id, oldest.id]
    assert await ids(status=CANCELLED) == [cancelled.id]
    assert await ids(status=COMPLETED) == [completed.id]
    assert await ids(status=detection_pb2.JOB_STATUS_FAILED) == []
    assert await ids(kind="video") == [video.id]
    assert await ids(kind="batch") == [completed.id, cancelled.id, oldest.id]
    assert await ids(kind="batch", status=PENDING) == [oldest.id]
    page = await _list(queued, user, page=common_pb2.Page(limit=2, offset=1))
    assert [job.id for job in page.jobs] == newest_first[1:3]
    assert (page.total, page.limit, page.offset) == (4, 2, 1)
    capped = await _list(queued, user, page=common_pb2.Page(limit=5000))
    assert capped.limit == MAX_PAGE_LIMIT and len(capped.jobs) == 4

    stranger = f"user-{uuid.uuid4()}"
    nothing = await _list(queued, stranger)
    assert (list(nothing.jobs), nothing.total) == ([], 0)

    for request in (
        {"kind": "audio"},
        {"status": 99},
        {"page": common_pb2.Page(offset=-1)},
    ):
        refused = await _refused(_list(queued, user, **request))
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert dict(refused.trailing_metadata())["error-code"] == "invalid_argument"
    # Left pending, a later sweep would run them: cancelled, they are done with.
    for job_id in (video.id, oldest.id):
        assert (await _cancel(queued, user, job_id)).status == CANCELLED


async def test_a_queued_job_cancelled_before_any_worker_is_skipped_and_acknowledged(
    queued, make_harness, user, bus_jpg, zidane_jpg
):
    job = await _submit(queued, user, ("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg))
    stream = queued.settings.job_stream
    assert await queued.service.redis.xlen(stream) == 1

    stranger = f"user-{uuid.uuid4()}"
    refused = await _refused(_cancel(queued, stranger, job.id))
    assert refused.code() == grpc.StatusCode.NOT_FOUND
    assert (await _get(queued, user, job.id)).status == PENDING
    refused = await _refused(_cancel(queued, user, "not-a-job-id"))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT

    cancelled = await _cancel(queued, user, job.id)
    assert cancelled.status == CANCELLED
    assert (cancelled.total, cancelled.processed, cancelled.failed) == (2, 0, 0)
    assert [item.status for item in cancelled.items] == [CANCELLED, CANCELLED]
    assert cancelled.HasField("completed_at")
    # Idempotent: cancelling again answers the job unchanged, and adds no event.
    assert await _cancel(queued, user, job.id) == cancelled

    worker = await make_harness(JOB_STREAM=stream, JOB_WORKERS=1, **NO_SWEEPING)
    deadline = time.monotonic() + 30
    while await queued.service.redis.xlen(stream):
        assert time.monotonic() < deadline, "the worker never acknowledged the cancelled job"
        await asyncio.sleep(0.1)
    pending = await queued.service.redis.xpending(stream, queued.settings.job_consumer_group)
    assert pending["pending"] == 0
    assert _inferred_images(worker) == 0
    assert await _get(queued, user, job.id) == cancelled
    assert await _detections_of(queued, job.id) == 0
    events = await _events(queued, job.id)
    assert [event_type for event_type, _ in events] == ["job.cancelled"]
    finished = events[0][1]
    assert finished["status"] == "cancelled" and finished["total"] == 2
    assert int(finished.get("processed", 0)) == 0


async def test_a_job_cancelled_between_items_keeps_what_was_done_and_detects_nothing_more(
    queued, user, bus_jpg, zidane_jpg
):
    job = await _submit(
        queued, user, ("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg), ("again.jpg", bus_jpg)
    )
    # A worker starts the job and finishes its first item; then the owner cancels.
    async with session_factory(queued.service.engine).begin() as session:
        started = await jobs_service.start_job(session=session, job_id=uuid.UUID(job.id))
    assert started is not None
    options, items = started
    await queued.service.processor.process(options, items[:1])
    assert _inferred_images(queued) == 1

    cancelled = await _cancel(queued, user, job.id)
    assert cancelled.status == CANCELLED
    assert (cancelled.processed, cancelled.failed) == (1, 0)
    assert [item.status for item in cancelled.items] == [COMPLETED, CANCELLED, CANCELLED]
    kept = cancelled.items[0]
    assert kept.detection_id and kept.object_count >= 5

    # The worker reaches the remaining items: they are no longer pending, nothing is detected.
    await queued.service.processor.process(options, items[1:])
    assert _inferred_images(queued) == 1
    assert await _get(queued, user, job.id) == cancelled
    assert await _detections_of(queued, job.id) == 1

    history = await queued.stub.ListDetections(
        detection_pb2.ListDetectionsRequest(), metadata=queued.metadata(user), timeout=30
    )
    assert [(d.id, d.job_id) for d in history.items] == [(kept.detection_id, job.id)]
    events = await _events(queued, job.id)
    assert [(event_type, body.get("processed")) for event_type, body in events] == [
        ("job.progress", 1),
        ("job.cancelled", 1),
    ]
    counts = events[-1][1]["classCounts"]
    assert counts["bus"] == 1 and counts["person"] >= 4


async def test_a_cancel_racing_a_worker_leaves_each_item_done_or_cancelled_and_one_final_event(
    queued, user, coco8
):
    """Whichever commits first, the cancel or an item, nothing deadlocks, no item is both,
    and the job has exactly one final event whose counts are the items done."""
    job = await _submit(queued, user, *[(name, data) for name, data, _ in coco8])
    async with session_factory(queued.service.engine).begin() as session:
        started = await jobs_service.start_job(session=session, job_id=uuid.UUID(job.id))
    assert started is not None

    async def cancel() -> detection_pb2.Job | None:
        try:
            return await _cancel(queued, user, job.id)
        except grpc.aio.AioRpcError as refused:
            # The worker was faster and finished every item first.
            assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
            return None

    _, answered = await asyncio.gather(queued.service.processor.process(*started), cancel())

    final = await _get(queued, user, job.id)
    statuses = [item.status for item in final.items]
    done = sum(status in (COMPLETED, detection_pb2.JOB_STATUS_FAILED) for status in statuses)
    if answered is None:
        assert final.status == COMPLETED and done == 8
    else:
        assert answered == final and final.status == CANCELLED
        assert set(statuses) <= {COMPLETED, CANCELLED}
    assert final.processed == done
    assert await _detections_of(queued, job.id) == sum(s == COMPLETED for s in statuses)
    events = await _events(queued, job.id)
    finals = [(event_type, body) for event_type, body in events if event_type != "job.progress"]
    assert len(finals) == 1
    assert finals[0][0] == ("job.cancelled" if answered is not None else "job.completed")
    assert int(finals[0][1].get("processed", 0)) == done
    assert len(events) - 1 == done  # one progress event per item done


async def test_a_finished_job_cannot_be_cancelled(detection, user, bus_jpg):
    job = await _submit(detection, user, ("bus.jpg", bus_jpg))
    deadline = time.monotonic() + 60
    while (done := await _get(detection, user, job.id)).status != COMPLETED:
        assert time.monotonic() < deadline, f"job still {done.status}"
        await asyncio.sleep(0.1)

    refused = await _refused(_cancel(detection, user, job.id))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(refused.trailing_metadata())["error-code"] == "failed_precondition"
    assert "already completed" in refused.details()
    assert await _get(detection, user, job.id) == done


async def test_a_video_job_cancelled_while_it_runs_stops_at_its_next_commit(
    queued, user, bus_video
):
    job = await _submit_video(queued, user, bus_video)
    service = queued.service
    video = VideoProcessor(
        sessions=session_factory(service.engine),
        storage=LocalDirectoryStorage(queued.settings.objects_dir),
        detector=service.pipeline.detector,
        executor=service.pipeline.executor,
        metrics=service.metrics,
        frames_in_flight=FRAMES_IN_FLIGHT,
        tracking=queued.settings.tracking,
        sandbox=queued.settings.video_sandbox,
        lease=queued.settings.job_lease,
        live_counts_seconds=queued.settings.video_live_counts_seconds,
    )
    work = await video.start(uuid.UUID(job.id))
    assert work is not None
    assert (await _get(queued, user, job.id)).status == detection_pb2.JOB_STATUS_PROCESSING

    cancelled = await _cancel(queued, user, job.id)
    assert cancelled.status == CANCELLED and cancelled.processed == 0
    await video.process(work)

    # It stopped at its first commit: at most the frames that commit held, those waiting
    # in the queue behind it and the one being read were detected, not the 40 of the video.
    assert _inferred_images(queued) <= 2 * FRAMES_IN_FLIGHT + 1
    after = await _get(queued, user, job.id)
    assert after == cancelled and not after.video.annotated_available
    listed = await queued.stub.ListVideoFrames(
        detection_pb2.ListVideoFramesRequest(job_id=job.id),
        metadata=queued.metadata(user),
        timeout=30,
    )
    assert listed.total == 0
    refused = await _refused(
        anext(
            aiter(
                queued.stub.GetAnnotatedVideo(
                    detection_pb2.GetAnnotatedVideoRequest(job_id=job.id),
                    metadata=queued.metadata(user),
                    timeout=30,
                )
            )
        )
    )
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cancelled" in refused.details()
    assert [event_type for event_type, _ in await _events(queued, job.id)] == ["job.cancelled"]
    # A worker that picks the job up now finds nothing to do.
    assert await video.start(uuid.UUID(job.id)) is None


async def test_a_job_keeps_its_metadata_in_every_answer_and_event_and_the_list_filters_by_it(
    queued, user, bus_jpg, bus_video
):
    camera = {"camera": "north-gate"}
    ordered = {"camera": "north-gate", "order": "A-1042"}
    batch = await queued.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(
            images=[detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg")],
            metadata=ordered,
            idempotency_key="order-a-1042",
        ),
        metadata=queued.metadata(user),
        timeout=30,
    )
    assert dict(batch.metadata) == ordered

    async def video_messages():
        yield detection_pb2.VideoUpload(
            header=detection_pb2.VideoUploadHeader(
                filename="bus.mp4",
                sampling=detection_pb2.VideoSampling(every=10),
                size_bytes=len(bus_video),
                metadata=camera,
            )
        )
        yield detection_pb2.VideoUpload(chunk=bus_video)

    video = await queued.stub.SubmitVideoJob(
        video_messages(), metadata=queued.metadata(user), timeout=60
    )
    plain = await _submit(queued, user, ("plain.jpg", bus_jpg))
    assert dict(video.metadata) == camera and dict(plain.metadata) == {}
    assert dict((await _get(queued, user, batch.id)).metadata) == ordered

    async def ids(**request) -> list[str]:
        return [job.id for job in (await _list(queued, user, **request)).jobs]

    assert await ids(metadata=camera) == [video.id, batch.id]
    assert await ids(metadata=ordered) == [batch.id]
    assert await ids(metadata={"order": "A-1042"}) == [batch.id]
    assert await ids(metadata=camera, kind="video") == [video.id]
    assert await ids(metadata={"camera": "south-gate"}) == []
    assert await ids(metadata={"camera": "north"}) == []
    assert await ids() == [plain.id, video.id, batch.id]
    # Another account's jobs with the same pairs are not this account's.
    assert (await _list(queued, f"user-{uuid.uuid4()}", metadata=camera)).total == 0

    # A retry with the idempotency key gets the first job, with the first job's metadata.
    retried = await queued.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(
            images=[detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg")],
            metadata={"order": "B-7"},
            idempotency_key="order-a-1042",
        ),
        metadata=queued.metadata(user),
        timeout=30,
    )
    assert retried.id == batch.id and dict(retried.metadata) == ordered

    # Its progress and final events carry the metadata, for webhooks and the WebSocket.
    await queued.service.processor.run(uuid.UUID(batch.id))
    events = await _events(queued, batch.id)
    assert [event_type for event_type, _ in events] == ["job.progress", "job.completed"]
    assert all(payload["metadata"] == ordered for _, payload in events)

    for video_job in (video, plain):
        await _cancel(queued, user, video_job.id)
    cancelled_events = await _events(queued, video.id)
    assert [payload.get("metadata") for _, payload in cancelled_events] == [camera]


async def test_metadata_beyond_the_limits_is_refused_naming_the_pair_and_stores_nothing(
    queued, user, bus_jpg
):
    beyond = [
        ({f"k{n}": "v" for n in range(17)}, "17 keys"),
        ({"camera id": "1"}, "'camera id'"),
        ({"camera\n": "1"}, "'camera\\n'"),
        ({"k" * 65: "1"}, "1 to 64"),
        ({"camera": ""}, "'camera'"),
        ({"camera": " "}, "not blank"),
        ({"camera": "x" * 513}, "1 to 512"),
        ({"camera": "north\ngate"}, "control characters"),
        ({"camera": "north\u202egate"}, "bidirectional"),
    ]
    for metadata, named in beyond:
        refused = await _refused(
            queued.stub.SubmitJob(
                detection_pb2.SubmitJobRequest(
                    images=[detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg")],
                    metadata=metadata,
                ),
                metadata=queued.metadata(user),
                timeout=30,
            )
        )
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT, metadata
        assert named in refused.details(), (named, refused.details())
        listed = await _refused(_list(queued, user, metadata=metadata))
        assert listed.code() == grpc.StatusCode.INVALID_ARGUMENT, metadata
    assert (await _list(queued, user)).total == 0


async def test_an_ended_job_answers_the_objects_per_class_its_final_event_counted(
    queued, user, bus_jpg, zidane_jpg
):
    job = await _submit(queued, user, ("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg))
    assert not job.HasField("class_counts")
    await queued.service.processor.run(uuid.UUID(job.id))

    done = await _get(queued, user, job.id)
    assert done.status == COMPLETED and done.HasField("class_counts")
    counted: dict[str, int] = {}
    for item in done.items:
        detection = await queued.stub.GetDetection(
            detection_pb2.GetDetectionRequest(detection_id=item.detection_id),
            metadata=queued.metadata(user),
            timeout=30,
        )
        for obj in detection.result.objects:
            counted[obj.class_name] = counted.get(obj.class_name, 0) + 1
    assert dict(done.class_counts.counts) == counted
    assert counted["person"] >= 2 and counted["bus"] >= 1
    (final,) = [
        payload for kind, payload in await _events(queued, job.id) if kind != "job.progress"
    ]
    assert final["classCounts"] == counted
    listed = (await _list(queued, user)).jobs[0]
    assert dict(listed.class_counts.counts) == counted

    # A job cancelled before anything ran found nothing: counted, and empty.
    cancelled = await _cancel(queued, user, (await _submit(queued, user, ("a.jpg", bus_jpg))).id)
    assert cancelled.HasField("class_counts") and dict(cancelled.class_counts.counts) == {}
