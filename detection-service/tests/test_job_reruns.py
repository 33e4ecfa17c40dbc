"""Running a batch job's stored images again (ADR 0058): another model or other options over
the same pictures, nothing uploaded twice, admitted and answered as a submission.

Real PostgreSQL, Redis, storage directory and Triton (serving yolov8n and yolov8n-int8).
"""

import tracemalloc
import uuid

import grpc
import pytest
import sqlalchemy as sa

from detection_service.images.models import images
from detection_service.images.storage import LocalDirectoryStorage
from detection_service.jobs.models import job_items, jobs
from detection_service.video.models import video_jobs
from objectvision.v1 import detection_pb2

from .conftest import finished_job, submit_video_job

INT8 = "yolov8n-int8"


async def _submit(detection, user, files, **kwargs) -> detection_pb2.Job:
    return await detection.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(
            images=[detection_pb2.ImageInput(data=data, filename=name) for name, data in files],
            **kwargs,
        ),
        metadata=detection.metadata(user),
        timeout=30,
    )


async def _rerun(detection, user, job_id: str, **kwargs) -> detection_pb2.Job:
    return await detection.stub.RerunJob(
        detection_pb2.RerunJobRequest(job_id=job_id, **kwargs),
        metadata=detection.metadata(user),
        timeout=30,
    )


async def _refusal(detection, user, job_id: str, **kwargs) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _rerun(detection, user, job_id, **kwargs)
    return refused.value


async def _objects(
    detection, user, job: detection_pb2.Job
) -> list[tuple[str, list[detection_pb2.DetectedObject]]]:
    """The model that answered each item, and the objects it kept, in the job's order."""
    found = []
    for item in job.items:
        stored = await detection.stub.GetDetection(
            detection_pb2.GetDetectionRequest(detection_id=item.detection_id),
            metadata=detection.metadata(user),
            timeout=30,
        )
        found.append((stored.result.model, list(stored.result.objects)))
    return found


async def test_a_rerun_detects_the_stored_images_again_keeping_the_options_it_is_not_given(
    detection, user, bus_jpg, zidane_jpg
):
    source = await _submit(
        detection,
        user,
        [("bus.jpg", bus_jpg), ("notes.txt", b"not a picture"), ("zidane.jpg", zidane_jpg)],
        params=detection_pb2.DetectionParams(classes=["person"], confidence=0.5),
        metadata={"camera": "north"},
    )
    source = await finished_job(detection, user, source.id)
    assert [item.status for item in source.items].count(detection_pb2.JOB_STATUS_FAILED) == 1

    other_model = await _rerun(
        detection, user, source.id, params=detection_pb2.DetectionParams(model=INT8)
    )
    # The refused file was never stored: the new job has the two images, in their order.
    assert (other_model.total, other_model.model, other_model.rerun_of) == (2, INT8, source.id)
    assert [item.filename for item in other_model.items] == ["bus.jpg", "zidane.jpg"]
    assert dict(other_model.metadata) == {"camera": "north"}
    done = await finished_job(detection, user, other_model.id)
    assert (done.status, done.processed, done.failed) == (detection_pb2.JOB_STATUS_COMPLETED, 2, 0)
    for model, objects in await _objects(detection, user, done):
        assert model == INT8
        assert objects, "each picture holds people"
        assert {obj.class_name for obj in objects} == {"person"}
        assert min(obj.confidence for obj in objects) >= 0.5

    # Options given replace the job's: buses only, from the job's own model.
    buses = await finished_job(
        detection,
        user,
        (
            await _rerun(
                detection,
                user,
                source.id,
                params=detection_pb2.DetectionParams(classes=["bus"]),
                metadata={"camera": "south"},
            )
        ).id,
    )
    assert (buses.model, dict(buses.metadata)) == ("yolov8n", {"camera": "south"})
    (bus_model, on_bus), (_, on_zidane) = await _objects(detection, user, buses)
    assert bus_model == "yolov8n"
    assert [obj.class_name for obj in on_bus] == ["bus"] and on_zidane == []


