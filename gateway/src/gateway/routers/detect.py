"""Object detection: one image now, many as a background job, the caller's history, and each
stored image as uploaded or with its boxes drawn.

Images are uploaded as multipart/form-data; the detection parameters may come as query
parameters or as form fields (not both). The gateway checks what it can without the service
(content type, parameter ranges, file counts and sizes); the detection service judges the
bytes themselves (format, completeness, pixel count) and its errors keep their meaning:
unsupported format 415, too large 413, corrupt 422, Triton down 503 with Retry-After.

Every id is scoped to the caller by the service: another user's ids are 404, and so are
malformed ones (`{id:uuid}` routes), which also keeps `/history` and `/jobs/...` from ever
being read as a detection id.
"""

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import grpc
from fastapi import APIRouter, Depends, File, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import StringConstraints
from starlette.datastructures import UploadFile as StarletteUploadFile

from gateway.auth.dependencies import UserUpstream
from gateway.dependencies import SettingsDep
from gateway.errors import SERVER_ERRORS, ApiError, ErrorDetail, error_responses
from gateway.schemas.detect import (
    Absent,
    DetectBatchForm,
    DetectImageForm,
    DetectionListOut,
    DetectionOut,
    DetectionParamsIn,
    JobOut,
    StoredDetectionOut,
)
from gateway.upstream import Upstream
from objectvision.v1 import common_pb2, detection_pb2

logger = logging.getLogger(__name__)

T = TypeVar("T")

DETECT_PREFIX = "/api/v1/detect"
BATCH_PATH = f"{DETECT_PREFIX}/batch"
# Body limits (gateway.app.body_limits) allow this beyond the files themselves: boundaries,
# part headers and the parameter fields, plus PART_OVERHEAD_BYTES per file of a batch.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
PART_OVERHEAD_BYTES = 4 * 1024
MAX_CLASS_NAME_CHARS = 100
MAX_PAGE_LIMIT = 100
DEFAULT_PAGE_LIMIT = 20
MAX_OFFSET = 2**31 - 1  # Page.offset is an int32
MAX_IDEMPOTENCY_KEY_CHARS = 200
IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp")
_PARAMS = tuple(DetectionParamsIn.model_fields)
# Printable ASCII without surrounding spaces: what HTTP carries unchanged.
IdempotencyKey = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=MAX_IDEMPOTENCY_KEY_CHARS, pattern=r"^[!-~](?:[ -~]*[!-~])?$"
    ),
]
ClassName = Annotated[str, StringConstraints(max_length=MAX_CLASS_NAME_CHARS, pattern=r"\S")]
_MAX_SHOWN_FILENAME_CHARS = 100

router = APIRouter(
    prefix=DETECT_PREFIX, tags=["detection"], responses=error_responses(401, *SERVER_ERRORS)
)


def _invalid(loc: Sequence[str | int], message: str) -> ApiError:
    """A 422 in the shape of FastAPI's own validation errors."""
    detail = ErrorDetail(loc=list(loc), msg=message, type="value_error")
    where = ".".join(str(part) for part in loc)
    return ApiError(
        422, "validation_error", f"invalid request: {where}: {message}", details=[detail]
    )


