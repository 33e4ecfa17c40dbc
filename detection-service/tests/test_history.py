"""Stored detections: history listing and filters, one detection, its image; owner only."""

import uuid
from datetime import UTC, datetime, timedelta

import cv2
import grpc
import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from objectvision.v1 import detection_pb2

from .conftest import csv_export, finished_job


def _ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


@pytest.fixture
async def stored(detection, user, bus_jpg, zidane_jpg) -> list[detection_pb2.ImageResult]:
    """bus.jpg and zidane.jpg stored by one Detect call, then bus.jpg again by another."""
    first = await detection.stub.Detect(
        detection_pb2.DetectRequest(
            images=[
                detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg"),
                detection_pb2.ImageInput(data=zidane_jpg, filename="C:\\photos\\zidane.jpg"),
            ],
            store=True,
        ),
        metadata=detection.metadata(user),
        timeout=30,
    )
    second = await detection.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=bus_jpg, filename="bus-again.jpg")], store=True
        ),
        metadata=detection.metadata(user),
        timeout=30,
    )
    return [*first.results, *second.results]


async def _list(detection, user, **kwargs) -> detection_pb2.ListDetectionsResponse:
    return await detection.stub.ListDetections(
        detection_pb2.ListDetectionsRequest(**kwargs),
        metadata=detection.metadata(user),
        timeout=30,
    )


async def test_stored_detections_are_listed_newest_first(detection, user, stored):
    assert all(r.detection_id for r in stored)
    assert stored[1].filename == "zidane.jpg"
    counts = await detection.counts(user)
    assert (counts["detections"], counts["images"]) == (3, 3)
    page = await _list(detection, user)
    assert page.total == 3 and (page.limit, page.offset) == (20, 0)
    assert page.items[0].id == stored[2].detection_id
    assert {d.id for d in page.items} == {r.detection_id for r in stored}
    assert all(d.status == detection_pb2.DETECTION_STATUS_COMPLETED for d in page.items)
    newest = page.items[0]
    assert newest.result.objects == stored[2].objects
    assert (newest.result.width, newest.result.height) == (810, 1080)
    assert newest.result.timings.total_ms > 0


async def test_pages(detection, user, stored):
    first = await _list(detection, user, page={"limit": 2})
    rest = await _list(detection, user, page={"limit": 2, "offset": 2})
    assert [len(first.items), len(rest.items)] == [2, 1]
    assert first.total == rest.total == 3
    assert {d.id for d in [*first.items, *rest.items]} == {r.detection_id for r in stored}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _list(detection, user, page={"offset": -1})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_class_filter_by_name_or_id(detection, user, stored):
    ties = await _list(detection, user, class_filter="tie")
    assert [d.id for d in ties.items] == [stored[1].detection_id] and ties.total == 1
    buses = await _list(detection, user, class_filter="5")
    assert {d.id for d in buses.items} == {stored[0].detection_id, stored[2].detection_id}
    people = await _list(detection, user, class_filter="Person")
    assert people.total == 3
    assert (await _list(detection, user, class_filter="giraffe")).total == 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _list(detection, user, class_filter="unicorn")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_time_window(detection, user, stored):
    now = datetime.now(UTC)
    assert (await _list(detection, user, since=_ts(now - timedelta(minutes=5)))).total == 3
    assert (await _list(detection, user, since=_ts(now + timedelta(minutes=5)))).total == 0
    assert (await _list(detection, user, until=_ts(now - timedelta(minutes=5)))).total == 0
    newest = (await _list(detection, user)).items[0]
    only_older = await _list(detection, user, until=newest.created_at)
    assert newest.id not in {d.id for d in only_older.items}


async def test_get_detection(detection, user, stored):
    found = await detection.stub.GetDetection(
        detection_pb2.GetDetectionRequest(detection_id=stored[0].detection_id),
        metadata=detection.metadata(user),
        timeout=30,
    )
    assert found.id == stored[0].detection_id
    assert found.result.objects == stored[0].objects
    assert found.result.filename == "bus.jpg"
    assert found.job_id == ""


