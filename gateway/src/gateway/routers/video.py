"""Video files as background jobs (ADR 0016), as Rekognition's StartLabelDetection: upload a
video, get a job; follow it on the jobs routes and WebSocket batch jobs use; read its
per-frame detections with their timestamps; download the annotated video.

The gateway streams the upload to the detection service in chunks (never the whole file in
one message, nor in memory: Starlette spools uploads to disk), after the checks it can make
alone (multipart, the byte limit, parameters). The service judges the bytes: container and
codec before decoding, frame size, duration. Its errors keep their meaning: not a supported
video 415, too large or too long 413, corrupt 422.
"""

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, File, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile as StarletteUploadFile

from gateway.auth.dependencies import UserUpstream
from gateway.dependencies import SettingsDep
from gateway.errors import SERVER_ERRORS, ApiError, error_responses
from gateway.routers import detect
from gateway.schemas.detect import Absent, JobOut
from gateway.schemas.video import DetectVideoForm, VideoFramesOut, VideoSamplingIn
from objectvision.v1 import common_pb2, detection_pb2

logger = logging.getLogger(__name__)

VIDEO_PATH = f"{detect.DETECT_PREFIX}/video"
# The upload goes to the service in chunks of this size (one gRPC message each).
CHUNK_BYTES = 1024 * 1024
MAX_FRAMES_PAGE = 1000

router = APIRouter(
    prefix=detect.DETECT_PREFIX, tags=["video"], responses=error_responses(401, *SERVER_ERRORS)
)

SamplingQuery = Annotated[VideoSamplingIn, Query()]


def _sampling(query: VideoSamplingIn, form: VideoSamplingIn) -> detection_pb2.VideoSampling:
    fps = detect._one_of("fps", query.fps, form.fps)
    every = detect._one_of("every", query.every, form.every)
    if fps is not None and every is not None:
        raise detect._invalid(["body", "every"], "give fps or every, not both")
    return detection_pb2.VideoSampling(fps=fps or 0.0, every=every or 0)


async def _upload_messages(
    header: detection_pb2.VideoUploadHeader, upload: StarletteUploadFile
) -> AsyncIterator[detection_pb2.VideoUpload]:
    """The header, then the spooled file in chunks: one chunk in memory at a time."""
    yield detection_pb2.VideoUpload(header=header)
    await upload.seek(0)
    while chunk := await upload.read(CHUNK_BYTES):
        yield detection_pb2.VideoUpload(chunk=chunk)


@router.post(
    "/video",
    status_code=202,
    summary="Detect objects in a video file as a background job",
    responses={
        202: {
            "description": "Accepted; the job runs in the background. Poll its Location.",
            "headers": {
                "Location": {"description": "The job's URL.", "schema": {"type": "string"}}
            },
        },
        **error_responses(400, 404, 409, 413, 415, 422),
    },
)
async def submit_video(
    request: Request,
    response: Response,
    upstream: UserUpstream,
    _: detect.MultipartBody,
    settings: SettingsDep,
    form: Annotated[DetectVideoForm, File()],
    query: SamplingQuery,
    idempotency_key: Annotated[
        detect.IdempotencyKey | Absent,
        Header(
            alias="Idempotency-Key",
            description="Retrying a submission with the same key returns the first job "
            "instead of making a new one.",
        ),
    ] = None,
) -> JobOut:
    """An MP4, MOV or WebM video (H.264, HEVC, VP8, VP9, AV1 or MPEG-4) becomes one job.

    Its container and codec are checked before anything is decoded, then its sampled frames
    (`fps` per second, or `every` n-th frame; default 1 per second) are detected as the job
    runs. Progress: GET the Location, or the /api/v1/ws/jobs/{job_id} WebSocket; per-frame
    detections with timestamps at /jobs/{job_id}/frames; the annotated video at
    /jobs/{job_id}/annotated once completed. Parameters may be query parameters or form
    fields, not both."""
    uploads = await detect._files(request, ("file",))
    if len(uploads) != 1:
        raise detect._invalid(["body", "file"], f"send exactly one video; got {len(uploads)}")
    upload = uploads[0]
    size = upload.size if upload.size is not None else 0
    if size > settings.max_video_bytes:
        name = detect._shown_name(upload, 0)
        raise ApiError(
            413,
            "payload_too_large",
            f"video {name} is {detect._mib(size)}; at most"
            f" {detect._mib(settings.max_video_bytes)} per video are accepted",
        )
    header = detection_pb2.VideoUploadHeader(
        filename=detect._utf8(upload.filename),
        params=detect._params(query, form),
        sampling=_sampling(query, form),
        idempotency_key=idempotency_key or "",
        size_bytes=size,
    )
    call = dataclasses.replace(upstream, deadline_seconds=settings.video_deadline_seconds)
    job = await call.detection.SubmitVideoJob(
        _upload_messages(header, upload), metadata=call.metadata, timeout=call.deadline_seconds
    )
    response.headers["Location"] = f"{detect.DETECT_PREFIX}/jobs/{job.id}"
    return JobOut.from_proto(job)


@router.get(
    "/jobs/{job_id:uuid}/frames",
    summary="A video job's per-frame detections with timestamps",
    responses=error_responses(404, 422),
)
async def list_video_frames(
    job_id: uuid.UUID,
    upstream: UserUpstream,
    limit: Annotated[int, Query(ge=1, le=MAX_FRAMES_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=detect.MAX_OFFSET)] = 0,
) -> VideoFramesOut:
    """The frames detected so far, in frame order (all of them once the job completed);
    boxes in the video's pixels. 404 for a job that is not the caller's or not a video job."""
    listed = await upstream.call(
        upstream.detection.ListVideoFrames,
        detection_pb2.ListVideoFramesRequest(
            job_id=str(job_id), page=common_pb2.Page(limit=limit, offset=offset)
        ),
    )
    return VideoFramesOut.from_proto(str(job_id), listed)


async def _rest_of(
    first: detection_pb2.VideoChunk, chunks: AsyncIterator[detection_pb2.VideoChunk], call: Any
) -> AsyncIterator[bytes]:
    """The body after the headers are sent: a failure now can only cut it short (logged)."""
    try:
        yield first.data
        async for chunk in chunks:
            yield chunk.data
    except grpc.aio.AioRpcError as exc:
        logger.warning("video stream failed midway", extra={"grpc_code": exc.code().name})
        raise
    finally:
        call.cancel()


@router.get(
    "/jobs/{job_id:uuid}/annotated",
    summary="A completed video job's annotated video",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The video with the detected boxes drawn on its sampled frames "
            "(H.264 in MP4), at the frames' original timestamps.",
            "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(404, 409, 422),
    },
)
async def get_annotated_video(
    job_id: uuid.UUID, upstream: UserUpstream, settings: SettingsDep
) -> StreamingResponse:
    """409 while the job runs (or when it failed); streamed as the service reads it. The
    first chunk is awaited before answering, so errors are real statuses, not cut bodies."""
    call = upstream.detection.GetAnnotatedVideo(
        detection_pb2.GetAnnotatedVideoRequest(job_id=str(job_id)),
        metadata=upstream.metadata,
        timeout=settings.video_deadline_seconds,
    )
    chunks = aiter(call)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        call.cancel()
        logger.error("the detection service sent an empty video")
        raise ApiError(500, "internal", "internal error") from None
    except BaseException:
        call.cancel()
        raise
    return StreamingResponse(
        _rest_of(first, chunks, call),
        media_type=first.content_type or "video/mp4",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private",
            "Content-Disposition": f'attachment; filename="{job_id}-annotated.mp4"',
        },
    )