async def test_a_rerun_is_refused_for_what_cannot_run_again(detection, user, bus_jpg):
    source = await _submit(detection, user, [("bus.jpg", bus_jpg)])
    await finished_job(detection, user, source.id)

    stranger = await _refusal(detection, f"other-{uuid.uuid4()}", source.id)
    assert stranger.code() == grpc.StatusCode.NOT_FOUND
    unknown = await _refusal(
        detection, user, source.id, params=detection_pb2.DetectionParams(model="yolov9-huge")
    )
    assert unknown.code() == grpc.StatusCode.NOT_FOUND and "yolov8n" in unknown.details()
    too_sure = await _refusal(
        detection, user, source.id, params=detection_pb2.DetectionParams(confidence=1.5)
    )
    assert too_sure.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_video_job_runs_again_on_a_copy_of_its_video_with_its_tracking(
    detection, user, panned_video
):
    source = await finished_job(
        detection, user, (await submit_video_job(detection, user, panned_video, track=True)).id
    )
    rerun = await _rerun(
        detection, user, source.id, params=detection_pb2.DetectionParams(model=INT8)
    )
    assert (rerun.kind, rerun.model, rerun.rerun_of) == ("video", INT8, source.id)
    assert rerun.video.tracked and rerun.video.sampling == source.video.sampling
    assert rerun.video.filename == source.video.filename == "pan.mp4"
    done = await finished_job(detection, user, rerun.id)
    assert done.status == detection_pb2.JOB_STATUS_COMPLETED
    assert done.processed == source.processed > 0
    frames = await detection.stub.ListVideoFrames(
        detection_pb2.ListVideoFramesRequest(job_id=rerun.id),
        metadata=detection.metadata(user),
        timeout=30,
    )
    assert any(obj.HasField("track_id") for frame in frames.frames for obj in frame.objects)

    # Each job has its own copy: deleting the first leaves the rerun's video whole.
    async with detection.service.engine.connect() as conn:
        keys = set(
            await conn.scalars(
                sa.select(video_jobs.c.storage_key).where(
                    video_jobs.c.job_id.in_([uuid.UUID(source.id), uuid.UUID(rerun.id)])
                )
            )
        )
    assert len(keys) == 2
    await detection.stub.DeleteJob(
        detection_pb2.DeleteJobRequest(job_id=source.id),
        metadata=detection.metadata(user),
        timeout=30,
    )
    storage = LocalDirectoryStorage(detection.settings.objects_dir)
    async with detection.service.engine.connect() as conn:
        kept = await conn.scalar(
            sa.select(video_jobs.c.storage_key).where(video_jobs.c.job_id == uuid.UUID(rerun.id))
        )
    assert (await storage.local_path(kept)).stat().st_size == rerun.video.size_bytes


async def test_a_retried_rerun_gets_its_job_back(detection, user, bus_jpg):
    source = await _submit(detection, user, [("bus.jpg", bus_jpg)])
    first = await _rerun(detection, user, source.id, idempotency_key="rerun-once")
    again = await _rerun(detection, user, source.id, idempotency_key="rerun-once")
    assert again.id == first.id
    async with detection.service.engine.connect() as conn:
        made = await conn.scalar(
            sa.select(sa.func.count()).select_from(jobs).where(jobs.c.user_id == user)
        )
    assert made == 2


async def test_an_image_gone_from_storage_is_a_failed_item_of_the_new_job(
    detection, user, bus_jpg, zidane_jpg
):
    source = await finished_job(
        detection,
        user,
        (await _submit(detection, user, [("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg)])).id,
    )
    async with detection.service.engine.connect() as conn:
        lost_key = await conn.scalar(
            sa.select(images.c.storage_key)
            .join(job_items, job_items.c.image_id == images.c.id)
            .where(job_items.c.job_id == uuid.UUID(source.id), job_items.c.position == 0)
        )
    await LocalDirectoryStorage(detection.settings.objects_dir).delete(lost_key)

    rerun = await finished_job(detection, user, (await _rerun(detection, user, source.id)).id)
    assert (rerun.total, rerun.failed) == (2, 1)
    lost, kept = rerun.items
    assert (lost.filename, lost.error) == ("bus.jpg", "its stored image is gone")
    assert kept.status == detection_pb2.JOB_STATUS_COMPLETED and kept.object_count > 0


async def test_classes_of_a_model_no_longer_served_must_be_named_again(detection, user, bus_jpg):
    source = await finished_job(
        detection,
        user,
        (
            await _submit(
                detection,
                user,
                [("bus.jpg", bus_jpg)],
                params=detection_pb2.DetectionParams(classes=["bus"]),
            )
        ).id,
    )
    async with detection.service.engine.begin() as conn:
        await conn.execute(
            jobs.update().where(jobs.c.id == uuid.UUID(source.id)).values(model="retired-model")
        )

    # Its class ids index the retired model's names, which nothing can read any more.
    refused = await _refusal(
        detection, user, source.id, params=detection_pb2.DetectionParams(model="yolov8n")
    )
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "retired-model" in refused.details() and "name the classes" in refused.details()
    named = await _rerun(
        detection,
        user,
        source.id,
        params=detection_pb2.DetectionParams(model="yolov8n", classes=["bus"]),
    )
    assert named.model == "yolov8n"


async def test_deleting_the_job_a_rerun_came_from_clears_its_rerun_of(detection, user, bus_jpg):
    source = await finished_job(
        detection, user, (await _submit(detection, user, [("bus.jpg", bus_jpg)])).id
    )
    rerun = await finished_job(detection, user, (await _rerun(detection, user, source.id)).id)
    assert rerun.rerun_of == source.id

    async def reruns_of(job_id: str) -> list[str]:
        listed = await detection.stub.ListJobs(
            detection_pb2.ListJobsRequest(rerun_of=job_id),
            metadata=detection.metadata(user),
            timeout=30,
        )
        return [job.id for job in listed.jobs]

    assert await reruns_of(source.id) == [rerun.id]
    assert await reruns_of(rerun.id) == []
    await detection.stub.DeleteJob(
        detection_pb2.DeleteJobRequest(job_id=source.id),
        metadata=detection.metadata(user),
        timeout=30,
    )
    kept = await finished_job(detection, user, rerun.id)
    assert kept.rerun_of == "" and kept.items[0].object_count > 0
    assert await reruns_of(source.id) == []


async def _stored(detection, user, files, metadata: dict[str, str]) -> None:
    await detection.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=data, filename=name) for name, data in files],
            store=True,
            metadata=metadata,
        ),
        metadata=detection.metadata(user),
        timeout=60,
    )