async def require_multipart(request: Request) -> None:
    """415 for anything but multipart/form-data, where an empty form would otherwise read
    as 'file missing'. Taken after authentication, so an anonymous caller gets 401 first."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "upload images as multipart/form-data")


MultipartBody = Annotated[None, Depends(require_multipart)]
QueryParams = Annotated[DetectionParamsIn, Query()]


def _one_of(name: str, query: T | None, form: T | None) -> T | None:
    if query is not None and form is not None:
        raise _invalid(["body", name], f"give {name} once, as a query parameter or a form field")
    return query if query is not None else form


def _params(query: DetectionParamsIn, form: DetectionParamsIn) -> detection_pb2.DetectionParams:
    """The parameters from wherever they came; zeros mean the service defaults."""
    chosen = DetectionParamsIn(
        **{name: _one_of(name, getattr(query, name), getattr(form, name)) for name in _PARAMS}
    )
    return detection_pb2.DetectionParams(
        confidence=chosen.confidence or 0.0,
        iou=chosen.iou or 0.0,
        classes=chosen.class_list(),
        max_detections=chosen.max_detections or 0,
        model=chosen.model or "",
    )


async def _files(request: Request, fields: Sequence[str]) -> list[StarletteUploadFile]:
    """Every file part under these names, in upload order. Read from the parsed form (cached
    on the request) because a model field keeps only one of two parts named `file`."""
    form = await request.form()
    return [
        value
        for name, value in form.multi_items()
        if name in fields and isinstance(value, StarletteUploadFile)
    ]


def _shown_name(upload: StarletteUploadFile, position: int) -> str:
    name = (upload.filename or "").strip()[:_MAX_SHOWN_FILENAME_CHARS]
    return repr(name) if name else f"#{position + 1}"


def _mib(size: int) -> str:
    """Sizes as people read them, the same way for every limit."""
    if size < 2**10:
        return f"{size} bytes"
    if size < 2**20:
        return f"{size / 2**10:.1f} KiB"
    return f"{size / 2**20:.1f} MiB"


def _too_large(upload: StarletteUploadFile, position: int, size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"image {_shown_name(upload, position)} is {_mib(size)}; "
        f"at most {_mib(limit)} per image are accepted",
    )


def _utf8(text: str | None) -> str:
    """Proto strings must be valid UTF-8; the service sanitises names for display."""
    return (text or "").encode("utf-8", "replace").decode("utf-8")


async def _image_input(
    upload: StarletteUploadFile, position: int, max_bytes: int
) -> detection_pb2.ImageInput:
    """The file's bytes for the service; 413 unread when the parser already counted too many."""
    if upload.size is not None and upload.size > max_bytes:
        raise _too_large(upload, position, upload.size, max_bytes)
    data = await upload.read()
    if len(data) > max_bytes:
        raise _too_large(upload, position, len(data), max_bytes)
    return detection_pb2.ImageInput(
        data=data, filename=_utf8(upload.filename), content_type=_utf8(upload.content_type)
    )


def _image_upstream(upstream: Upstream, deadline_seconds: float) -> Upstream:
    """The same caller with the deadline of calls that decode images and run the model."""
    return dataclasses.replace(upstream, deadline_seconds=deadline_seconds)


_STORE = DetectImageForm.model_fields["store"].description


@router.post(
    "/image",
    summary="Detect objects in one image",
    responses=error_responses(400, 404, 413, 415, 422),
)
async def detect_image(
    request: Request,
    upstream: UserUpstream,
    _: MultipartBody,
    settings: SettingsDep,
    form: Annotated[DetectImageForm, File()],
    query: QueryParams,
    store: Annotated[bool | Absent, Query(description=_STORE)] = None,
) -> DetectionOut:
    """Objects found in the image, in original-image pixels, highest confidence first.

    Answers when the model has run (30 s deadline by default); many images go to
    /detect/batch. Parameters may be query parameters or form fields, not both.
    """
    uploads = await _files(request, ("file", "files"))
    if len(uploads) != 1:
        where = "files" if form.file is None and form.files else "file"
        raise _invalid(["body", where], f"send exactly one image; got {len(uploads)}")
    params = _params(query, form)
    keep = _one_of("store", store, form.store)
    image = await _image_input(uploads[0], 0, settings.max_upload_bytes)
    call = _image_upstream(upstream, settings.detect_deadline_seconds)
    detected = await call.call(
        call.detection.Detect,
        detection_pb2.DetectRequest(
            images=[image], params=params, store=True if keep is None else keep
        ),
    )
    return DetectionOut.from_proto(detected.results[0])


