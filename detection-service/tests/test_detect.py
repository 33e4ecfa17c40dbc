"""Detect and DetectStream against the real model served by Triton."""

import asyncio

import grpc
import numpy as np
import pytest

from objectvision.v1 import detection_pb2


def _image(data: bytes, filename: str = "image.jpg") -> detection_pb2.ImageInput:
    return detection_pb2.ImageInput(data=data, filename=filename, content_type="image/jpeg")


async def test_bus_finds_four_people_and_a_bus_in_original_pixels(detection, user, bus_jpg):
    reply = await detection.stub.Detect(
        detection_pb2.DetectRequest(images=[_image(bus_jpg, "bus.jpg")]),
        metadata=detection.metadata(user),
        timeout=30,
    )
    (result,) = reply.results
    assert (result.width, result.height) == (810, 1080)
    names = [o.class_name for o in result.objects]
    assert names.count("person") >= 4
    buses = [o for o in result.objects if o.class_name == "bus"]
    assert len(buses) == 1
    assert buses[0].class_id == 5
    assert buses[0].confidence == pytest.approx(0.83, abs=0.05)
    for obj in result.objects:
        assert obj.confidence >= 0.25
        assert 0 <= obj.box.x1 < obj.box.x2 <= 810
        assert 0 <= obj.box.y1 < obj.box.y2 <= 1080
    # The bus spans most of the width of the photo.
    assert buses[0].box.x2 - buses[0].box.x1 > 600
    assert result.detection_id == ""
    assert result.timings.total_ms > 0
    assert result.filename == "bus.jpg"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _match(result: detection_pb2.ImageResult, labels: list) -> tuple[int, int, int]:
    """(ground-truth boxes, of them found at IoU >= 0.5 with the right class, detections)."""
    scale = np.array([result.width, result.height] * 2)
    truth = [
        (cls, np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * scale)
        for cls, cx, cy, w, h in labels
    ]
    matched: set[int] = set()
    for obj in sorted(result.objects, key=lambda o: -o.confidence):
        box = np.array([obj.box.x1, obj.box.y1, obj.box.x2, obj.box.y2])
        candidates = [
            (_iou(box, gt), i)
            for i, (cls, gt) in enumerate(truth)
            if cls == obj.class_id and i not in matched
        ]
        best = max(candidates, default=(0.0, -1))
        if best[0] >= 0.5:
            matched.add(best[1])
    return len(truth), len(matched), len(result.objects)


# Measured with this model (shared/models/yolov8n.onnx, int8-round-tripped YOLOv8n) at the
# service defaults (conf 0.25, IoU 0.7): recall 0.60 (18 of 30 labelled objects), precision 0.75
# (24 detections). An independent pipeline (ONNX Runtime on the plain model, the numpy reference
# post-processing of inference/tests) finds exactly the same 18. Most misses are small or
# crowded objects (bowls and oranges in 000000000009, people in 000000000049/61). The bar
# allows one match lost to numeric noise; a letterbox, colour-order or box-mapping bug drops
# recall far below it.
COCO8_MIN_RECALL = 0.55
COCO8_MIN_PRECISION = 0.7


async def test_coco8_recall_against_labels(detection, user, coco8):
    reply = await detection.stub.Detect(
        detection_pb2.DetectRequest(images=[_image(data, name) for name, data, _ in coco8]),
        metadata=detection.metadata(user),
        timeout=60,
    )
    assert [r.filename for r in reply.results] == [name for name, _, _ in coco8]
    totals = np.array(
        [_match(r, labels) for r, (_, _, labels) in zip(reply.results, coco8, strict=True)]
    )
    truth, found, predicted = totals.sum(axis=0)
    print(f"coco8: recall {found / truth:.3f} ({found}/{truth}), precision {found / predicted:.3f}")
    assert found / truth >= COCO8_MIN_RECALL
    assert found / predicted >= COCO8_MIN_PRECISION


def _histogram(histogram, suffix: str) -> float:
    (metric,) = histogram.collect()
    return next(s.value for s in metric.samples if s.name.endswith(suffix))


