"""REQUIRE_VERIFIED_EMAIL (ADR 0029), against real PostgreSQL, Redis and Triton: with it on,
detection work is refused to a caller whose Principal says the account's email address is
not verified (PERMISSION_DENIED, error code `email_not_verified`) before any of it is done:
nothing is stored, queued or counted. A stream is refused before its first frame. Off (the
default), the flag on the Principal changes nothing.
"""

import grpc
import pytest

from objectvision.v1 import common_pb2, detection_pb2
from objectvision_common.identity import principal_metadata

from .conftest import SECRET


def _as(user: str, *, verified: bool) -> tuple[tuple[str, str], ...]:
    principal = common_pb2.Principal(user_id=user, auth_method="jwt", email_verified=verified)
    return principal_metadata(principal, secret=SECRET)


def _detect_request(image: bytes) -> detection_pb2.DetectRequest:
    return detection_pb2.DetectRequest(
        images=[detection_pb2.ImageInput(data=image, filename="bus.jpg")], store=True
    )


def _refused_unverified(error: grpc.aio.AioRpcError) -> None:
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert dict(error.trailing_metadata() or ())["error-code"] == "email_not_verified"
    assert "verified email addresses only" in (error.details() or "")


async def test_unverified_callers_get_no_detect_no_job_and_no_stream(make_harness, user, bus_jpg):
    harness = await make_harness(REQUIRE_VERIFIED_EMAIL=True)
    unverified = _as(user, verified=False)

    with pytest.raises(grpc.aio.AioRpcError) as detect:
        await harness.stub.Detect(_detect_request(bus_jpg), metadata=unverified, timeout=60)
    _refused_unverified(detect.value)

    with pytest.raises(grpc.aio.AioRpcError) as job:
        await harness.stub.SubmitJob(
            detection_pb2.SubmitJobRequest(
                images=[detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg")]
            ),
            metadata=unverified,
            timeout=60,
        )
    _refused_unverified(job.value)

    async def frames():
        yield detection_pb2.Frame(sequence=0, image=detection_pb2.ImageInput(data=bus_jpg))

    with pytest.raises(grpc.aio.AioRpcError) as stream:
        async for _ in harness.stub.DetectStream(frames(), metadata=unverified, timeout=60):
            pytest.fail("an unverified caller's stream answered a frame")
    _refused_unverified(stream.value)

    counts = await harness.counts(user)
    assert (counts["detections"], counts["images"], counts["jobs"]) == (0, 0, 0)
    usage = await harness.stub.GetUsage(
        detection_pb2.GetUsageRequest(), metadata=unverified, timeout=30
    )
    assert usage.month_images == 0


async def test_a_verified_caller_detects_when_verification_is_required(make_harness, user, bus_jpg):
    harness = await make_harness(REQUIRE_VERIFIED_EMAIL=True)
    answer = await harness.stub.Detect(
        _detect_request(bus_jpg), metadata=_as(user, verified=True), timeout=60
    )
    assert any(found.class_name == "bus" for found in answer.results[0].objects)
    counts = await harness.counts(user)
    assert (counts["detections"], counts["images"]) == (1, 1)


async def test_without_the_requirement_an_unverified_caller_detects(detection, user, bus_jpg):
    assert detection.settings.require_verified_email is False
    answer = await detection.stub.Detect(
        _detect_request(bus_jpg), metadata=_as(user, verified=False), timeout=60
    )
    assert answer.results[0].objects
