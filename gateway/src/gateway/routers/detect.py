"""Object detection: one image now, many as a background job, the caller's history, each
stored image as uploaded or with its boxes drawn, and deleting a stored detection or a
finished job.

Images are uploaded as multipart/form-data, or sent by URL or as base64 in a JSON body
(gateway.detect_dependencies reads and checks them, and fetches the URLs); the detection
service judges the bytes themselves (format, completeness, pixel count) and its errors keep
their meaning: unsupported format 415, too large 413, corrupt 422, Triton down 503 with
Retry-After.

Every id is scoped to the caller by the service: another user's ids are 404, and so are
malformed ones (`{id:uuid}` routes), which also keeps `/history`, `/jobs` and `/jobs/...` from
ever being read as a detection id. The fixed paths are declared before `/{detection_id}`
all the same, so the order does not depend on the converter alone; `DELETE /jobs/{job_id}`
has two segments and can never be taken for `DELETE /{detection_id}`.
"""

import uuid
from typing import Annotated, Any

from fastapi import Query, Response
from fastapi.responses import StreamingResponse

from gateway.auth.dependencies import (
    DetectUpstream,
    RerunUpstream,
    ResultsReadUpstream,
    ResultsWriteUpstream,
    signed_in_router,
)
from gateway.dependencies import PageLimit, PageOffset, SettingsDep
from gateway.detect_dependencies import (
    BATCH_JSON_BODY,
    IMAGE_JSON_BODY,
    RERUN_JSON_BODY,
    BatchImages,
    HistoryFilterQuery,
    HistoryRerunRequest,
    JobRerunRequest,
    MetadataFilter,
    OneImage,
)
from gateway.errors import ApiError, error_responses
from gateway.schemas.detect import (
    JOB_STATUS_NUMBERS,
    Absent,
    DetectionListOut,
    DetectionOut,
    HistoryDeletionOut,
    HistorySummaryOut,
    JobKind,
    JobListOut,
    JobOut,
    JobStatus,
    StoredDetectionOut,
)
from objectvision.v1 import common_pb2, detection_pb2
from objectvision_common.limits import DEFAULT_PAGE_LIMIT, MAX_REDACTED_CLASSES

DETECT_PREFIX = "/api/v1/detect"
BATCH_PATH = f"{DETECT_PREFIX}/batch"
# Body limits (gateway.app.body_limits) allow this beyond the files themselves: boundaries,
# part headers and the parameter fields, plus PART_OVERHEAD_BYTES per file of a batch.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
PART_OVERHEAD_BYTES = 4 * 1024
IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp")
# A stored image's download (its owner's, or a share link's): the image, or why not.
IMAGE_DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The image. Annotated and redacted images are JPEG; originals keep "
        "their format.",
        "content": {
            content_type: {"schema": {"type": "string", "format": "binary"}}
            for content_type in IMAGE_CONTENT_TYPES
        },
    },
    **error_responses(404, 422),
}
# Marks the answer to a retried stored detection: what its first request stored (ADR 0047).
REPLAYED_HEADER = "Idempotent-Replayed"
# A submitted job's answer: 202 and where to follow it.
JOB_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted; the job runs in the background. Poll its Location.",
        "headers": {"Location": {"description": "The job's URL.", "schema": {"type": "string"}}},
    }
}

router = signed_in_router(DETECT_PREFIX, "detection")

# Classes whose objects an image is shown with pixelated (ADR 0049), repeatable.
RedactQuery = Annotated[
    tuple[str, ...],
    Query(
        max_length=MAX_REDACTED_CLASSES,
        description="A class (name or id) whose objects are pixelated, e.g. `redact=person`; "
        "repeat for more. Only what the model found is covered: an object it missed is not.",
    ),
]


def accepted_job(response: Response, job: detection_pb2.Job) -> JobOut:
    """A submitted job as the 202 answer, with its URL in Location."""
    response.headers["Location"] = f"{DETECT_PREFIX}/jobs/{job.id}"
    return JobOut.from_proto(job)


