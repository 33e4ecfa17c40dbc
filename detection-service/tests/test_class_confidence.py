"""Per-class minimum scores (ADR 0050): a request gives chosen classes a confidence of their
own, in place of its `confidence` for their objects, raised (only sure people) or lowered
(faint cars kept among sure everything else). Detect, a batch job and the result cache read
them alike. Against real PostgreSQL, Redis and Triton serving the model.
"""

import asyncio
import time
import uuid

import grpc
import pytest

from objectvision.v1 import detection_pb2


def _image(data: bytes) -> detection_pb2.ImageInput:
    return detection_pb2.ImageInput(data=data, filename="bus.jpg")


def _seen(objects) -> list[tuple[str, float]]:
    return sorted((o.class_name, round(o.confidence, 4)) for o in objects)


async def _detect(detection, user, data: bytes, **params) -> detection_pb2.ImageResult:
    reply = await detection.stub.Detect(
        detection_pb2.DetectRequest(
            images=[_image(data)], params=detection_pb2.DetectionParams(**params)
        ),
        metadata=detection.metadata(user),
        timeout=30,
    )
    return reply.results[0]


async def test_a_class_can_ask_for_more_or_less_than_the_requests_confidence(
    detection, user, bus_jpg
):
    faint = await _detect(detection, user, bus_jpg, confidence=0.05)
    scores = sorted(o.confidence for o in faint.objects if o.class_name == "person")
    # A threshold between two people's scores: some are kept and some are not.
    strict = (scores[-2] + scores[-3]) / 2

    sure_people = await _detect(
        detection, user, bus_jpg, confidence=0.25, class_confidence={"person": strict}
    )
    faint_people = await _detect(
        detection, user, bus_jpg, confidence=0.5, class_confidence={"0": 0.05}
    )

    def expected(default: float, person: float) -> list[tuple[str, float]]:
        return _seen(
            o
            for o in faint.objects
            if o.confidence >= (person if o.class_name == "person" else default)
        )

    assert _seen(sure_people.objects) == expected(0.25, strict)
    assert sum(o.class_name == "person" for o in sure_people.objects) == 2
    assert "bus" in {o.class_name for o in sure_people.objects}
    assert _seen(faint_people.objects) == expected(0.5, 0.05)
    assert sum(o.class_name == "person" for o in faint_people.objects) > 4


async def test_the_result_cache_tells_requests_with_other_class_confidences_apart(
    make_harness, user, bus_jpg
):
    cached = await make_harness(RESULT_CACHE_TTL_SECONDS=600)
    # A JPEG comment of fresh bytes: no other run's or test's answers are cached for it.
    note = f"class confidence {uuid.uuid4()}".encode()
    unique = bus_jpg[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + bus_jpg[2:]

    first = await _detect(cached, user, unique, class_confidence={"person": 0.9})
    again = await _detect(cached, user, unique, class_confidence={"person": 0.9})
    other = await _detect(cached, user, unique, class_confidence={"person": 0.3})

    assert not first.cached
    assert again.cached and _seen(again.objects) == _seen(first.objects)
    assert not other.cached
    assert len(other.objects) > len(first.objects)


async def test_a_batch_job_keeps_its_class_confidences_until_its_worker_runs(
    detection, user, bus_jpg
):
    params = detection_pb2.DetectionParams(confidence=0.25, class_confidence={"person": 0.99})
    job = await detection.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(images=[_image(bus_jpg)], params=params),
        metadata=detection.metadata(user),
        timeout=30,
    )
    deadline = time.monotonic() + 60
    while job.status not in (detection_pb2.JOB_STATUS_COMPLETED, detection_pb2.JOB_STATUS_FAILED):
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)
        job = await detection.stub.GetJob(
            detection_pb2.GetJobRequest(job_id=job.id),
            metadata=detection.metadata(user),
            timeout=30,
        )

    (item,) = job.items
    stored = await detection.stub.GetDetection(
        detection_pb2.GetDetectionRequest(detection_id=item.detection_id),
        metadata=detection.metadata(user),
        timeout=30,
    )
    assert {o.class_name for o in stored.result.objects} == {"bus"}


@pytest.mark.parametrize(
    "class_confidence",
    [{"person": 0.0}, {"person": 1.5}, {"person": float("nan")}, {"unicorn": 0.5}],
)
async def test_a_class_confidence_out_of_range_or_of_an_unknown_class_is_refused(
    detection, user, bus_jpg, class_confidence
):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _detect(detection, user, bus_jpg, class_confidence=class_confidence)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
