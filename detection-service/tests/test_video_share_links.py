"""Share links of video jobs (ADR 0052): an owner shares a completed video job, and whoever
holds the link's token reads what the job counted and its annotated video, never the file
name, metadata or id, until the link ends as a detection's does (here: the job's deletion).

Against real PostgreSQL, Redis, Triton and the service's storage directory; the shared reads
are called with no principal, as the gateway calls them for an anonymous visitor.
"""

import uuid

import grpc
import pytest

from objectvision.v1 import detection_pb2

from .conftest import finished_job, submit_video_job
from .test_share_links import refusal, share, shown_image, store


async def share_job(harness, user, job_id: str, **request) -> detection_pb2.CreatedShareLink:
    return await harness.stub.CreateShareLink(
        detection_pb2.CreateShareLinkRequest(job_id=job_id, **request),
        metadata=harness.metadata(user),
        timeout=30,
    )


async def shown_video(harness, token: str) -> detection_pb2.SharedVideo:
    reply = await harness.stub.GetShared(detection_pb2.GetSharedRequest(token=token), timeout=30)
    assert reply.WhichOneof("shown") == "video"
    return reply.video


async def read_video(chunks) -> bytes:
    return b"".join([chunk.data async for chunk in chunks])


@pytest.fixture
async def waiting(make_harness):
    """A service whose jobs wait for the test to run them: no worker reads its job stream."""
    return await make_harness(
        JOB_WORKERS=0,
        JOB_STREAM=f"detection:jobs:shared:{uuid.uuid4().hex[:8]}",
        JOB_REQUEUE_AFTER_SECONDS=3600,
    )


async def test_a_completed_video_jobs_link_shows_its_counts_and_annotated_video_only(
    waiting, user, panned_video
):
    submitted = await submit_video_job(waiting, user, panned_video, track=True)
    code, error = await refusal(share_job(waiting, user, submitted.id))
    assert (code, error) == (grpc.StatusCode.FAILED_PRECONDITION, "failed_precondition")
    await waiting.service.processor.run(uuid.UUID(submitted.id))
    job = await finished_job(waiting, user, submitted.id)
    owners_video = await read_video(
        waiting.stub.GetAnnotatedVideo(
            detection_pb2.GetAnnotatedVideoRequest(job_id=job.id),
            metadata=waiting.metadata(user),
            timeout=60,
        )
    )

    created = await share_job(waiting, user, job.id, expires_in_days=2)
    seen = await shown_video(waiting, created.token)
    video = await read_video(
        waiting.stub.GetSharedVideo(
            detection_pb2.GetSharedVideoRequest(token=created.token), timeout=60
        )
    )

    assert (created.link.job_id, created.link.detection_id) == (job.id, "")
    assert seen.video.filename == "" and job.video.filename == "pan.mp4"
    expected = detection_pb2.VideoInfo()
    expected.CopyFrom(job.video)
    expected.filename = ""
    assert seen.video == expected
    assert dict(seen.class_counts) == dict(job.class_counts.counts) and seen.class_counts
    assert (seen.model, seen.completed_at) == (job.model, job.completed_at)
    assert seen.expires_at == created.link.expires_at
    assert video == owners_video and video[4:8] == b"ftyp"
    # What a job link is not: an image.
    assert await refusal(shown_image(waiting, created.token, annotated=True)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "share_link_shows_video",
    )
    listed = await waiting.stub.ListShareLinks(
        detection_pb2.ListShareLinksRequest(job_id=job.id),
        metadata=waiting.metadata(user),
        timeout=30,
    )
    assert [(link.id, link.views) for link in listed.links] == [(created.link.id, 1)]


async def test_what_cannot_be_shared_as_a_video_job_is_refused(detection, user, bus_jpg):
    batch = await detection.stub.SubmitJob(
        detection_pb2.SubmitJobRequest(images=[detection_pb2.ImageInput(data=bus_jpg)]),
        metadata=detection.metadata(user),
        timeout=30,
    )
    detection_id = await store(detection, user, bus_jpg)

    assert await refusal(share_job(detection, user, batch.id)) == (
        grpc.StatusCode.NOT_FOUND,
        "not_found",
    )
    assert await refusal(share_job(detection, user, str(uuid.uuid4()))) == (
        grpc.StatusCode.NOT_FOUND,
        "not_found",
    )
    both = share_job(detection, user, batch.id, detection_id=detection_id)
    assert await refusal(both) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument")
    neither = detection.stub.CreateShareLink(
        detection_pb2.CreateShareLinkRequest(), metadata=detection.metadata(user), timeout=30
    )
    assert await refusal(neither) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument")


async def test_a_video_jobs_link_redacts_only_as_the_job_did_and_ends_with_the_job(
    detection, user, panned_video, bus_jpg
):
    submitted = await submit_video_job(detection, user, panned_video, track=False)
    job = await finished_job(detection, user, submitted.id)
    with_redact = share_job(detection, user, job.id, redact=["person"])
    assert await refusal(with_redact) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument")
    created = await share_job(detection, user, job.id)
    image_link = await share(detection, user, await store(detection, user, bus_jpg))
    image_links_video = detection.stub.GetSharedVideo(
        detection_pb2.GetSharedVideoRequest(token=image_link.token), timeout=30
    )
    assert await refusal(read_video(image_links_video)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "share_link_shows_image",
    )

    await detection.stub.DeleteJob(
        detection_pb2.DeleteJobRequest(job_id=job.id), metadata=detection.metadata(user), timeout=30
    )

    gone = detection.stub.GetShared(detection_pb2.GetSharedRequest(token=created.token), timeout=30)
    assert await refusal(gone) == (grpc.StatusCode.NOT_FOUND, "share_link_not_found")
