"""Video files as background jobs (ADR 0016), as Rekognition's StartLabelDetection: upload a
video, get a job; follow it on the jobs routes and WebSocket batch jobs use; read its
per-frame detections with their timestamps; download the annotated video.

The gateway streams the upload to the detection service in chunks (never the whole file in
one message, nor in memory: Starlette spools uploads to disk), after the checks it can make
alone (gateway.detect_dependencies: multipart, the byte limit, parameters). The service
judges the bytes: container and codec before decoding, frame size, duration. Its errors keep
their meaning: not a supported video 415, too large or too long 413, corrupt 422.
"""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Query, Response
from fastapi.responses import StreamingResponse

from gateway.auth.dependencies import DetectUpstream, ResultsReadUpstream, signed_in_router
from gateway.dependencies import PageOffset, SettingsDep
from gateway.detect_dependencies import VideoFile, VideoUpload, utf8
from gateway.errors import error_responses
from gateway.routers import detect
from gateway.schemas.detect import JobOut
from gateway.schemas.video import VideoFramesOut
from objectvision.v1 import common_pb2, detection_pb2

VIDEO_PATH = f"{detect.DETECT_PREFIX}/video"
# The upload goes to the service in chunks of this size (one gRPC message each).
CHUNK_BYTES = 1024 * 1024
MAX_FRAMES_PAGE = 1000

router = signed_in_router(detect.DETECT_PREFIX, "video")


async def _upload_messages(video: VideoFile) -> AsyncIterator[detection_pb2.VideoUpload]:
    """The header, then the spooled file in chunks: one chunk in memory at a time."""
    header = detection_pb2.VideoUploadHeader(
        filename=utf8(video.file.filename),
        params=video.params,
        sampling=video.sampling,
        idempotency_key=video.idempotency_key,
        size_bytes=video.size_bytes,
        track=video.track,
        lines=video.lines,
        zones=video.zones,
        metadata=video.metadata,
        redact=video.redact,
    )
    yield detection_pb2.VideoUpload(header=header)
    await video.file.seek(0)
    while chunk := await video.file.read(CHUNK_BYTES):
        yield detection_pb2.VideoUpload(chunk=chunk)


@router.post(
    "/video",
    status_code=202,
    summary="Detect objects in a video file as a background job",
    responses={**detect.JOB_ACCEPTED, **error_responses(400, 404, 409, 413, 415, 422, 429)},
)
async def submit_video(
    response: Response, upstream: DetectUpstream, settings: SettingsDep, video: VideoUpload
) -> JobOut:
    """An MP4, MOV or WebM video (H.264, HEVC, VP8, VP9, AV1 or MPEG-4) becomes one job.

    Its container and codec are checked before anything is decoded, then its sampled frames
    (`fps` per second, or `every` n-th frame; default 1 per second) are detected as the job
    runs. Progress: GET the Location, or the /api/v1/ws/jobs/{job_id} WebSocket; per-frame
    detections with timestamps at /jobs/{job_id}/frames; the annotated video at
    /jobs/{job_id}/annotated once completed. Parameters may be query parameters or form
    fields, not both. Its sampled frames count against the monthly quota: a video whose
    frames do not fit is refused with 429 `quota_exceeded` once probed. An account with
    MAX_UNFINISHED_JOBS_PER_USER jobs pending or processing gets 429 `too_many_jobs`, its
    video neither stored nor probed.

    With `track=true` objects are followed from frame to frame (ADR 0038): each object
    carries the `track_id` of its track once the track is confirmed (null in the frame a
    track starts), the job's video says `tracked: true`, and the annotated video labels the
    boxes `#3 person 0.91`. Sample fast (e.g. `every=1`) to track well.

    With `lines` as well (a form field: a JSON array of named segments such as
    `[{"name": "gate", "start": [0, 360], "end": [1280, 360]}]`, ADR 0039) the tracked
    objects crossing each line are counted: the job's video gives its `lines` and its
    `line_counts` (in and out, by line and class, so far), and each frame its `crossings`.
    422 for `lines` that are not such JSON, too many lines, names that are empty, too long or
    repeated, a line that starts where it ends, a coordinate that is negative or not a number,
    lines without `track=true`, and (once the video is probed) a line that leaves the picture;
    the `lines` field says the limits.

    With `zones` (a form field: a JSON array of named polygons such as
    `[{"name": "queue", "polygon": [[0, 0], [640, 0], [640, 200], [0, 200]]}]`, ADR 0042,
    also with `track=true`) each object of a frame names the `zones` it stands in (the bottom
    centre of its box is inside), and the job's video gives its `zones` and its `zone_counts`
    (by zone and class, so far: how many tracked objects `visited`, the `peak` inside at once
    and the `mean_stay_seconds` of a visitor). 422 for `zones` that are not such JSON, too
    many zones, names that are empty, too long or repeated, a zone with too few or too many
    corners, that encloses no area or whose edges cross or touch, a coordinate that is
    negative or not a number, zones without `track=true`, and (once the video is probed) a
    zone that leaves the picture; the `zones` field says the limits.

    With `redact` (a form field, repeated: `redact=person`) the annotated video shows those
    classes' objects pixelated under their boxes (ADR 0049); the job's video lists them.
    An unknown class is 422."""
    call = upstream.with_deadline(settings.video_deadline_seconds)
    job = await call.detection.SubmitVideoJob(
        _upload_messages(video), metadata=call.metadata, timeout=call.deadline_seconds
    )
    return detect.accepted_job(response, job)


@router.get(
    "/jobs/{job_id:uuid}/frames",
    summary="A video job's per-frame detections with timestamps",
    responses=error_responses(404, 422),
)
async def list_video_frames(
    job_id: uuid.UUID,
    upstream: ResultsReadUpstream,
    limit: Annotated[int, Query(ge=1, le=MAX_FRAMES_PAGE)] = 100,
    offset: PageOffset = 0,
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


# A job's annotated video, as its owner and a share link's holder download it (ADR 0052).
VIDEO_DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The video with the detected boxes drawn on its sampled frames "
        "(H.264 in MP4), at the frames' original timestamps.",
        "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
    },
    **error_responses(404, 409, 422),
}


@router.get(
    "/jobs/{job_id:uuid}/annotated",
    summary="A completed video job's annotated video",
    response_class=StreamingResponse,
    responses=VIDEO_DOWNLOAD_RESPONSES,
)
async def get_annotated_video(
    job_id: uuid.UUID, upstream: ResultsReadUpstream, settings: SettingsDep
) -> StreamingResponse:
    """409 while the job runs (or when it failed); streamed as the service reads it. The
    first chunk is awaited before answering, so errors are real statuses, not cut bodies."""
    download = await upstream.with_deadline(settings.video_deadline_seconds).download(
        upstream.detection.GetAnnotatedVideo,
        detection_pb2.GetAnnotatedVideoRequest(job_id=str(job_id)),
        what="video",
    )
    return StreamingResponse(
        download.body,
        media_type=download.first.content_type or "video/mp4",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private",
            "Content-Disposition": f'attachment; filename="{job_id}-annotated.mp4"',
        },
    )
