"""End to end: the real tritonserver (nvidia-pytriton wheel) serving the CPU flavour over gRPC.

The contract of detect_contract: encoded files in, each with its own options, answers in
original pixels out; the decoder inside Triton bound to the pixel limit.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from inference_reference import IMAGES, TRITON_ENV

from objectvision_devstack.processes import free_port
from objectvision_devstack.triton import settled_statistics
from objectvision_inference import detect_contract as contract
from objectvision_inference.triton import (
    MODEL_NAME,
    build_model_repository,
    tritonserver_command,
    wait_until_ready,
)

pytestmark = pytest.mark.skipif(
    not TRITON_ENV.exists(), reason=f"no Triton env at {TRITON_ENV}: make triton-env"
)
PERSON, BUS = 0, 5
CONCURRENT = 16
# Above bus.jpg (810x1080) and zidane.jpg (1280x720): the decoder's limit in these tests.
MAX_PIXELS = 1_000_000


@dataclass
class Server:
    grpc_url: str
    log: Path


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful unload), then SIGKILL the session, stub processes included."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def server(served_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("triton")
    repo = build_model_repository(
        workdir / "repository", served_onnx, flavour="cpu", max_pixels=MAX_PIXELS
    )
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    argv, env = tritonserver_command(
        repo,
        grpc_port=grpc_port,
        http_port=http_port,
        metrics_port=metrics_port,
        triton_env_dir=TRITON_ENV,
    )
    log = workdir / "tritonserver.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        try:
            wait_until_ready(http_port, timeout_s=120, process=process)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-4000:]}") from exc
        yield Server(grpc_url=f"127.0.0.1:{grpc_port}", log=log)
    finally:
        _stop(process)


def _inputs(
    files: list[bytes],
    *,
    confidence: list[float] | None = None,
    classes: list[list[int]] | None = None,
    expected: list[tuple[int, int]] | None = None,
) -> list[grpcclient.InferInput]:
    encoded = np.empty((len(files), 1), dtype=object)
    for row, data in enumerate(files):
        encoded[row, 0] = data
    arrays: list[tuple[str, np.ndarray, str]] = [(contract.IMAGES, encoded, "BYTES")]
    if confidence is not None:
        arrays.append((contract.CONFIDENCE, np.array(confidence, np.float32)[:, None], "FP32"))
    if classes is not None:
        mask = np.zeros((len(files), 80), dtype=bool)
        for row, wanted in enumerate(classes):
            mask[row, wanted or list(range(80))] = True
        arrays.append((contract.CLASS_MASK, mask, "BOOL"))
    if expected is not None:
        arrays.append((contract.EXPECTED_SIZE, np.array(expected, np.int32), "INT32"))
    tensors = []
    for name, array, datatype in arrays:
        tensor = grpcclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


def _answers(result: grpcclient.InferResult) -> list[contract.ImageResult]:
    return contract.unpack({name: result.as_numpy(name) for name in contract.OUTPUTS})


def _stats(client: grpcclient.InferenceServerClient) -> dict[str, int]:
    (stats,) = client.get_inference_statistics(MODEL_NAME, as_json=True)["model_stats"]
    return {key: int(stats.get(key, 0)) for key in ("inference_count", "execution_count")}


def test_bus_jpg_in_four_people_and_a_bus_out_in_image_pixels(server: Server) -> None:
    bus = (IMAGES / "bus.jpg").read_bytes()
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        assert client.is_model_ready(MODEL_NAME)
        (answer,) = _answers(client.infer(MODEL_NAME, _inputs([bus])))
    assert (answer.status, answer.width, answer.height) == (contract.STATUS_OK, 810, 1080)
    assert sorted(answer.rows[:, 5].astype(int).tolist()) == [PERSON] * 4 + [BUS]
    the_bus = answer.rows[answer.rows[:, 5] == BUS][0]
    assert the_bus[4] == pytest.approx(0.83, abs=0.02)
    # The bus spans the picture's width, in original pixels (not the 640 model input).
    assert the_bus[0] < 60 and the_bus[2] > 780 and the_bus[3] <= 1080
    assert all(ms >= 0 for ms in answer.stage_ms) and answer.stage_ms[1] > 0


def test_each_image_of_a_request_keeps_its_own_options(server: Server) -> None:
    bus = (IMAGES / "bus.jpg").read_bytes()
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        result = client.infer(
            MODEL_NAME,
            _inputs([bus, bus, bus], confidence=[0, 0.8, 0], classes=[[], [], [BUS]]),
        )
    default, confident, only_buses = _answers(result)
    assert len(default.rows) == 5
    assert (confident.rows[:, 4] >= 0.8).all() and len(confident.rows) < 5
    assert only_buses.rows[:, 5].astype(int).tolist() == [BUS]


def test_a_bad_file_is_refused_alone_and_the_decoder_holds_the_pixel_limit(
    server: Server,
) -> None:
    bus = (IMAGES / "bus.jpg").read_bytes()
    too_big = cv2.imencode(".png", np.zeros((1000, 1200, 3), np.uint8))[1].tobytes()
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        result = client.infer(
            MODEL_NAME,
            _inputs(
                [b"not an image", too_big, bus, bus],
                # The caller's parser was fooled into 16x16 for the big one and a bus.
                expected=[(0, 0), (16, 16), (16, 16), (810, 1080)],
            ),
        )
    statuses = [answer.status for answer in _answers(result)]
    assert statuses == [
        contract.STATUS_UNDECODABLE,
        contract.STATUS_TOO_LARGE,
        contract.STATUS_SIZE_MISMATCH,
        contract.STATUS_OK,
    ]


def test_dynamic_batching_merges_concurrent_requests(server: Server) -> None:
    # Alternate two images so a batch split back wrongly shows up as a mismatch.
    files = [(IMAGES / name).read_bytes() for name in ("bus.jpg", "zidane.jpg")]
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        expected = [_answers(client.infer(MODEL_NAME, _inputs([data])))[0] for data in files]
        done: queue.Queue[tuple[int, object, object]] = queue.Queue()
        before = settled_statistics(lambda: _stats(client))
        for i in range(CONCURRENT):
            client.async_infer(
                MODEL_NAME,
                _inputs([files[i % 2]]),
                callback=lambda result, error, i=i: done.put((i, result, error)),
            )
        outputs = [done.get(timeout=120) for _ in range(CONCURRENT)]
        after = settled_statistics(
            lambda: _stats(client),
            enough=lambda now: now["inference_count"] >= before["inference_count"] + CONCURRENT,
        )

    for i, result, error in outputs:
        assert error is None, error
        (answer,) = _answers(result)  # type: ignore[arg-type]
        np.testing.assert_allclose(answer.rows, expected[i % 2].rows, atol=1e-4)
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    assert inferences == CONCURRENT
    assert executions < inferences, f"no batching: {executions} runs for {inferences} images"
