"""Redaction (ADR 0049): a stored image shown with the objects of chosen classes pixelated, so
that people (or any class) in it cannot be recognised, the rest of the picture untouched.

The drawing itself first, on a synthetic picture; then through the service's annotation
sandbox on bus.jpg, with its four people found by the real model in Triton.
"""

import uuid
from pathlib import Path

import av
import cv2
import grpc
import numpy as np
import pytest

from detection_service.pipeline.annotate import REDACTION_BLOCKS, Rendering, pixelate, render
from detection_service.pipeline.types import DetectedObject
from objectvision.v1 import detection_pb2

from .conftest import finished_job, submit_video_job

NOISE_SEED = 49


def _noise(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(NOISE_SEED).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _object(name: str, x1: float, y1: float, x2: float, y2: float) -> DetectedObject:
    return DetectedObject(0, name, 0.9, x1, y1, x2, y2)


def _detail(image: np.ndarray) -> float:
    """How much fine detail a region holds: the variance of its Laplacian."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def test_a_redacted_object_becomes_coarse_blocks_and_nothing_else_changes():
    image = _noise(200, 300)
    person = _object("person", 40.5, 20.2, 120.7, 180.9)

    shown = render(
        image,
        [person, _object("bus", 150, 30, 290, 190)],
        Rendering(boxes=False, redact=frozenset({"person"})),
    )

    inside = shown[20:181, 40:121]
    # The box (81 x 161 px) becomes blocks of its shorter side over REDACTION_BLOCKS (10 px):
    # 8 x 16 of them, so at most that many colours where the noise had thousands.
    blocks = (81 // (81 // REDACTION_BLOCKS)) * (161 // (81 // REDACTION_BLOCKS))
    assert len(np.unique(inside.reshape(-1, 3), axis=0)) <= blocks == 8 * 16
    assert _detail(inside) < _detail(image[20:181, 40:121]) / 20
    outside = np.ones(image.shape[:2], dtype=bool)
    outside[20:181, 40:121] = False
    # The bus was not asked to be redacted, and no box was drawn: every other pixel is as it was.
    assert np.array_equal(shown[outside], image[outside])


def test_redaction_matches_class_names_and_leaves_boxes_to_the_rendering():
    image = _noise(120, 120)
    objects = [_object("Person", 10, 10, 60, 110)]

    boxed = render(image, objects, Rendering(boxes=True, redact=frozenset({"person"})))
    plain = render(image, objects, Rendering(boxes=False))

    assert np.array_equal(plain, image)
    assert _detail(boxed[30:100, 20:50]) < _detail(image[30:100, 20:50]) / 20
    # A box and label are drawn around the redacted object too.
    assert not np.array_equal(
        boxed[10:12, 10:60],
        render(image, objects, Rendering(boxes=False, redact=frozenset({"person"})))[10:12, 10:60],
    )


async def _stored_bus(detection, user, bus_jpg) -> detection_pb2.Detection:
    reply = await detection.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg")], store=True
        ),
        metadata=detection.metadata(user),
        timeout=30,
    )
    return await detection.stub.GetDetection(
        detection_pb2.GetDetectionRequest(detection_id=reply.results[0].detection_id),
        metadata=detection.metadata(user),
        timeout=30,
    )


async def _image(detection, user, detection_id: str, **request) -> tuple[str, bytes]:
    chunks = detection.stub.GetAnnotatedImage(
        detection_pb2.GetAnnotatedImageRequest(detection_id=detection_id, **request),
        metadata=detection.metadata(user),
        timeout=60,
    )
    received = [chunk async for chunk in chunks]
    return received[0].content_type, b"".join(chunk.data for chunk in received)


def _decoded(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def finer_than_blocks(image: np.ndarray, box: detection_pb2.BoundingBox) -> float:
    """How far the box's region is from its own pixelation (mean difference per channel):
    about 0 for a region already pixelated (but for JPEG's noise), large for a photograph."""
    obj = _object("person", box.x1, box.y1, box.x2, box.y2)
    blocked = image.copy()
    pixelate(blocked, obj)
    region = (slice(int(box.y1), int(np.ceil(box.y2))), slice(int(box.x1), int(np.ceil(box.x2))))
    return float(np.abs(image[region].astype(int) - blocked[region].astype(int)).mean())


async def test_the_people_of_a_stored_image_are_pixelated_on_request(detection, user, bus_jpg):
    stored = await _stored_bus(detection, user, bus_jpg)
    people = [o.box for o in stored.result.objects if o.class_name == "person"]
    original = _decoded(bus_jpg)

    content_type, data = await _image(
        detection, user, stored.id, annotated=False, redact=["person"]
    )
    redacted = _decoded(data)

    assert content_type == "image/jpeg" and redacted.shape == original.shape
    assert len(people) == 4
    for box in people:
        # A photograph is far from its pixelation (25 to 36 for these four); the redacted image
        # is near it (2 to 4: JPEG's noise, and one person's blocks over another's box).
        assert finer_than_blocks(redacted, box) < finer_than_blocks(original, box) / 5
    # Away from the people, the scene is as it was, but for JPEG's re-encoding.
    clear = np.ones(original.shape[:2], dtype=bool)
    for box in people:
        clear[int(box.y1) : int(np.ceil(box.y2)), int(box.x1) : int(np.ceil(box.x2))] = False
    assert clear.mean() > 0.5
    assert np.abs(redacted[clear].astype(int) - original[clear].astype(int)).mean() < 3

    _, by_id = await _image(detection, user, stored.id, annotated=False, redact=["0"])
    assert (
        finer_than_blocks(_decoded(by_id), people[0]) < finer_than_blocks(original, people[0]) / 5
    )
    _, as_uploaded = await _image(detection, user, stored.id, annotated=False)
    assert as_uploaded == bus_jpg


async def test_an_unknown_class_to_redact_is_refused(detection, user, bus_jpg):
    stored = await _stored_bus(detection, user, bus_jpg)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _image(detection, user, stored.id, annotated=True, redact=["unicorn"])

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown class 'unicorn'" in refused.value.details()


def _first_frame(data: bytes, tmp_path: Path) -> np.ndarray:
    path = tmp_path / f"{uuid.uuid4().hex}.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        frame = next(container.decode(container.streams.video[0]))
        return frame.to_ndarray(format="bgr24")


async def _annotated_video(detection, user, job_id: str) -> bytes:
    call = detection.stub.GetAnnotatedVideo(
        detection_pb2.GetAnnotatedVideoRequest(job_id=job_id),
        metadata=detection.metadata(user),
        timeout=60,
    )
    return b"".join([chunk.data async for chunk in call])


async def test_a_video_job_can_pixelate_the_people_in_its_annotated_video(
    detection, user, panned_video, tmp_path
):
    plain = await submit_video_job(detection, user, panned_video, track=False)
    redacted = await submit_video_job(detection, user, panned_video, track=False, redact=["person"])
    for job in (plain, redacted):
        assert (await finished_job(detection, user, job.id)).status == (
            detection_pb2.JOB_STATUS_COMPLETED
        )
    frames = await detection.stub.ListVideoFrames(
        detection_pb2.ListVideoFramesRequest(job_id=redacted.id),
        metadata=detection.metadata(user),
        timeout=30,
    )
    people = [o.box for o in frames.frames[0].objects if o.class_name == "person"]

    as_submitted = await detection.stub.GetJob(
        detection_pb2.GetJobRequest(job_id=redacted.id),
        metadata=detection.metadata(user),
        timeout=30,
    )
    boxed = _first_frame(await _annotated_video(detection, user, plain.id), tmp_path)
    pixelated = _first_frame(await _annotated_video(detection, user, redacted.id), tmp_path)

    assert list(as_submitted.video.redact) == ["person"] and not plain.video.redact
    assert len(people) >= 3
    inside = np.zeros(boxed.shape[:2], dtype=bool)
    for box in people:
        inside[int(box.y1) : int(np.ceil(box.y2)), int(box.x1) : int(np.ceil(box.x2))] = True
    difference = np.abs(pixelated.astype(int) - boxed.astype(int)).mean(axis=2)
    # The two annotated videos differ where the people are (25 per channel here), and hardly
    # anywhere else (0.4: the encoder's noise).
    assert difference[inside].mean() > 10 and difference[~inside].mean() < 2
    # Small people (26 px wide) under boxes and labels: less fine detail in all, not none.
    assert sum(finer_than_blocks(pixelated, box) for box in people) < 0.75 * sum(
        finer_than_blocks(boxed, box) for box in people
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await submit_video_job(detection, user, panned_video, track=False, redact=["unicorn"])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