@router.post(
    "/image",
    summary="Detect objects in one image",
    responses={
        200: {
            "description": "The objects found.",
            "headers": {
                REPLAYED_HEADER: {
                    "description": "`true` when this answers a retry (the same "
                    "Idempotency-Key) with what the first request stored.",
                    "schema": {"type": "string"},
                }
            },
        },
        **error_responses(400, 404, 413, 415, 422, 429),
    },
    openapi_extra=IMAGE_JSON_BODY,
)
async def detect_image(
    upstream: DetectUpstream, settings: SettingsDep, upload: OneImage, response: Response
) -> DetectionOut:
    """Objects found in the image, in original-image pixels, highest confidence first.

    Answers when the model has run (30 s deadline by default); many images go to
    /detect/batch. Parameters may be query parameters or form fields, not both.

    Instead of a file, an application/json body may give the image by `url` (fetched by the
    gateway: public http(s) addresses only) or as `image_base64`, with the same parameters;
    the answer is the one an upload of the same bytes gets. A URL that may not be fetched is
    a 422 `image_url_forbidden`, one that gave no image a 422 `image_url_unreachable`.

    `metadata` (an object; in a multipart form, JSON text) is kept with the stored detection
    and filters the history (ADR 0045); with store=false it is a 422.

    With an `Idempotency-Key` header, a retry of a stored detection (the same key, after a
    timeout or a dropped connection) is answered with what the first request stored, marked
    `Idempotent-Replayed: true`, and nothing is detected, stored or counted again (ADR 0047).

    Callers take turns for the model; one with too many images already waiting for it gets a
    429 `too_many_waiting` with Retry-After. An account past its monthly quota gets a 429
    `quota_exceeded`, with Retry-After until the month ends (GET /api/v1/users/me/usage).
    """
    call = upstream.with_deadline(settings.detect_deadline_seconds)
    detected = await call.call(
        call.detection.Detect,
        detection_pb2.DetectRequest(
            images=[upload.image],
            params=upload.params,
            store=upload.store,
            metadata=upload.metadata,
            idempotency_key=upload.idempotency_key,
        ),
    )
    if detected.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return DetectionOut.from_proto(detected.results[0])


@router.post(
    "/batch",
    status_code=202,
    summary="Detect objects in many images as a background job",
    responses={**JOB_ACCEPTED, **error_responses(400, 404, 413, 415, 422, 429)},
    openapi_extra=BATCH_JSON_BODY,
)
async def submit_batch(
    response: Response, upstream: DetectUpstream, settings: SettingsDep, batch: BatchImages
) -> JobOut:
    """Stores the images and queues one job; each image's objects reach the history as the
    job runs. Progress: GET the Location, or the /api/v1/ws/jobs/{job_id} WebSocket.

    Each file gets its own result: a file refused from its header or its size (format,
    size, truncation) is a failed item of the job with its reason, and the request is refused
    only when no file is usable. Parameters may be query parameters or form fields, not both.

    Instead of files, an application/json body may list `images`, each by `url` or as
    `image_base64`; an image that cannot be fetched is a failed item like a refused file.

    The job's usable images must fit in the account's monthly quota, else the whole job is
    refused with 429 `quota_exceeded`; a job accepted always runs to the end. An account with
    MAX_UNFINISHED_JOBS_PER_USER jobs pending or processing gets 429 `too_many_jobs` until one
    ends. A retry with the same `idempotency_key` gets its job back, whatever the quota."""
    call = upstream.with_deadline(settings.detect_deadline_seconds)
    job = await call.call(
        call.detection.SubmitJob,
        detection_pb2.SubmitJobRequest(
            images=batch.images,
            params=batch.params,
            idempotency_key=batch.idempotency_key,
            refused=batch.refused,
            metadata=batch.metadata,
        ),
    )
    return accepted_job(response, job)