async def test_concurrent_callers_share_batches(detection, user, bus_jpg):
    sizes = detection.service.metrics.batch_size
    batches_before, frames_before = _histogram(sizes, "_count"), _histogram(sizes, "_sum")
    replies = await asyncio.gather(
        *(
            detection.stub.Detect(
                detection_pb2.DetectRequest(images=[_image(bus_jpg)]),
                metadata=detection.metadata(user),
                timeout=60,
            )
            for _ in range(16)
        )
    )
    assert all(len(r.results[0].objects) >= 5 for r in replies)
    batches = _histogram(sizes, "_count") - batches_before
    frames = _histogram(sizes, "_sum") - frames_before
    assert frames == 16
    assert batches < 16, "concurrent single-image calls should have been batched together"


async def test_params_filter_classes_confidence_and_count(detection, user, bus_jpg):
    async def detect(**params: object) -> list[detection_pb2.DetectedObject]:
        reply = await detection.stub.Detect(
            detection_pb2.DetectRequest(
                images=[_image(bus_jpg)], params=detection_pb2.DetectionParams(**params)
            ),
            metadata=detection.metadata(user),
            timeout=30,
        )
        return list(reply.results[0].objects)

    everything = await detect()
    people = await detect(classes=["Person"])
    assert people and {o.class_name for o in people} == {"person"}
    assert len(people) == sum(o.class_name == "person" for o in everything)
    assert {o.class_name for o in await detect(classes=["5"])} == {"bus"}
    confident = await detect(confidence=0.8)
    assert confident and all(o.confidence >= 0.8 for o in confident)
    assert len(await detect(max_detections=2)) == 2
    assert len(await detect(confidence=0.05)) > len(everything)
    objects = await detect(confidence=0.05)
    assert [o.confidence for o in objects] == sorted((o.confidence for o in objects), reverse=True)


@pytest.mark.parametrize(
    "params",
    [
        {"classes": ["unicorn"]},
        {"classes": ["80"]},
        {"confidence": 1.5},
        {"iou": -0.1},
        {"max_detections": -1},
    ],
)
async def test_invalid_params_are_refused(detection, user, bus_jpg, params):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await detection.stub.Detect(
            detection_pb2.DetectRequest(
                images=[_image(bus_jpg)], params=detection_pb2.DetectionParams(**params)
            ),
            metadata=detection.metadata(user),
            timeout=30,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_calls_without_a_signed_principal_are_refused(detection, bus_jpg):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await detection.stub.Detect(
            detection_pb2.DetectRequest(images=[_image(bus_jpg)]), timeout=30
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    forged = [
        (key, "0" * 64 if key == "x-principal-signature" else value)
        for key, value in detection.metadata("someone")
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await detection.stub.Detect(
            detection_pb2.DetectRequest(images=[_image(bus_jpg)]), metadata=forged, timeout=30
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_stream_answers_in_order_and_survives_a_bad_frame(detection, user, bus_jpg):
    frames = []
    for n in range(20):
        data = b"this is not an image" if n == 7 else bus_jpg
        frames.append(
            detection_pb2.Frame(
                sequence=100 + n,
                image=_image(data, f"frame-{n}.jpg"),
                params=detection_pb2.DetectionParams(classes=["bus"]) if n == 0 else None,
            )
        )

    async def send():
        for frame in frames:
            yield frame

    replies = [
        reply
        async for reply in detection.stub.DetectStream(
            send(), metadata=detection.metadata(user), timeout=60
        )
    ]
    assert [r.sequence for r in replies] == [100 + n for n in range(20)]
    bad = replies[7]
    assert bad.error and not bad.HasField("result")
    for n, reply in enumerate(replies):
        if n == 7:
            continue
        assert not reply.error
        # Params come from the first frame only: every frame is filtered to buses.
        assert [o.class_name for o in reply.result.objects] == ["bus"]
        assert reply.result.filename == f"frame-{n}.jpg"
        assert reply.result.detection_id == ""
    assert (await detection.counts(user))["detections"] == 0


@pytest.mark.parametrize("unknown", ["unicorn", "²", "80", "-1", "٣"])
async def test_an_unknown_class_is_invalid_argument_not_a_crash(detection, user, bus_jpg, unknown):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await detection.stub.Detect(
            detection_pb2.DetectRequest(
                images=[_image(bus_jpg)],
                params=detection_pb2.DetectionParams(classes=[unknown]),
            ),
            metadata=detection.metadata(user),
            timeout=30,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
