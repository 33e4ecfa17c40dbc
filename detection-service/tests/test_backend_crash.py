"""A model's backend process dying under Triton (a hostile fact of the Python backend: Triton's
issue 8882 crashes it under concurrent load, and Triton itself lives on, saying it is
healthy): the call that met the crash is answered after the backend is back, not with an
internal error, and so are the calls after it.

A Triton of its own, whose stub process of the default model is SIGKILLed between calls.
"""

import asyncio

import pytest

from objectvision.v1 import detection_pb2
from objectvision_devstack.triton import LocalTriton


@pytest.mark.slow  # a fault injected (a backend process killed): make test-slow
async def test_a_call_that_meets_a_crashed_model_backend_is_answered_once_it_is_back(
    make_harness, user, bus_jpg, served_model, tmp_path
):
    own_triton = LocalTriton(tmp_path / "triton", served_model=served_model)
    await asyncio.to_thread(own_triton.start)
    try:
        harness = await make_harness(TRITON_URL=own_triton.grpc_url, JOB_WORKERS=0)
        request = detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg")]
        )
        before = await harness.stub.Detect(request, metadata=harness.metadata(user), timeout=60)
        found = len(before.results[0].objects)
        assert found >= 5

        for _ in range(2):
            await asyncio.to_thread(own_triton.kill_backend_stub, "yolov8n")
            answered = await harness.stub.Detect(
                request, metadata=harness.metadata(user), timeout=60
            )
            assert len(answered.results[0].objects) == found
    finally:
        await asyncio.to_thread(own_triton.stop)