@router.get(
    "/jobs",
    summary="The caller's jobs, newest first",
    responses=error_responses(422),
)
async def list_jobs(
    upstream: ResultsReadUpstream,
    metadata: MetadataFilter,
    status: Annotated[JobStatus | Absent, Query(description="Only jobs in this status.")] = None,
    kind: Annotated[
        JobKind | Absent, Query(description="Only batch jobs (images) or only video jobs.")
    ] = None,
    rerun_of: Annotated[
        uuid.UUID | Absent,
        Query(description="Only the jobs that ran this job again (POST .../rerun, ADR 0058)."),
    ] = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
    offset: PageOffset = 0,
) -> JobListOut:
    """Batch and video jobs alike, each as GET /detect/jobs/{job_id} shows it but without
    its per-image `items` (up to MAX_BATCH_FILES a job): read one job for those.

    `metadata=camera:north-gate` keeps the jobs submitted with that pair in their metadata
    (ADR 0045); several such filters keep the jobs that hold them all."""
    listed = await upstream.call(
        upstream.detection.ListJobs,
        detection_pb2.ListJobsRequest(
            page=common_pb2.Page(limit=limit, offset=offset),
            status=JOB_STATUS_NUMBERS[status] if status else detection_pb2.JOB_STATUS_UNSPECIFIED,
            kind=kind or "",
            metadata=metadata,
            rerun_of=str(rerun_of) if rerun_of else "",
        ),
    )
    return JobListOut.from_proto(listed)


@router.get(
    "/jobs/{job_id:uuid}",
    summary="A batch job's status and per-image results",
    responses=error_responses(404, 422),
)
async def get_job(job_id: uuid.UUID, upstream: ResultsReadUpstream) -> JobOut:
    job = await upstream.call(
        upstream.detection.GetJob, detection_pb2.GetJobRequest(job_id=str(job_id))
    )
    return JobOut.from_proto(job)


@router.post(
    "/jobs/{job_id:uuid}/cancel",
    summary="Cancel a pending or processing job",
    responses=error_responses(404, 409, 422),
)
async def cancel_job(job_id: uuid.UUID, upstream: ResultsWriteUpstream) -> JobOut:
    """Images (or video frames) not yet processed are not processed; those done keep their
    results, and their detections stay in the history. The job ends `cancelled` and its
    final event, `job.cancelled`, goes to the WebSocket and to webhooks (no report email).

    Cancelling a cancelled job answers it unchanged; a completed or failed job is a 409."""
    job = await upstream.call(
        upstream.detection.CancelJob, detection_pb2.CancelJobRequest(job_id=str(job_id))
    )
    return JobOut.from_proto(job)


@router.post(
    "/history/rerun",
    status_code=202,
    summary="Run the stored images of the detections the history's filters keep as a new job",
    responses={**JOB_ACCEPTED, **error_responses(404, 409, 415, 422, 429)},
    openapi_extra=RERUN_JSON_BODY,
)
async def rerun_history(
    response: Response,
    upstream: RerunUpstream,
    settings: SettingsDep,
    filters: HistoryFilterQuery,
    rerun: HistoryRerunRequest,
) -> JobOut:
    """A new batch job over the images of your stored detections that the history's filters
    keep (the query parameters of GET /history: `class_name`, `since`, `until`, `metadata`,
    `filename`, `confidence_below`), oldest first, with nothing uploaded again (ADR 0058): a
    new model tried on last week's pictures of one camera, or the images a model was unsure
    of run through another. The detection parameters (`model`, thresholds, classes, ...) and
    the new job's `metadata` come in an optional application/json body; absent ones are the
    defaults.

    At most MAX_BATCH_FILES detections: more is a 422 that says how many the filters keep
    (narrow them); none is a 409. Admitted as a submission (quota, unfinished jobs,
    Idempotency-Key). Without a filter, the whole history is taken (within that limit)."""
    call = upstream.with_deadline(settings.detect_deadline_seconds)
    job = await call.call(
        call.detection.RerunHistory,
        detection_pb2.RerunHistoryRequest(
            **filters.request_fields(),
            params=rerun.params,
            idempotency_key=rerun.idempotency_key,
            job_metadata=rerun.metadata,
        ),
    )
    return accepted_job(response, job)