@router.post(
    "/batch",
    status_code=202,
    summary="Detect objects in many images as a background job",
    responses={
        202: {
            "description": "Accepted; the job runs in the background. Poll its Location.",
            "headers": {
                "Location": {"description": "The job's URL.", "schema": {"type": "string"}}
            },
        },
        **error_responses(400, 404, 413, 415, 422),
    },
)
async def submit_batch(
    request: Request,
    response: Response,
    upstream: UserUpstream,
    _: MultipartBody,
    settings: SettingsDep,
    form: Annotated[DetectBatchForm, File()],
    query: QueryParams,
    idempotency_key: Annotated[
        IdempotencyKey | Absent,
        Header(
            alias="Idempotency-Key",
            description="Retrying a submission with the same key returns the first job "
            "instead of making a new one.",
        ),
    ] = None,
) -> JobOut:
    """Stores the images and queues one job; each image's objects reach the history as the
    job runs. Progress: GET the Location, or the /api/v1/ws/jobs/{job_id} WebSocket.

    Each file gets its own result: a file refused from its header or its size (format,
    size, truncation) is a failed item of the job with its reason, and the request is refused
    only when no file is usable. Parameters may be query parameters or form fields, not both."""
    uploads = await _files(request, ("files",))
    if not 1 <= len(uploads) <= settings.max_batch_files:
        raise _invalid(
            ["body", "files"], f"send 1 to {settings.max_batch_files} images; got {len(uploads)}"
        )
    params = _params(query, form)
    images: list[detection_pb2.ImageInput] = []
    refused: list[detection_pb2.RefusedImage] = []
    for position, upload in enumerate(uploads):
        try:
            images.append(await _image_input(upload, position, settings.max_upload_bytes))
        except ApiError as error:
            # One oversized file fails its own item; the job reports it with the reason.
            reason = f"{error.message}; left out of the job"
            refused.append(
                detection_pb2.RefusedImage(filename=_utf8(upload.filename), reason=reason)
            )
            if len(refused) == len(uploads):
                raise
    total_bytes = sum(len(image.data) for image in images)
    if total_bytes > settings.max_batch_bytes:
        raise ApiError(
            413,
            "payload_too_large",
            f"the images are {_mib(total_bytes)} together; at most"
            f" {_mib(settings.max_batch_bytes)} per batch are accepted: split them into"
            " several jobs",
        )
    call = _image_upstream(upstream, settings.detect_deadline_seconds)
    job = await call.call(
        call.detection.SubmitJob,
        detection_pb2.SubmitJobRequest(
            images=images,
            params=params,
            idempotency_key=idempotency_key or "",
            refused=refused,
        ),
    )
    response.headers["Location"] = f"{DETECT_PREFIX}/jobs/{job.id}"
    return JobOut.from_proto(job)


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


def _timestamp(value: datetime | None, name: str) -> Timestamp | None:
    """A query datetime as a protobuf Timestamp; one without a zone is taken as UTC."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    stamp = Timestamp()
    try:
        stamp.FromDatetime(aware.astimezone(UTC))
    except (OverflowError, ValueError):
        raise _invalid(["query", name], "the time is out of range") from None
    return stamp


@router.get(
    "/history",
    summary="The caller's detections, newest first",
    responses=error_responses(422),
)
async def list_history(
    upstream: UserUpstream,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    class_name: Annotated[
        ClassName | Absent,
        Query(description="Only detections with an object of this class (name or id)."),
    ] = None,
    since: Annotated[
        datetime | Absent,
        Query(description="Created at or after this time (ISO 8601; no zone means UTC)."),
    ] = None,
    until: Annotated[
        datetime | Absent,
        Query(description="Created before this time (ISO 8601; no zone means UTC)."),
    ] = None,
) -> DetectionListOut:
    since_stamp, until_stamp = _timestamp(since, "since"), _timestamp(until, "until")
    if since_stamp and until_stamp and since_stamp.ToDatetime() > until_stamp.ToDatetime():
        raise _invalid(["query", "since"], "since is after until")
    listed = await upstream.call(
        upstream.detection.ListDetections,
        detection_pb2.ListDetectionsRequest(
            page=common_pb2.Page(limit=limit, offset=offset),
            class_filter=(class_name or "").strip(),
            since=since_stamp,
            until=until_stamp,
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


async def _rest_of(
    first: detection_pb2.ImageChunk, chunks: AsyncIterator[detection_pb2.ImageChunk], call: Any
) -> AsyncIterator[bytes]:
    """The body after the headers are sent: a failure now can only cut the response short,
    so it is logged and re-raised (the client sees an incomplete body, never a wrong one)."""
    try:
        yield first.data
        async for chunk in chunks:
            yield chunk.data
    except grpc.aio.AioRpcError as exc:
        logger.warning("image stream failed midway", extra={"grpc_code": exc.code().name})
        raise
    finally:
        call.cancel()


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
    call = upstream.detection.GetAnnotatedImage(
        detection_pb2.GetAnnotatedImageRequest(detection_id=str(detection_id), annotated=annotated),
        metadata=upstream.metadata,
        timeout=settings.detect_deadline_seconds,
    )
    chunks = aiter(call)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        call.cancel()
        logger.error("the detection service sent an empty image")
        raise ApiError(500, "internal", "internal error") from None
    except BaseException:
        call.cancel()
        raise
    return StreamingResponse(
        _rest_of(first, chunks, call),
        media_type=first.content_type or "application/octet-stream",
        # The original is the caller's own upload: never let a browser sniff it into HTML.
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private"},
    )
