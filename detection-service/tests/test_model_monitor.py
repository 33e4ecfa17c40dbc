"""What each model sees, in aggregate, for operators (ADR 0057): every fresh detection adds its
objects by class, their confidences and its object count to the service's metrics, through a
real detection service and Triton; an answer from the result cache, which the model did not
see again, adds nothing.
"""

import uuid
from collections import Counter

import cv2
import numpy as np
import pytest
from prometheus_client import Metric

from detection_service.metrics import ModelMonitor
from objectvision.v1 import detection_pb2

MODEL = "yolov8n"


def _samples(metric: Metric, name: str, **labels: str) -> dict[str, float]:
    """The samples of `name` with these label values, by their `le` (or "" without one)."""
    return {
        sample.labels.get("le", ""): sample.value
        for sample in metric.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    }


def _read(monitor: ModelMonitor) -> dict[str, dict[str, float]]:
    (objects,) = monitor.objects.collect()
    (confidence,) = monitor.confidence.collect()
    (per_image,) = monitor.objects_per_image.collect()
    by_class = {
        sample.labels["class_name"]: sample.value
        for sample in objects.samples
        if sample.name == "detection_objects_total" and sample.labels["model"] == MODEL
    }
    return {
        "objects": by_class,
        "confidence_count": _samples(confidence, "detection_object_confidence_count", model=MODEL),
        "confidence_sum": _samples(confidence, "detection_object_confidence_sum", model=MODEL),
        "confidence_buckets": _samples(
            confidence, "detection_object_confidence_bucket", model=MODEL
        ),
        "per_image": _samples(per_image, "detection_objects_per_image_bucket", model=MODEL),
    }


def _added(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {
        key: after[key] - before.get(key, 0.0) for key in after if after[key] != before.get(key)
    }


def _unique(jpeg: bytes) -> bytes:
    """The same picture with a JPEG comment of its own: bytes the result cache never saw."""
    note = f"monitor {uuid.uuid4()}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + jpeg[2:]


async def test_a_fresh_detection_is_counted_by_class_confidence_and_objects_per_image(
    make_harness, user, bus_jpg
):
    service = await make_harness(RESULT_CACHE_TTL_SECONDS=600)
    monitor = service.service.metrics.model_monitor
    image = _unique(bus_jpg)
    request = detection_pb2.DetectRequest(
        images=[detection_pb2.ImageInput(data=image, filename="bus.jpg")],
        params=detection_pb2.DetectionParams(model=MODEL),
    )

    before = _read(monitor)
    reply = await service.stub.Detect(request, metadata=service.metadata(user), timeout=60)
    after = _read(monitor)

    (result,) = reply.results
    found = Counter(obj.class_name for obj in result.objects)
    assert found["bus"] == 1 and found["person"] >= 3, found
    assert _added(before["objects"], after["objects"]) == dict(found)
    assert _added(before["confidence_count"], after["confidence_count"]) == {
        "": len(result.objects)
    }
    assert _added(before["confidence_sum"], after["confidence_sum"])[""] == pytest.approx(
        sum(obj.confidence for obj in result.objects), abs=1e-6
    )
    # Cumulative buckets: every object is at most 1.0, none of bus.jpg's at most 0.1.
    buckets = _added(before["confidence_buckets"], after["confidence_buckets"])
    assert buckets["1.0"] == len(result.objects) and buckets.get("0.1", 0) == 0
    # One image of n objects: counted in every bucket from n up, not in "0".
    per_image = _added(before["per_image"], after["per_image"])
    assert per_image.get("0.0", 0) == 0 and per_image["+Inf"] == 1

    cached = await service.stub.Detect(request, metadata=service.metadata(user), timeout=60)
    assert cached.results[0].cached
    assert _read(monitor) == after, "the model did not see a cached answer again"


async def test_an_image_with_nothing_in_it_is_counted_in_the_zero_bucket(detection, user):
    plain = np.full((240, 320, 3), 114, np.uint8)
    plain[0, 0] = np.frombuffer(uuid.uuid4().bytes[:3], np.uint8)  # bytes of its own
    grey = cv2.imencode(".png", plain)[1].tobytes()
    monitor = detection.service.metrics.model_monitor
    before = _read(monitor)
    reply = await detection.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=grey, filename="grey.png")],
            params=detection_pb2.DetectionParams(model=MODEL),
        ),
        metadata=detection.metadata(user),
        timeout=60,
    )
    assert list(reply.results[0].objects) == []
    after = _read(monitor)
    assert _added(before["per_image"], after["per_image"])["0.0"] == 1
    assert after["objects"] == before["objects"]