@router.post(
    "/jobs/{job_id:uuid}/rerun",
    status_code=202,
    summary="Run a job's stored images or video again, with another model or other parameters",
    responses={**JOB_ACCEPTED, **error_responses(404, 409, 415, 422, 429)},
    openapi_extra=RERUN_JSON_BODY,
)
async def rerun_job(
    job_id: uuid.UUID,
    response: Response,
    upstream: RerunUpstream,
    settings: SettingsDep,
    rerun: JobRerunRequest,
) -> JobOut:
    """A new job over what the job stored, with nothing uploaded again (ADR 0058): a batch
    job's images, in their order and under their names, or a video job's video with its
    sampling, tracking, counting lines and zones and pixelated classes. Compare two models on
    the same pictures (then score both against labels, POST .../evaluation), or run a job again
    after a new model version was loaded. The new job's `rerun_of` names this one.

    Each parameter given, as a query parameter or in an application/json body, replaces the
    job's own; the rest are the job's, its classes carried to another model by name (a class
    that model lacks is a 422). `metadata` absent: the job's own. The job may still be running;
    its files refused at submission are left out, and so are images deleted since.

    Admitted as a submission: the images count against the monthly quota (429
    `quota_exceeded`), MAX_UNFINISHED_JOBS_PER_USER applies (429 `too_many_jobs`), and a retry
    with the same Idempotency-Key gets its job back. A batch job with no stored image left, or a
    video gone from storage, is a 409."""
    call = upstream.with_deadline(settings.detect_deadline_seconds)
    job = await call.call(
        call.detection.RerunJob,
        detection_pb2.RerunJobRequest(
            job_id=str(job_id),
            params=rerun.params,
            idempotency_key=rerun.idempotency_key,
            metadata=rerun.metadata,
        ),
    )
    return accepted_job(response, job)


@router.delete(
    "/jobs/{job_id:uuid}",
    status_code=204,
    response_class=Response,
    summary="Delete a finished job and everything it stored",
    responses={
        204: {"description": "Deleted: the job, its images, detections and any video are gone."},
        **error_responses(404, 409, 422),
    },
)
async def delete_job(job_id: uuid.UUID, upstream: ResultsWriteUpstream) -> Response:
    """Removes a completed, failed or cancelled job with its items, their detections (from
    the history and exports too) and stored images, and a video job's upload, frames and
    annotated video.

    A job still pending or processing is a 409: cancel it first
    (POST /api/v1/detect/jobs/{job_id}/cancel), then delete it. Another user's job is a 404,
    as a missing one; so is a job already deleted."""
    await upstream.call(
        upstream.detection.DeleteJob, detection_pb2.DeleteJobRequest(job_id=str(job_id))
    )
    return Response(status_code=204)


@router.get(
    "/history",
    summary="The caller's detections, newest first",
    responses=error_responses(422),
)
async def list_history(
    upstream: ResultsReadUpstream,
    filters: HistoryFilterQuery,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
    offset: PageOffset = 0,
) -> DetectionListOut:
    """The filters combine: all must hold. `metadata=camera:north-gate` keeps the detections
    stored with that pair (ADR 0045): an image's own metadata from /detect/image, or its job's
    for an image of a batch job; several such filters keep the detections that hold them all.
    `filename=gate-3` keeps those whose file name contains that text, in any case."""
    listed = await upstream.call(
        upstream.detection.ListDetections,
        detection_pb2.ListDetectionsRequest(
            page=common_pb2.Page(limit=limit, offset=offset), **filters.request_fields()
        ),
    )
    return DetectionListOut.from_proto(listed)


@router.get(
    "/history/summary",
    summary="How many of the caller's detections match, and their objects per class",
    responses=error_responses(422),
)
async def summarize_history(
    upstream: ResultsReadUpstream, filters: HistoryFilterQuery
) -> HistorySummaryOut:
    """The history's filters, counted rather than listed: how many detections match and how
    many objects of each class they hold, e.g. the people one camera saw today
    (`metadata=camera:north-gate&since=...`). With `class_name`, the detections holding
    that class are counted, with every class of object in them."""
    summary = await upstream.call(
        upstream.detection.SummarizeDetections,
        detection_pb2.SummarizeDetectionsRequest(**filters.request_fields()),
    )
    return HistorySummaryOut.from_proto(summary)


