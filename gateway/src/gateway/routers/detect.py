"""Object detection: one image now, many as a background job, the caller's history, and each
stored image as uploaded or with its boxes drawn.

Images are uploaded as multipart/form-data (gateway.detect_dependencies reads and checks the
upload); the detection service judges the bytes themselves (format, completeness, pixel count)
and its errors keep their meaning: unsupported format 415, too large 413, corrupt 422, Triton
down 503 with Retry-After.

Every id is scoped to the caller by the service: another user's ids are 404, and so are
malformed ones (`{id:uuid}` routes), which also keeps `/history` and `/jobs/...` from ever
being read as a detection id.
"""

import uuid
from typing import Annotated, Any

from fastapi import Query, Response
from fastapi.responses import StreamingResponse

from gateway.auth.dependencies import UserUpstream, signed_in_router
from gateway.dependencies import SettingsDep
from gateway.detect_dependencies import BatchImages, HistoryFilterQuery, OneImage
from gateway.errors import error_responses
from gateway.schemas.detect import DetectionListOut, DetectionOut, JobOut, StoredDetectionOut
from objectvision.v1 import common_pb2, detection_pb2
from objectvision_common.limits import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT

DETECT_PREFIX = "/api/v1/detect"
BATCH_PATH = f"{DETECT_PREFIX}/batch"
# Body limits (gateway.app.body_limits) allow this beyond the files themselves: boundaries,
# part headers and the parameter fields, plus PART_OVERHEAD_BYTES per file of a batch.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
PART_OVERHEAD_BYTES = 4 * 1024
MAX_OFFSET = 2**31 - 1  # Page.offset is an int32
IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp")
# A submitted job's answer: 202 and where to follow it.
JOB_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted; the job runs in the background. Poll its Location.",
        "headers": {"Location": {"description": "The job's URL.", "schema": {"type": "string"}}},
    }
}

router = signed_in_router(DETECT_PREFIX, "detection")


def accepted_job(response: Response, job: detection_pb2.Job) -> JobOut:
    """A submitted job as the 202 answer, with its URL in Location."""
    response.headers["Location"] = f"{DETECT_PREFIX}/jobs/{job.id}"
    return JobOut.from_proto(job)


@router.post(
    "/image",
    summary="Detect objects in one image",
    responses=error_responses(400, 404, 413, 415, 422),
)
async def detect_image(
    upstream: UserUpstream, settings: SettingsDep, upload: OneImage
) -> DetectionOut:
    """Objects found in the image, in original-image pixels, highest confidence first.

    Answers when the model has run (30 s deadline by default); many images go to
    /detect/batch. Parameters may be query parameters or form fields, not both.
    """
    call = upstream.with_deadline(settings.detect_deadline_seconds)
    detected = await call.call(
        call.detection.Detect,
        detection_pb2.DetectRequest(
            images=[upload.image], params=upload.params, store=upload.store
        ),
    )
    return DetectionOut.from_proto(detected.results[0])


@router.post(
    "/batch",
    status_code=202,
    summary="Detect objects in many images as a background job",
    responses={**JOB_ACCEPTED, **error_responses(400, 404, 413, 415, 422)},
)
async def submit_batch(
    response: Response, upstream: UserUpstream, settings: SettingsDep, batch: BatchImages
) -> JobOut:
    """Stores the images and queues one job; each image's objects reach the history as the
    job runs. Progress: GET the Location, or the /api/v1/ws/jobs/{job_id} WebSocket.

    Each file gets its own result: a file refused from its header or its size (format,
    size, truncation) is a failed item of the job with its reason, and the request is refused
    only when no file is usable. Parameters may be query parameters or form fields, not both."""
    call = upstream.with_deadline(settings.detect_deadline_seconds)
    job = await call.call(
        call.detection.SubmitJob,
        detection_pb2.SubmitJobRequest(
            images=batch.images,
            params=batch.params,
            idempotency_key=batch.idempotency_key,
            refused=batch.refused,
        ),
    )
    return accepted_job(response, job)


@router.get(
    "/jobs/{job_id:uuid}",
    summary="A batch job's status and per-image results",
    responses=error_responses(404, 422),
)
async def get_job(job_id: uuid.UUID, upstream: UserUpstream) -> JobOut:
    job = await upstream.call(
        upstream.detection.GetJob, detection_pb2.GetJobRequest(job_id=str(job_id))
    )
    return JobOut.from_proto(job)


@router.get(
    "/history",
    summary="The caller's detections, newest first",
    responses=error_responses(422),
)
async def list_history(
    upstream: UserUpstream,
    filters: HistoryFilterQuery,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DetectionListOut:
    listed = await upstream.call(
        upstream.detection.ListDetections,
        detection_pb2.ListDetectionsRequest(
            page=common_pb2.Page(limit=limit, offset=offset),
            class_filter=filters.class_filter,
            since=filters.since,
            until=filters.until,
        ),
    )
    return DetectionListOut.from_proto(listed)


@router.get(
    "/{detection_id:uuid}",
    summary="One stored detection",
    responses=error_responses(404, 422),
)
async def get_detection(detection_id: uuid.UUID, upstream: UserUpstream) -> StoredDetectionOut:
    detection = await upstream.call(
        upstream.detection.GetDetection,
        detection_pb2.GetDetectionRequest(detection_id=str(detection_id)),
    )
    return StoredDetectionOut.from_detection(detection)


@router.get(
    "/{detection_id:uuid}/image",
    summary="A stored image, with its boxes drawn or as uploaded",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The image. Annotated images are JPEG; originals keep their format.",
            "content": {
                content_type: {"schema": {"type": "string", "format": "binary"}}
                for content_type in IMAGE_CONTENT_TYPES
            },
        },
        **error_responses(404, 422),
    },
)
async def get_detection_image(
    detection_id: uuid.UUID,
    upstream: UserUpstream,
    settings: SettingsDep,
    annotated: Annotated[
        bool, Query(description="Draw the detected boxes (JPEG); false: the upload as it was.")
    ] = True,
) -> StreamingResponse:
    """Streamed as the service sends it. The first chunk is awaited before answering, so a
    missing detection is a real 404 rather than a 200 that breaks off."""
    download = await upstream.with_deadline(settings.detect_deadline_seconds).download(
        upstream.detection.GetAnnotatedImage,
        detection_pb2.GetAnnotatedImageRequest(detection_id=str(detection_id), annotated=annotated),
        what="image",
    )
    return StreamingResponse(
        download.body,
        media_type=download.first.content_type or "application/octet-stream",
        # The original is the caller's own upload: never let a browser sniff it into HTML.
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private"},
    )