async def test_the_historys_filters_choose_the_stored_images_a_new_job_runs(
    make_harness, user, bus_jpg, zidane_jpg
):
    """ADR 0058: a model tried on what one camera sent; more than a batch's worth is refused
    with the count, and nothing is a precondition failure."""
    detection = await make_harness(MAX_BATCH_FILES=2)
    await _stored(detection, user, [("north-1.jpg", bus_jpg)], {"camera": "north"})
    await _stored(detection, user, [("north-2.jpg", zidane_jpg)], {"camera": "north"})
    await _stored(detection, user, [("south-1.jpg", bus_jpg)], {"camera": "south"})

    job = await detection.stub.RerunHistory(
        detection_pb2.RerunHistoryRequest(
            metadata={"camera": "north"},
            params=detection_pb2.DetectionParams(model=INT8, classes=["person"]),
            job_metadata={"trial": "int8"},
        ),
        metadata=detection.metadata(user),
        timeout=30,
    )
    assert [item.filename for item in job.items] == ["north-1.jpg", "north-2.jpg"]
    assert (job.model, dict(job.metadata), job.rerun_of) == (INT8, {"trial": "int8"}, "")
    done = await finished_job(detection, user, job.id)
    assert (done.status, done.failed) == (detection_pb2.JOB_STATUS_COMPLETED, 0)
    for model, objects in await _objects(detection, user, done):
        assert model == INT8 and objects
        assert {obj.class_name for obj in objects} == {"person"}

    async def refused(**filters) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await detection.stub.RerunHistory(
                detection_pb2.RerunHistoryRequest(**filters),
                metadata=detection.metadata(user),
                timeout=30,
            )
        return raised.value

    # The whole history: the three stored detections and the two of the job.
    too_many = await refused()
    assert too_many.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the filters keep 5 stored detections; a job takes at most 2" in too_many.details()
    nothing = await refused(metadata={"camera": "east"})
    assert nothing.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_history_rerun_holds_one_stored_image_in_memory_at_a_time(
    make_harness, detection, user, bus_jpg
):
    """Twelve stored images of 5 MiB each (60 MiB together; a history rerun may take a hundred
    of 20 MiB) are copied to scratch files one by one for the new job, not read into memory
    together before it is stored."""
    padding = 5 * 1024 * 1024
    for n in range(12):
        # bus.jpg with 5 MiB after its end: a large file of a small picture, each one distinct.
        large = bus_jpg + bytes([n + 1]) * padding
        await _stored(detection, user, [(f"large-{n}.jpg", large)], {"camera": "large"})
    idle = await make_harness(JOB_WORKERS=0)
    scratch = idle.service.settings.objects_dir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    scratch_before = set(scratch.iterdir())
    tracemalloc.start()
    try:
        job = await idle.stub.RerunHistory(
            detection_pb2.RerunHistoryRequest(metadata={"camera": "large"}),
            metadata=idle.metadata(user),
            timeout=60,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [item.filename for item in job.items] == [f"large-{n}.jpg" for n in range(12)]
    assert peak < 25 * 1024 * 1024, peak
    # Each image went into storage whole, and no scratch copy was left behind.
    async with idle.service.engine.connect() as conn:
        sizes = (
            await conn.scalars(
                sa.select(images.c.size_bytes)
                .join(job_items, job_items.c.image_id == images.c.id)
                .where(job_items.c.job_id == uuid.UUID(job.id))
                .order_by(job_items.c.position)
            )
        ).all()
    assert sizes == [len(bus_jpg) + padding] * 12
    assert set(scratch.iterdir()) <= scratch_before
