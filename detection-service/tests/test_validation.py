"""Unfit uploads get the right status and error code, and nothing is stored for them."""

import grpc
import pytest

from objectvision.v1 import detection_pb2

MIB = 1024 * 1024


def _trailer(error: grpc.aio.AioRpcError, key: str) -> str | None:
    return dict(error.trailing_metadata() or ()).get(key)


@pytest.fixture(scope="module")
def unfit(bus_jpg, png_bomb, make_png) -> dict[str, tuple[list[bytes], str]]:
    """name -> (images of one request, expected error-code trailer); all INVALID_ARGUMENT."""
    tiny = make_png(8, 8)
    return {
        "empty": ([b""], "invalid_argument"),
        "not an image": ([b"name,score\nalice,3\n" * 20], "unsupported_media_type"),
        "gif": (
            [b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(20) + b";"],
            "unsupported_media_type",
        ),
        "truncated jpeg": ([bus_jpg[: len(bus_jpg) // 2]], "invalid_argument"),
        "too many bytes": ([b"\xff\xd8\xff" + bytes(20 * MIB)], "payload_too_large"),
        "too many pixels": ([png_bomb], "payload_too_large"),
        "no images": ([], "invalid_argument"),
        "too many files": ([tiny] * 101, "invalid_argument"),
        "one bad among good ones": ([bus_jpg, bus_jpg, bus_jpg[:5000]], "invalid_argument"),
    }


CASES = [
    "empty",
    "not an image",
    "gif",
    "truncated jpeg",
    "too many bytes",
    "too many pixels",
    "no images",
    "too many files",
    "one bad among good ones",
]


@pytest.mark.parametrize("case", CASES)
async def test_detect_refuses_and_stores_nothing(detection, user, unfit, case):
    images, code = unfit[case]
    before = await detection.counts(user)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await detection.stub.Detect(
            detection_pb2.DetectRequest(
                images=[detection_pb2.ImageInput(data=d, filename="x.jpg") for d in images],
                store=True,
            ),
            metadata=detection.metadata(user),
            timeout=30,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _trailer(caught.value, "error-code") == code
    assert await detection.counts(user) == before


@pytest.mark.parametrize("case", [c for c in CASES if c != "one bad among good ones"])
async def test_submit_job_with_no_usable_file_refuses_and_stores_nothing(
    detection, user, unfit, case
):
    images, code = unfit[case]
    before = await detection.counts(user)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await detection.stub.SubmitJob(
            detection_pb2.SubmitJobRequest(
                images=[detection_pb2.ImageInput(data=d, filename="x.jpg") for d in images]
            ),
            metadata=detection.metadata(user),
            timeout=30,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _trailer(caught.value, "error-code") == code
    assert await detection.counts(user) == before


async def test_an_image_that_fails_to_decode_fails_detect_and_stores_nothing(
    detection, user, bus_jpg, make_png
):
    corrupt = make_png(64, 64, idat=b"\x78\x9c" + b"\xde\xad\xbe\xef" * 16)
    before = await detection.counts(user)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await detection.stub.Detect(
            detection_pb2.DetectRequest(
                images=[
                    detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg"),
                    detection_pb2.ImageInput(data=corrupt, filename="corrupt.png"),
                ],
                store=True,
            ),
            metadata=detection.metadata(user),
            timeout=30,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot be decoded" in caught.value.details()
    assert await detection.counts(user) == before


async def test_error_messages_name_the_image(detection, user, bus_jpg):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await detection.stub.Detect(
            detection_pb2.DetectRequest(
                images=[
                    detection_pb2.ImageInput(data=bus_jpg, filename="ok.jpg"),
                    detection_pb2.ImageInput(data=b"", filename="../../etc/passwd"),
                ]
            ),
            metadata=detection.metadata(user),
            timeout=30,
        )
    assert caught.value.details() == "image passwd: the image is empty"


async def test_a_batch_keeps_its_good_files_and_reports_each_refused_one(
    detection, user, bus_jpg, zidane_jpg
):
    """Per-file results: the good files become a job; a truncated file and one the gateway
    found too large fail their own items with the reason, at their positions."""
    job = await detection.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(
            images=[
                detection_pb2.ImageInput(data=bus_jpg, filename="bus.jpg"),
                detection_pb2.ImageInput(data=bus_jpg[:5000], filename="cut.jpg"),
                detection_pb2.ImageInput(data=zidane_jpg, filename="zidane.jpg"),
            ],
            refused=[detection_pb2.RefusedImage(filename="huge.jpg", reason="is 25.0 MiB")],
        ),
        metadata=detection.metadata(user),
        timeout=30,
    )
    assert (job.total, job.processed, job.failed) == (4, 2, 2)
    by_name = {item.filename: item for item in job.items}
    assert [item.filename for item in job.items] == ["bus.jpg", "cut.jpg", "zidane.jpg", "huge.jpg"]
    assert by_name["cut.jpg"].status == detection_pb2.JOB_STATUS_FAILED
    assert "truncated" in by_name["cut.jpg"].error
    assert by_name["huge.jpg"].error == "is 25.0 MiB"
    assert by_name["bus.jpg"].status == detection_pb2.JOB_STATUS_PENDING
    counts = await detection.counts(user)
    assert counts["images"] == 2