@router.delete(
    "/history",
    summary="Delete the caller's detections that the filters keep, with their images",
    responses=error_responses(422),
)
async def delete_history(
    upstream: ResultsWriteUpstream,
    filters: HistoryFilterQuery,
    everything: Annotated[
        bool,
        Query(
            alias="all",
            description="Needed, and only allowed to matter, when no filter is given: "
            "deletes the whole history. Without a filter and without it: 422.",
        ),
    ] = False,
) -> HistoryDeletionOut:
    """The history's filters (as for listing it) choose what goes, e.g. every image one
    camera stored last week (`metadata=camera:north-gate&since=...&until=...`). Each
    detection goes as `DELETE /detect/{id}` takes one: its objects, its stored image, its
    item in a finished job and the result cache's answers for the image. At most 5,000 per
    call, in chunks that each commit with their files; `more` says to call again, and a call
    interrupted part-way can simply be repeated. Detections of jobs still pending or
    processing stay, counted in `kept_in_unfinished_jobs`."""
    if filters.is_empty and not everything:
        raise ApiError.invalid(
            ["query", "all"],
            "no filter given: this would delete your whole history; give a filter, or"
            " all=true to delete everything",
        )
    deletion = await upstream.call(
        upstream.detection.DeleteDetections,
        detection_pb2.DeleteDetectionsRequest(everything=everything, **filters.request_fields()),
    )
    return HistoryDeletionOut.from_proto(deletion)


@router.get(
    "/{detection_id:uuid}",
    summary="One stored detection",
    responses=error_responses(404, 422),
)
async def get_detection(
    detection_id: uuid.UUID, upstream: ResultsReadUpstream
) -> StoredDetectionOut:
    detection = await upstream.call(
        upstream.detection.GetDetection,
        detection_pb2.GetDetectionRequest(detection_id=str(detection_id)),
    )
    return StoredDetectionOut.from_detection(detection)


@router.delete(
    "/{detection_id:uuid}",
    status_code=204,
    response_class=Response,
    summary="Delete a stored detection and its image",
    responses={
        204: {"description": "Deleted: the detection, its objects and its image are gone."},
        **error_responses(404, 409, 422),
    },
)
async def delete_detection(detection_id: uuid.UUID, upstream: ResultsWriteUpstream) -> Response:
    """Removes the detection, its objects and its stored image: it leaves the history and
    exports, and the result cache forgets the image's answers. One made by a finished batch
    job also leaves that job's items (the job's counts still say what it processed).

    One made by a job still pending or processing is a 409: cancel the job or wait for it to
    finish. Another user's detection is a 404, as a missing one; so is one already deleted."""
    await upstream.call(
        upstream.detection.DeleteDetection,
        detection_pb2.DeleteDetectionRequest(detection_id=str(detection_id)),
    )
    return Response(status_code=204)


@router.get(
    "/{detection_id:uuid}/image",
    summary="A stored image, with its boxes drawn or as uploaded",
    response_class=StreamingResponse,
    responses=IMAGE_DOWNLOAD_RESPONSES,
)
async def get_detection_image(
    detection_id: uuid.UUID,
    upstream: ResultsReadUpstream,
    settings: SettingsDep,
    redact: RedactQuery = (),
    annotated: Annotated[
        bool, Query(description="Draw the detected boxes (JPEG); false: the upload as it was.")
    ] = True,
) -> StreamingResponse:
    """Streamed as the service sends it. The first chunk is awaited before answering, so a
    missing detection is a real 404 rather than a 200 that breaks off. With `redact`, the
    objects of those classes are pixelated (ADR 0049), and the answer is JPEG either way."""
    download = await upstream.with_deadline(settings.detect_deadline_seconds).download(
        upstream.detection.GetAnnotatedImage,
        detection_pb2.GetAnnotatedImageRequest(
            detection_id=str(detection_id), annotated=annotated, redact=redact
        ),
        what="image",
    )
    return StreamingResponse(
        download.body,
        media_type=download.first.content_type or "application/octet-stream",
        # The original is the caller's own upload: never let a browser sniff it into HTML.
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private"},
    )
