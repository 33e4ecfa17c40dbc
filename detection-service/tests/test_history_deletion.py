"""Users delete the part of their history a filter chooses (DeleteDetections): every image one
camera stored, everything before a date, the whole history. Against real PostgreSQL, Redis,
Triton and the service's storage directory; each detection goes as DeleteDetection takes one
(test_deletion.py), rows first and files after each chunk's commit.
"""

import uuid

import grpc
import pytest
import sqlalchemy as sa

from detection_service.history import service as history_service
from detection_service.history.models import results
from detection_service.images.models import images
from detection_service.images.storage import LocalDirectoryStorage
from detection_service.jobs import service as jobs_service
from objectvision.v1 import detection_pb2
from objectvision_common.db import session_factory

from .conftest import csv_export


@pytest.fixture
async def queued(make_harness):
    """A service whose jobs wait: no worker consumes its job stream."""
    return await make_harness(
        JOB_WORKERS=0,
        JOB_STREAM=f"detection:jobs:queued:{uuid.uuid4().hex[:8]}",
        JOB_REQUEUE_AFTER_SECONDS=3600,
    )


async def store(harness, user, *sent: tuple[str, bytes], **metadata: str) -> list[str]:
    """Detect with store=True (and the metadata given); the detection ids, in order."""
    reply = await harness.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=data, filename=name) for name, data in sent],
            store=True,
            metadata=metadata,
        ),
        metadata=harness.metadata(user),
        timeout=30,
    )
    return [result.detection_id for result in reply.results]


async def delete(harness, user, **request) -> detection_pb2.DeleteDetectionsResponse:
    return await harness.stub.DeleteDetections(
        detection_pb2.DeleteDetectionsRequest(**request),
        metadata=harness.metadata(user),
        timeout=60,
    )


async def history_ids(harness, user) -> set[str]:
    listed = await harness.stub.ListDetections(
        detection_pb2.ListDetectionsRequest(), metadata=harness.metadata(user), timeout=30
    )
    return {item.id for item in listed.items}


async def image_keys(harness, user) -> set[str]:
    async with harness.service.engine.connect() as conn:
        return set(
            await conn.scalars(sa.select(images.c.storage_key).where(images.c.user_id == user))
        )


async def objects_of(harness, detection_ids: list[str]) -> int:
    async with harness.service.engine.connect() as conn:
        return await conn.scalar(
            sa.select(sa.func.count())
            .select_from(results)
            .where(results.c.detection_id.in_([uuid.UUID(d) for d in detection_ids]))
        )


def stored(harness, key: str) -> bool:
    return (harness.settings.objects_dir / key[:2] / key).is_file()


async def test_the_filters_choose_what_goes_and_everything_else_stays(
    detection, user, bus_jpg, zidane_jpg
):
    north = await store(
        detection, user, ("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg), camera="north"
    )
    (south,) = await store(detection, user, ("bus.jpg", bus_jpg), camera="south")
    stranger = f"user-{uuid.uuid4()}"
    (theirs,) = await store(detection, stranger, ("bus.jpg", bus_jpg), camera="north")
    keys = await image_keys(detection, user)
    assert await objects_of(detection, north) > 0

    deletion = await delete(detection, user, metadata={"camera": "north"})

    assert (deletion.deleted, deletion.kept_in_unfinished_jobs, deletion.more) == (2, 0, False)
    assert await history_ids(detection, user) == {south}
    assert await objects_of(detection, north) == 0
    (kept_key,) = await image_keys(detection, user)
    assert not any(stored(detection, key) for key in keys - {kept_key})
    assert stored(detection, kept_key)
    assert {row["detection_id"] for row in await csv_export(detection, user)} == {south}
    # Another account's detection with the same metadata is not the caller's to delete.
    assert await history_ids(detection, stranger) == {theirs}

    again = await delete(detection, user, metadata={"camera": "north"})
    assert (again.deleted, again.more) == (0, False)


async def test_a_class_or_a_file_name_chooses_too(detection, user, bus_jpg, zidane_jpg):
    bus, zidane = await store(detection, user, ("bus.jpg", bus_jpg), ("zidane.jpg", zidane_jpg))

    by_class = await delete(detection, user, class_filter="bus")
    assert by_class.deleted == 1 and await history_ids(detection, user) == {zidane}
    by_name = await delete(detection, user, filename_contains="ZIDANE")
    assert by_name.deleted == 1 and await history_ids(detection, user) == set()
    assert bus not in await history_ids(detection, user)


async def test_without_a_filter_the_whole_history_must_be_asked_for(detection, user, bus_jpg):
    stored_ids = await store(detection, user, ("a.jpg", bus_jpg), ("b.jpg", bus_jpg))

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await delete(detection, user)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "whole history" in refused.value.details()
    assert await history_ids(detection, user) == set(stored_ids)

    everything = await delete(detection, user, everything=True)
    assert (everything.deleted, everything.more) == (2, False)
    assert (
        await history_ids(detection, user) == set() and await image_keys(detection, user) == set()
    )

    with pytest.raises(grpc.aio.AioRpcError) as bad_class:
        await delete(detection, user, class_filter="unicorn")
    assert bad_class.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_detections_of_unfinished_jobs_stay_and_are_counted(
    queued, user, bus_jpg, zidane_jpg
):
    (alone,) = await store(queued, user, ("alone.jpg", bus_jpg))
    job = await queued.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(
            images=[
                detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg"),
                detection_pb2.ImageInput(data=zidane_jpg, filename="zidane.jpg"),
            ]
        ),
        metadata=queued.metadata(user),
        timeout=30,
    )
    async with session_factory(queued.service.engine).begin() as session:
        started = await jobs_service.start_job(session=session, job_id=uuid.UUID(job.id))
    assert started is not None
    options, items = started
    await queued.service.processor.process(options, items[:1])

    while_running = await delete(queued, user, everything=True)

    assert (while_running.deleted, while_running.kept_in_unfinished_jobs) == (1, 1)
    assert alone not in await history_ids(queued, user)
    assert len(await history_ids(queued, user)) == 1  # the running job's first image

    await queued.service.processor.process(options, items[1:])
    finished = await delete(queued, user, everything=True)
    assert (finished.deleted, finished.kept_in_unfinished_jobs) == (2, 0)
    after = await queued.stub.GetJob(
        detection_pb2.GetJobRequest(job_id=job.id), metadata=queued.metadata(user), timeout=30
    )
    # The job keeps its counts of what it processed; its items left with their detections.
    assert (after.status, after.total, after.processed, list(after.items)) == (
        detection_pb2.JOB_STATUS_COMPLETED,
        2,
        2,
        [],
    )
    assert await image_keys(queued, user) == set()


async def test_a_large_deletion_goes_in_chunks_and_says_when_more_remain(detection, user, bus_jpg):
    await store(detection, user, *[(f"{n}.jpg", bus_jpg) for n in range(5)])
    sessions = session_factory(detection.service.engine)
    filters = history_service.HistoryFilter(filename_contains=".jpg")

    async def delete_some() -> history_service.HistoryDeletion:
        return await history_service.delete_history(
            sessions=sessions,
            storage=LocalDirectoryStorage(detection.settings.objects_dir),
            user_id=user,
            filters=filters,
            chunk_size=2,
            most=3,
        )

    first = await delete_some()
    assert (first.deleted, first.more) == (3, True)
    assert len(await history_ids(detection, user)) == 2
    second = await delete_some()
    assert (second.deleted, second.more) == (2, False)
    assert await history_ids(detection, user) == set()