async def _image(detection, user, detection_id: str, *, annotated: bool) -> tuple[bytes, set]:
    chunks = [
        chunk
        async for chunk in detection.stub.GetAnnotatedImage(
            detection_pb2.GetAnnotatedImageRequest(detection_id=detection_id, annotated=annotated),
            metadata=detection.metadata(user),
            timeout=30,
        )
    ]
    assert all(len(c.data) <= 64 * 1024 for c in chunks)
    return b"".join(c.data for c in chunks), {c.content_type for c in chunks}


async def test_images_come_back_original_or_annotated(detection, user, stored, bus_jpg):
    original, types = await _image(detection, user, stored[0].detection_id, annotated=False)
    assert original == bus_jpg and types == {"image/jpeg"}
    annotated, types = await _image(detection, user, stored[0].detection_id, annotated=True)
    assert types == {"image/jpeg"} and annotated != bus_jpg
    picture = cv2.imdecode(np.frombuffer(annotated, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (1080, 810, 3)


async def test_another_users_detections_are_not_found(detection, user, stored):
    stranger = f"user-{uuid.uuid4()}"
    assert (await _list(detection, stranger)).total == 0
    calls = [
        detection.stub.GetDetection(
            detection_pb2.GetDetectionRequest(detection_id=stored[0].detection_id),
            metadata=detection.metadata(stranger),
            timeout=30,
        ),
        _image(detection, stranger, stored[0].detection_id, annotated=True),
        _image(detection, stranger, stored[0].detection_id, annotated=False),
        detection.stub.GetDetection(
            detection_pb2.GetDetectionRequest(detection_id=str(uuid.uuid4())),
            metadata=detection.metadata(user),
            timeout=30,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await detection.stub.GetDetection(
            detection_pb2.GetDetectionRequest(detection_id="../../etc/passwd"),
            metadata=detection.metadata(user),
            timeout=30,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def _detect(detection, user, data: bytes, **request) -> detection_pb2.ImageResult:
    answer = await detection.stub.Detect(
        detection_pb2.DetectRequest(images=[detection_pb2.ImageInput(data=data)], **request),
        metadata=detection.metadata(user),
        timeout=30,
    )
    return answer.results[0]


async def test_a_stored_detection_keeps_its_metadata_or_its_jobs_and_the_history_filters_by_it(
    detection, user, bus_jpg, zidane_jpg
):
    camera = {"camera": "north-gate"}
    at_night = await _detect(
        detection, user, bus_jpg, store=True, metadata={**camera, "shift": "night"}
    )
    plain = await _detect(detection, user, zidane_jpg, store=True)
    submitted = await detection.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(
            images=[detection_pb2.ImageInput(data=zidane_jpg, filename="zidane.jpg")],
            metadata={**camera, "order": "A-1042"},
        ),
        metadata=detection.metadata(user),
        timeout=30,
    )
    job = await finished_job(detection, user, submitted.id)
    from_job = job.items[0].detection_id

    async def ids(**filters) -> list[str]:
        return [d.id for d in (await _list(detection, user, **filters)).items]

    assert await ids(metadata=camera) == [from_job, at_night.detection_id]
    assert await ids(metadata={"shift": "night"}) == [at_night.detection_id]
    assert await ids(metadata={"order": "A-1042"}) == [from_job]
    assert await ids(metadata=camera, class_filter="bus") == [at_night.detection_id]
    assert await ids(metadata={"camera": "north"}) == []
    assert await ids(metadata={"camera": "north-gate", "shift": "day"}) == []
    assert (await _list(detection, user, metadata=camera)).total == 2
    assert (await _list(detection, f"user-{uuid.uuid4()}", metadata=camera)).total == 0

    # Every answer about a detection carries its metadata: a job's detection its job's.
    listed = {d.id: dict(d.metadata) for d in (await _list(detection, user)).items}
    assert listed == {
        at_night.detection_id: {**camera, "shift": "night"},
        plain.detection_id: {},
        from_job: {**camera, "order": "A-1042"},
    }
    found = await detection.stub.GetDetection(
        detection_pb2.GetDetectionRequest(detection_id=at_night.detection_id),
        metadata=detection.metadata(user),
        timeout=30,
    )
    assert dict(found.metadata) == {**camera, "shift": "night"}

    # The history's export filters as the history does.
    exported = await csv_export(detection, user, metadata={"shift": "night"})
    assert {row["detection_id"] for row in exported} == {at_night.detection_id}


async def test_metadata_needs_store_and_the_limits_and_a_refused_request_keeps_nothing(
    detection, user, bus_jpg
):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _detect(detection, user, bus_jpg, store=False, metadata={"camera": "north-gate"})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "store=true" in (caught.value.details() or "")
    beyond = [
        ({"camera gate": "north"}, "camera gate"),
        ({"camera": "   "}, "camera"),
        ({"camera": "a" * 513}, "camera"),
        ({f"key{n}": "v" for n in range(17)}, "17 keys"),
    ]
    for metadata, named in beyond:
        for call in (
            _detect(detection, user, bus_jpg, store=True, metadata=metadata),
            _list(detection, user, metadata=metadata),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, metadata
            assert named in (caught.value.details() or ""), caught.value.details()
    counts = await detection.counts(user)
    assert (counts["detections"], counts["images"]) == (0, 0)

    # A job's export is the job's results: the history's filters, metadata too, are refused.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await csv_export(
            detection, user, job_id=str(uuid.uuid4()), metadata={"camera": "north-gate"}
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_file_name_search_ignores_case_and_takes_wildcards_as_characters(
    detection, user, bus_jpg
):
    names = ["Gate-3_0001.jpg", "gate-30.jpg", "north_50%.jpg", "other.jpg"]
    answer = await detection.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=bus_jpg, filename=name) for name in names],
            store=True,
        ),
        metadata=detection.metadata(user),
        timeout=30,
    )
    ids = {result.filename: result.detection_id for result in answer.results}

    async def found(text: str, **filters) -> set[str]:
        listed = await _list(detection, user, filename_contains=text, **filters)
        return {item.result.filename for item in listed.items}

    assert await found("GATE-3") == {"Gate-3_0001.jpg", "gate-30.jpg"}
    assert await found("3_") == {"Gate-3_0001.jpg"}
    assert await found("50%") == {"north_50%.jpg"}
    assert await found("%") == {"north_50%.jpg"}
    assert await found("  other  ") == {"other.jpg"}
    assert await found("gate", class_filter="bus") == {"Gate-3_0001.jpg", "gate-30.jpg"}
    assert await found("gate", class_filter="giraffe") == set()
    assert await found("") == set(names)
    exported = await csv_export(detection, user, filename_contains="north")
    assert {row["detection_id"] for row in exported} == {ids["north_50%.jpg"]}

    for beyond, named in (("x" * 256, "255"), ("a\x00b", "control"), ("a\nb", "control")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _list(detection, user, filename_contains=beyond)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert named in (caught.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await csv_export(detection, user, job_id=str(uuid.uuid4()), filename_contains="gate")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unsure_detections_are_those_with_an_object_below_the_score_of_the_class_asked(
    detection, user, bus_jpg, zidane_jpg
):
    """`confidence_below`: the detections with an object scoring below it, with a class the
    same object is of that class; listed, counted, exported alike, checked by the service."""
    stored = [
        await _detect(detection, user, image, store=True, params={"confidence": 0.2})
        for image in (bus_jpg, zidane_jpg)
    ]

    def expected(below: float, class_name: str | None = None) -> set[str]:
        return {
            result.detection_id
            for result in stored
            if any(
                obj.confidence < below and (class_name is None or obj.class_name == class_name)
                for obj in result.objects
            )
        }

    scores = sorted(obj.confidence for result in stored for obj in result.objects)
    # Thresholds well clear of any score: below the lowest, in the widest gap, above the
    # highest (a float32 score and a 6-decimal threshold never meet at the edge).
    gap = max(range(len(scores) - 1), key=lambda i: scores[i + 1] - scores[i])
    middle = (scores[gap] + scores[gap + 1]) / 2
    cuts = [round(value, 4) for value in (scores[0] - 2e-3, middle, min(scores[-1] + 2e-3, 1))]
    assert expected(cuts[0]) == set() and len(expected(cuts[-1])) == 2
    assert len(expected(cuts[-1], "bus")) == 1, "only the bus picture holds a bus"
    for below in cuts:
        for class_name in (None, "person", "bus", "tie"):
            filters = {"confidence_below": below}
            if class_name:
                filters["class_filter"] = class_name
            listed = await _list(detection, user, page={"limit": 100}, **filters)
            wanted = expected(below, class_name)
            assert {item.id for item in listed.items} == wanted, (below, class_name)
            counted = await detection.stub.SummarizeDetections(
                detection_pb2.SummarizeDetectionsRequest(**filters),
                metadata=detection.metadata(user),
                timeout=30,
            )
            assert counted.detections == len(wanted)
            exported = await csv_export(detection, user, **filters)
            assert {row["detection_id"] for row in exported} == wanted

    for refused in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _list(detection, user, confidence_below=refused)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "confidence_below must be above 0 and at most 1" in (caught.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await csv_export(detection, user, job_id=str(uuid.uuid4()), confidence_below=0.5)
    assert caught.value.details() == "a job's export takes no history filters"


async def test_a_summary_counts_what_the_history_filters_keep(detection, user, bus_jpg, zidane_jpg):
    """The detections the filters keep, and all their objects by class: the same numbers as
    adding up the listed detections."""
    await _detect(detection, user, bus_jpg, store=True, metadata={"camera": "north-gate"})
    await _detect(detection, user, zidane_jpg, store=True, metadata={"camera": "north-gate"})
    await _detect(detection, user, bus_jpg, store=True, metadata={"camera": "south-gate"})

    async def summary(**filters) -> detection_pb2.DetectionSummary:
        return await detection.stub.SummarizeDetections(
            detection_pb2.SummarizeDetectionsRequest(**filters),
            metadata=detection.metadata(user),
            timeout=30,
        )

    async def added_up(**filters) -> tuple[int, int, dict[str, int]]:
        listed = (await _list(detection, user, page={"limit": 100}, **filters)).items
        counts: dict[str, int] = {}
        for item in listed:
            for obj in item.result.objects:
                counts[obj.class_name] = counts.get(obj.class_name, 0) + 1
        return len(listed), sum(counts.values()), counts

    for filters in (
        {},
        {"metadata": {"camera": "north-gate"}},
        {"class_filter": "tie"},
        {"metadata": {"camera": "south-gate"}, "class_filter": "bus"},
        {"metadata": {"camera": "east-gate"}},
    ):
        counted = await summary(**filters)
        assert (counted.detections, counted.objects, dict(counted.class_counts)) == (
            await added_up(**filters)
        ), filters
    everything = await summary()
    assert everything.detections == 3 and everything.class_counts["bus"] == 2
    assert (await summary(metadata={"camera": "east-gate"})).detections == 0
    stranger = await detection.stub.SummarizeDetections(
        detection_pb2.SummarizeDetectionsRequest(),
        metadata=detection.metadata(f"user-{uuid.uuid4()}"),
        timeout=30,
    )
    assert (stranger.detections, stranger.objects) == (0, 0)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await summary(class_filter="unicorn")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
