"""Models as a resource: what Triton's repository serves is what callers can choose.

The shared Triton serves ``yolov8n`` (fp32) and ``yolov8n-int8`` (``make model`` prepares
both) under explicit model control. The test that unloads a model to see how the service
answers while it is away does it on a Triton of this module's own: Triton's Python backend
(the CPU serving here) has crashed on an execute minutes after such a reload (SIGSEGV in
TRITONBACKEND_ModelInstanceExecute, boost::interprocess::lock_exception), and the shared
Triton serves every other suite of the worker. Nothing is mocked: the listing, the answers
and the per-model counts all come from a real Triton.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from tritonclient.grpc.aio import InferenceServerClient

from objectvision.v1 import detection_pb2
from objectvision_devstack.pytest_plugin import Infrastructure
from objectvision_devstack.triton import LocalTriton, settled_count

from .conftest import Harness, service_settings, start_harness

FP32 = "yolov8n"
INT8 = "yolov8n-int8"
# The int8 weights move a box by a few pixels and a score by a few hundredths (as fp16 does
# on the GPU: the same tolerances as the GPU parity tests). Objects under 0.5 are left out:
# near the threshold a small score change decides whether a partly visible person is kept.
MIN_IOU = 0.9
SCORE_TOLERANCE = 0.03
COMPARED_ABOVE = 0.5


def _iou(a: detection_pb2.BoundingBox, b: detection_pb2.BoundingBox) -> float:
    width = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    height = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = width * height
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return inter / union if union > 0 else 0.0


@pytest.fixture
async def triton_client(triton: LocalTriton) -> AsyncIterator[InferenceServerClient]:
    async with InferenceServerClient(triton.grpc_url) as client:
        yield client


@pytest.fixture(scope="module")
def controlled_triton(
    tmp_path_factory: pytest.TempPathFactory, served_model: Path
) -> Iterator[LocalTriton]:
    """A Triton of this module's own, for model control (the module docstring says why)."""
    server = LocalTriton(tmp_path_factory.mktemp("controlled-triton"), served_model=served_model)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def controlled(
    migrated: Infrastructure, controlled_triton: LocalTriton, served_model: Path, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The service inferring on `controlled_triton`."""
    harness = await start_harness(
        service_settings(
            migrated,
            triton_url=controlled_triton.grpc_url,
            served_model=served_model,
            storage_dir=tmp_path / "objects",
        )
    )
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.fixture
async def controlled_client(controlled_triton: LocalTriton) -> AsyncIterator[InferenceServerClient]:
    async with InferenceServerClient(controlled_triton.grpc_url) as client:
        yield client


async def _wait_state(client: InferenceServerClient, name: str, *, ready: bool) -> None:
    """Until Triton's own readiness of the model is ``ready`` (a load takes seconds)."""
    deadline = time.monotonic() + 120
    while await client.is_model_ready(name) != ready:
        assert time.monotonic() < deadline, f"{name} never became {'ready' if ready else 'gone'}"
        await asyncio.sleep(0.2)


async def _inferences(client: InferenceServerClient, name: str) -> int:
    stats = await client.get_inference_statistics(name, as_json=True)
    return sum(int(s.get("inference_count", 0)) for s in stats.get("model_stats", []))


def _detect(bus_jpg: bytes, model: str, *, store: bool = False) -> detection_pb2.DetectRequest:
    return detection_pb2.DetectRequest(
        images=[detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg")],
        params=detection_pb2.DetectionParams(model=model),
        store=store,
    )


async def test_the_listing_is_what_triton_serves(detection: Any, user: str) -> None:
    listed = await detection.stub.ListModels(
        detection_pb2.ListModelsRequest(), metadata=detection.metadata(user)
    )
    by_name = {model.name: model for model in listed.models}
    assert set(by_name) == {FP32, INT8}
    assert listed.default_model == FP32
    for name, precision in ((FP32, "fp32"), (INT8, "int8")):
        model = by_name[name]
        assert (model.version, model.task, model.input_size) == ("1", "detect", 640)
        assert (model.precision, model.device, model.state) == (precision, "cpu", "READY")
        assert model.ready
        assert len(model.classes) == 80
        assert (model.classes[0], model.classes[5]) == ("person", "bus")
    assert by_name[FP32].default and not by_name[INT8].default


async def test_int8_finds_what_fp32_finds_on_bus(detection: Any, user: str, bus_jpg: bytes) -> None:
    answers = {}
    for model in (FP32, INT8):
        response = await detection.stub.Detect(
            _detect(bus_jpg, model), metadata=detection.metadata(user)
        )
        (answers[model],) = response.results
        assert (answers[model].model, answers[model].model_version) == (model, "1")
    wanted = [obj for obj in answers[FP32].objects if obj.confidence >= COMPARED_ABOVE]
    assert sorted(obj.class_name for obj in wanted) == ["bus", "person", "person", "person"]
    for obj in wanted:
        same_class = [o for o in answers[INT8].objects if o.class_id == obj.class_id]
        best = max(same_class, key=lambda o: _iou(o.box, obj.box))
        assert _iou(best.box, obj.box) >= MIN_IOU, (obj, best)
        assert abs(best.confidence - obj.confidence) <= SCORE_TOLERANCE, (obj, best)


async def test_no_model_named_means_the_default(detection: Any, user: str, bus_jpg: bytes) -> None:
    response = await detection.stub.Detect(_detect(bus_jpg, ""), metadata=detection.metadata(user))
    assert response.results[0].model == FP32


async def test_a_triton_call_never_mixes_models(
    detection: Any,
    user: str,
    bus_jpg: bytes,
    zidane_jpg: bytes,
    triton_client: InferenceServerClient,
) -> None:
    """Images for both models arrive interleaved, at once; Triton's per-model statistics
    count exactly each model's own images (a mixed batch would be counted under one).

    The session's Triton also serves what other tests left running in the background (a job
    still being worked through, on the default model): the default model's count may only be
    more, never less; the int8 model, which no background work uses, exactly its own. A mixed
    batch would show either way: counted under int8, too many there; under the default
    model, too few for int8."""
    before = {
        name: await settled_count(lambda n=name: _inferences(triton_client, n))
        for name in (FP32, INT8)
    }
    per_model = 6
    requests = [
        _detect(image, model)
        for _ in range(per_model // 2)
        for image in (bus_jpg, zidane_jpg)
        for model in (FP32, INT8)
    ]
    responses = await asyncio.gather(
        *(detection.stub.Detect(r, metadata=detection.metadata(user)) for r in requests)
    )
    answered = [response.results[0].model for response in responses]
    assert answered == [request.params.model for request in requests]
    after = {
        name: await settled_count(lambda n=name: _inferences(triton_client, n))
        for name in (FP32, INT8)
    }
    assert after[INT8] - before[INT8] == per_model
    assert after[FP32] - before[FP32] >= per_model


async def test_history_records_the_model_and_version(
    detection: Any, user: str, bus_jpg: bytes
) -> None:
    response = await detection.stub.Detect(
        _detect(bus_jpg, INT8, store=True), metadata=detection.metadata(user)
    )
    stored = await detection.stub.GetDetection(
        detection_pb2.GetDetectionRequest(detection_id=response.results[0].detection_id),
        metadata=detection.metadata(user),
    )
    assert (stored.result.model, stored.result.model_version) == (INT8, "1")
    listed = await detection.stub.ListDetections(
        detection_pb2.ListDetectionsRequest(), metadata=detection.metadata(user)
    )
    assert [(item.result.model, item.result.model_version) for item in listed.items] == [
        (INT8, "1")
    ]


async def test_a_job_records_its_model_and_the_version_that_answered(
    detection: Any, user: str, bus_jpg: bytes, zidane_jpg: bytes
) -> None:
    job = await detection.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(
            images=[
                detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg"),
                detection_pb2.ImageInput(data=zidane_jpg, filename="zidane.jpg"),
            ],
            params=detection_pb2.DetectionParams(model=INT8),
            idempotency_key=str(uuid.uuid4()),
        ),
        metadata=detection.metadata(user),
    )
    assert (job.model, job.model_version) == (INT8, "")
    deadline = time.monotonic() + 120
    while job.status != detection_pb2.JOB_STATUS_COMPLETED:
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.3)
        job = await detection.stub.GetJob(
            detection_pb2.GetJobRequest(job_id=job.id), metadata=detection.metadata(user)
        )
    assert (job.model, job.model_version) == (INT8, "1")
    for item in job.items:
        stored = await detection.stub.GetDetection(
            detection_pb2.GetDetectionRequest(detection_id=item.detection_id),
            metadata=detection.metadata(user),
        )
        assert (stored.result.model, stored.result.model_version) == (INT8, "1")


async def test_an_unknown_model_is_not_found_and_names_the_known_ones(
    detection: Any, user: str, bus_jpg: bytes
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await detection.stub.Detect(
            _detect(bus_jpg, "yolov9-huge"), metadata=detection.metadata(user)
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == (
        "unknown model 'yolov9-huge'; this deployment serves: yolov8n, yolov8n-int8"
    )
    trailers = dict(raised.value.trailing_metadata() or ())
    assert trailers["error-code"] == "unknown_model"


async def test_an_unknown_model_ends_a_stream_before_any_frame(
    detection: Any, user: str, bus_jpg: bytes
) -> None:
    async def frames() -> AsyncIterator[detection_pb2.Frame]:
        yield detection_pb2.Frame(
            sequence=1,
            image=detection_pb2.ImageInput(data=bus_jpg),
            params=detection_pb2.DetectionParams(model="nope"),
        )

    call = detection.stub.DetectStream(frames(), metadata=detection.metadata(user))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in call:
            pass
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_stream_detects_with_the_model_of_its_first_frame(
    detection: Any, user: str, bus_jpg: bytes
) -> None:
    async def frames() -> AsyncIterator[detection_pb2.Frame]:
        for sequence in (1, 2):
            yield detection_pb2.Frame(
                sequence=sequence,
                image=detection_pb2.ImageInput(data=bus_jpg),
                params=detection_pb2.DetectionParams(model=INT8),
            )

    answers = [
        answer
        async for answer in detection.stub.DetectStream(frames(), metadata=detection.metadata(user))
    ]
    assert [(a.sequence, a.result.model, a.error) for a in answers] == [
        (1, INT8, ""),
        (2, INT8, ""),
    ]


async def test_a_first_frame_without_an_image_is_answered_ready_or_refused_before_any_picture(
    detection: Any, user: str, bus_jpg: bytes
) -> None:
    """A stream's settings alone (ADR 0059): a known model is `ready` with no result, and the
    pictures that follow are detected with it; an unknown one ends the stream at once."""
    settings = detection_pb2.DetectionParams(model=INT8)

    async def frames() -> AsyncIterator[detection_pb2.Frame]:
        yield detection_pb2.Frame(sequence=0, params=settings)
        yield detection_pb2.Frame(sequence=1, image=detection_pb2.ImageInput(data=bus_jpg))

    answers = [
        answer
        async for answer in detection.stub.DetectStream(frames(), metadata=detection.metadata(user))
    ]
    assert [(a.sequence, a.ready, a.HasField("result")) for a in answers] == [
        (0, True, False),
        (1, False, True),
    ]
    assert answers[1].result.model == INT8

    async def unknown() -> AsyncIterator[detection_pb2.Frame]:
        yield detection_pb2.Frame(params=detection_pb2.DetectionParams(model="nope"))
        # Held open: the refusal must come without a picture, or the read below times out.
        await asyncio.Event().wait()

    call = detection.stub.DetectStream(unknown(), metadata=detection.metadata(user))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await asyncio.wait_for(call.read(), timeout=30)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_model_that_is_not_loaded_is_unavailable_with_retry_after(
    controlled: Harness,
    user: str,
    bus_jpg: bytes,
    controlled_client: InferenceServerClient,
) -> None:
    """Triton's model control unloads the int8 model (it stays in the repository): the
    service answers UNAVAILABLE with a retry-after until Triton has loaded it again."""
    await controlled_client.unload_model(INT8)
    try:
        await _wait_state(controlled_client, INT8, ready=False)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await controlled.stub.Detect(_detect(bus_jpg, INT8), metadata=controlled.metadata(user))
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert f"model '{INT8}' is not ready" in (raised.value.details() or "")
        trailers = dict(raised.value.trailing_metadata() or ())
        assert trailers["error-code"] == "model_not_ready"
        assert int(trailers["retry-after"]) >= 1
        listed = await controlled.stub.ListModels(
            detection_pb2.ListModelsRequest(), metadata=controlled.metadata(user)
        )
        states = {model.name: (model.ready, model.state) for model in listed.models}
        # UNLOADING, then UNAVAILABLE: Triton's own words, passed on.
        assert states[INT8][0] is False
        assert states[INT8][1] in {"UNLOADING", "UNAVAILABLE"}
        assert states[FP32] == (True, "READY")
    finally:
        await controlled_client.load_model(INT8)
        await _wait_state(controlled_client, INT8, ready=True)
    response = await controlled.stub.Detect(
        _detect(bus_jpg, INT8), metadata=controlled.metadata(user)
    )
    assert response.results[0].model == INT8
