"""The realtime role (`objectvision-detection-realtime`, ADR 0019): ListModels, Detect and
DetectStream from the inference pipeline alone.

It runs here as its console script does, with two serving processes behind one port, and with
DATABASE_URL and REDIS_URL pointing at closed ports: it must serve without either.
"""

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import requests

from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc
from objectvision_common.identity import principal_metadata
from objectvision_devstack.pytest_plugin import Infrastructure
from objectvision_devstack.triton import LocalTriton

from .conftest import Harness, ServiceProcess, handled_detect_calls, launched_service

SECRET = "realtime-role-test-secret"
REALTIME = "detection_service.realtime.server"
# Nothing listens on port 1: a role that touched PostgreSQL or Redis would fail its calls.
NO_DATABASE = {
    "DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/nothing",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


@pytest.fixture(scope="module")
def realtime(
    infrastructure: Infrastructure,
    triton: LocalTriton,
    served_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceProcess]:
    with launched_service(
        infrastructure,
        triton_url=triton.grpc_url,
        served_model=served_model,
        workdir=tmp_path_factory.mktemp("realtime"),
        secret=SECRET,
        server_module=REALTIME,
        DETECTION_SERVING_PROCESSES="2",
        **NO_DATABASE,
    ) as service:
        yield service


@pytest.fixture
async def stub(realtime: ServiceProcess) -> AsyncIterator[detection_pb2_grpc.DetectionServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{realtime.port}") as channel:
        yield detection_pb2_grpc.DetectionServiceStub(channel)


def _metadata(user: str) -> tuple[tuple[str, str], ...]:
    return principal_metadata(common_pb2.Principal(user_id=user, auth_method="jwt"), secret=SECRET)


def _detect(data: bytes, *, store: bool = False) -> detection_pb2.DetectRequest:
    return detection_pb2.DetectRequest(
        images=[detection_pb2.ImageInput(data=data, filename="bus.jpg")], store=store
    )


def _boxes(result: detection_pb2.ImageResult) -> list[tuple[str, float, float, float, float]]:
    return [
        (
            o.class_name,
            round(o.box.x1, 1),
            round(o.box.y1, 1),
            round(o.box.x2, 1),
            round(o.box.y2, 1),
        )
        for o in result.objects
    ]


async def test_detect_answers_as_the_full_service_does(
    stub: detection_pb2_grpc.DetectionServiceStub, detection: Harness, user: str, bus_jpg: bytes
) -> None:
    realtime = await stub.Detect(_detect(bus_jpg), metadata=_metadata(user), timeout=60)
    full = await detection.stub.Detect(
        _detect(bus_jpg), metadata=detection.metadata(user), timeout=60
    )
    (answer,) = realtime.results
    assert sorted(o.class_name for o in answer.objects) == [
        "bus",
        "person",
        "person",
        "person",
        "person",
    ]
    assert _boxes(answer) == _boxes(full.results[0])
    assert (answer.width, answer.height) == (810, 1080)
    assert answer.detection_id == ""


async def test_asking_to_store_is_refused_with_the_reason(
    stub: detection_pb2_grpc.DetectionServiceStub, user: str, bus_jpg: bytes
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(_detect(bus_jpg, store=True), metadata=_metadata(user), timeout=60)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "realtime role" in (caught.value.details() or "")
    assert "store=false" in (caught.value.details() or "")


async def test_a_stream_is_answered_in_order_and_outlives_a_bad_frame(
    stub: detection_pb2_grpc.DetectionServiceStub, user: str, bus_jpg: bytes
) -> None:
    async def frames() -> AsyncIterator[detection_pb2.Frame]:
        for n in range(12):
            data = b"not an image" if n == 5 else bus_jpg
            yield detection_pb2.Frame(
                sequence=n, image=detection_pb2.ImageInput(data=data, filename=f"f{n}.jpg")
            )

    replies = [r async for r in stub.DetectStream(frames(), metadata=_metadata(user), timeout=60)]
    assert [r.sequence for r in replies] == list(range(12))
    assert replies[5].error and not replies[5].HasField("result")
    assert all(len(r.result.objects) == 5 for n, r in enumerate(replies) if n != 5)


async def test_models_are_listed(stub: detection_pb2_grpc.DetectionServiceStub, user: str) -> None:
    answer = await stub.ListModels(
        detection_pb2.ListModelsRequest(), metadata=_metadata(user), timeout=30
    )
    assert answer.default_model == "yolov8n"
    assert "yolov8n" in {model.name for model in answer.models}


async def test_what_is_kept_is_not_served_here(
    stub: detection_pb2_grpc.DetectionServiceStub, user: str
) -> None:
    calls = [
        stub.ListDetections(detection_pb2.ListDetectionsRequest(), metadata=_metadata(user)),
        stub.GetJob(detection_pb2.GetJobRequest(job_id="x"), metadata=_metadata(user)),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_calls_without_a_signed_principal_are_refused(
    stub: detection_pb2_grpc.DetectionServiceStub, bus_jpg: bytes
) -> None:
    forged = principal_metadata(
        common_pb2.Principal(user_id="someone", auth_method="jwt"), secret="another-secret"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Detect(_detect(bus_jpg), metadata=forged, timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _handled_detect_calls(metrics_port: int) -> float:
    text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    return handled_detect_calls(text)


def test_two_serving_processes_answer_and_their_metrics_are_merged(
    realtime: ServiceProcess, bus_jpg: bytes
) -> None:
    assert len(realtime.serving_processes()) == 2
    before = _handled_detect_calls(realtime.metrics_port)
    calls = 8
    for _ in range(calls):
        # A channel of its own each: the kernel spreads connections over both processes.
        with grpc.insecure_channel(
            f"127.0.0.1:{realtime.port}", options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            answer = detection_pb2_grpc.DetectionServiceStub(channel).Detect(
                _detect(bus_jpg), metadata=_metadata("metrics-user"), timeout=60
            )
            assert len(answer.results[0].objects) == 5
    assert _handled_detect_calls(realtime.metrics_port) == before + calls


def test_migrate_has_nothing_to_do() -> None:
    answer = subprocess.run(
        [sys.executable, "-c", f"from {REALTIME} import main; main(['migrate'])"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"LOG_JSON": "false", "PATH": "/usr/bin:/bin", **NO_DATABASE},
    )
    assert answer.returncode == 0, answer.stderr
    assert "nothing to migrate" in answer.stdout + answer.stderr


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("objectvision-detection-realtime")
    usage = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert "objectvision-detection-realtime" in usage and "serve" in usage
