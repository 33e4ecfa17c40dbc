"""Calls to Triton spread over every endpoint its URL names, and one dying loses no call.

Two real Triton servers behind one multi-address target (`ipv4:a,b`, as a `dns:///` name of a
headless Service resolves in Kubernetes): each server's own counter of successful requests
shows it served; after one is killed with SIGKILL, every call still gets its answer.
"""

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from detection_service.pipeline.triton import ImageRequest, TritonModel, make_inputs
from objectvision_devstack.triton import SHARED_MEMORY_DIR, LocalTriton, settled_count
from objectvision_inference import detect_contract as contract
from objectvision_inference.triton import python_backend_shm_prefix

CALLS = 12
_SUCCESS = re.compile(r'^nv_inference_request_success\{model="yolov8n",version="1"\} (\S+)$', re.M)


@pytest.fixture
def second_triton(tmp_path: Path, served_model: Path) -> Iterator[LocalTriton]:
    server = LocalTriton(tmp_path / "second", served_model=served_model)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _served(server: LocalTriton) -> float:
    text = requests.get(server.metrics_url, timeout=10).text
    match = _SUCCESS.search(text)
    assert match, f"no request counter in {server.metrics_url}"
    return float(match.group(1))


def _bus(data: bytes) -> ImageRequest:
    return ImageRequest(data, 810, 1080, 0.25, 0.7, 300, None)


async def test_both_tritons_serve_and_a_killed_one_loses_no_call(
    triton: LocalTriton, second_triton: LocalTriton, bus_jpg: bytes
) -> None:
    targets = f"ipv4:127.0.0.1:{triton.grpc_port},127.0.0.1:{second_triton.grpc_port}"
    model = TritonModel(targets, model_name="yolov8n")
    try:
        servers = (triton, second_triton)
        before = [await settled_count(lambda s=server: _served(s)) for server in servers]
        for _ in range(CALLS):
            (answer,) = await model.infer(make_inputs([_bus(bus_jpg)], 80), time_limit_s=60)
            assert answer.status == contract.STATUS_OK
        after = [await settled_count(lambda s=server: _served(s)) for server in servers]
        served = [now - then for now, then in zip(after, before, strict=True)]
        assert sum(served) == CALLS
        assert min(served) > 0, f"one endpoint got no calls: {served}"

        second_triton.kill()
        left = list(
            SHARED_MEMORY_DIR.glob(f"{python_backend_shm_prefix(second_triton.grpc_port)}*")
        )
        assert left == [], "a killed server's shared memory outlived it"
        answers = await asyncio.gather(
            *(model.infer(make_inputs([_bus(bus_jpg)], 80), time_limit_s=60) for _ in range(CALLS))
        )
        assert [a.status for (a,) in answers] == [contract.STATUS_OK] * CALLS
        assert all(len(a.rows) == 5 for (a,) in answers)
    finally:
        await model.close()
