"""A stored Detect is safe to retry (ADR 0047): a request with an idempotency key the account
has used is answered with what the first one stored, and nothing is detected, stored or
counted again. Against real PostgreSQL, Redis, Triton and the service's storage directory.
"""

import asyncio
import uuid

import grpc
import pytest

from objectvision.v1 import detection_pb2


async def detect(harness, user, *images: bytes, key: str = "", store: bool = True):
    return await harness.stub.Detect(
        detection_pb2.DetectRequest(
            images=[
                detection_pb2.ImageInput(data=data, filename=f"{n}.jpg")
                for n, data in enumerate(images)
            ],
            store=store,
            idempotency_key=key,
        ),
        metadata=harness.metadata(user),
        timeout=60,
    )


async def images_counted(harness, user) -> int:
    usage = await harness.stub.GetUsage(
        detection_pb2.GetUsageRequest(), metadata=harness.metadata(user), timeout=30
    )
    return usage.month_images


async def refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_a_retry_is_answered_with_what_the_first_request_stored(
    detection, user, bus_jpg, zidane_jpg
):
    key = f"upload-{uuid.uuid4()}"
    first = await detect(detection, user, bus_jpg, zidane_jpg, key=key)
    before = await detection.counts(user)
    counted = await images_counted(detection, user)

    again = await detect(detection, user, bus_jpg, zidane_jpg, key=key)

    assert not first.replayed and again.replayed
    assert [r.detection_id for r in again.results] == [r.detection_id for r in first.results]
    for replayed, original in zip(again.results, first.results, strict=True):
        assert (replayed.filename, replayed.width, replayed.height) == (
            original.filename,
            original.width,
            original.height,
        )
        assert [(o.class_name, round(o.confidence, 4)) for o in replayed.objects] == [
            (o.class_name, round(o.confidence, 4)) for o in original.objects
        ]
        assert replayed.model == original.model
    # Nothing detected, stored or counted a second time.
    assert await detection.counts(user) == before
    assert await images_counted(detection, user) == counted


async def test_a_key_belongs_to_the_account_that_used_it(detection, user, bus_jpg):
    key = f"shared-{uuid.uuid4()}"
    mine = await detect(detection, user, bus_jpg, key=key)
    theirs = await detect(detection, f"user-{uuid.uuid4()}", bus_jpg, key=key)

    assert not theirs.replayed
    assert theirs.results[0].detection_id != mine.results[0].detection_id


async def test_a_key_is_refused_where_nothing_would_answer_a_retry(
    detection, user, bus_jpg, zidane_jpg
):
    unstored = await refused(detect(detection, user, bus_jpg, key="k-1", store=False))
    assert unstored.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "store=true" in unstored.details()

    too_long = await refused(detect(detection, user, bus_jpg, key="k" * 201))
    assert too_long.code() == grpc.StatusCode.INVALID_ARGUMENT

    key = f"one-image-{uuid.uuid4()}"
    await detect(detection, user, bus_jpg, key=key)
    other_size = await refused(detect(detection, user, bus_jpg, zidane_jpg, key=key))
    assert other_size.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "stored 1 image(s), and this one sends 2" in other_size.details()


async def test_requests_with_one_key_at_the_same_moment_store_once(detection, user, bus_jpg):
    key = f"racing-{uuid.uuid4()}"
    before = await detection.counts(user)

    answers = await asyncio.gather(*(detect(detection, user, bus_jpg, key=key) for _ in range(3)))

    assert len({answer.results[0].detection_id for answer in answers}) == 1
    assert sum(not answer.replayed for answer in answers) == 1
    after = await detection.counts(user)
    assert (after["detections"], after["images"]) == (
        before["detections"] + 1,
        before["images"] + 1,
    )
    # The losers' uploads were discarded, not left for the orphan sweep.
    assert after["files"] == before["files"] + 1


async def test_a_key_whose_detections_were_deleted_stores_afresh(detection, user, bus_jpg):
    key = f"deleted-{uuid.uuid4()}"
    first = await detect(detection, user, bus_jpg, key=key)
    await detection.stub.DeleteDetection(
        detection_pb2.DeleteDetectionRequest(detection_id=first.results[0].detection_id),
        metadata=detection.metadata(user),
        timeout=30,
    )

    again = await detect(detection, user, bus_jpg, key=key)

    assert not again.replayed
    assert again.results[0].detection_id != first.results[0].detection_id
