"""Bodies of the video routes: the upload form and a video job's per-frame detections."""

from typing import Self

from fastapi import UploadFile
from pydantic import ConfigDict, Field

from gateway.schemas.base import ApiModel
from gateway.schemas.detect import Absent, DetectedObjectOut, DetectionParamsIn
from objectvision.v1 import detection_pb2

MAX_EVERY = 100_000
_SECONDS_DECIMALS = 6


class VideoSamplingIn(DetectionParamsIn):
    """How to pick frames: `fps` or `every`, not both; neither: the service default (1 fps)."""

    fps: float | Absent = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="At most this many frames per second of video (the first frame, then the "
        "first at or after each 1/fps step).",
    )
    every: int | Absent = Field(
        default=None,
        ge=1,
        le=MAX_EVERY,
        description="Every n-th frame, counting from the first (1: every frame).",
    )


TRACK_DESCRIPTION = (
    "Follow objects from frame to frame (ADR 0038): each object of a sampled frame gets the "
    "`track_id` of its track once the track is confirmed (from the second frame it is seen "
    "in), the same in every frame while the object stays; ids are per video, from 0. Default "
    "false. Track with a fast sampling (e.g. `every=1`): objects that move far between "
    "sampled frames are followed poorly."
)


class VideoOptionsIn(VideoSamplingIn):
    """The sampling, and whether to track objects across the sampled frames."""

    track: bool | Absent = Field(default=None, description=TRACK_DESCRIPTION)


class DetectVideoForm(VideoOptionsIn):
    """One video file with the detection parameters, the sampling and the tracking choice."""

    # A misspelt field fails loudly instead of being ignored, and the schema says so.
    model_config = ConfigDict(extra="forbid")

    file: UploadFile = Field(
        description="The video: MP4, MOV or WebM (H.264, HEVC, VP8, VP9, AV1)."
    )


class VideoFrameOut(ApiModel):
    """One sampled frame: where it is in the video and what was found in it."""

    frame_index: int = Field(description="The frame's index in the whole video, from 0.")
    timestamp_seconds: float = Field(description="Its time from the start of the video.")
    timestamp_ms: int = Field(description="The same time in whole milliseconds.")
    detections: list[DetectedObjectOut]
    error: str | None = Field(description="Why this frame could not be detected; null otherwise.")

    @classmethod
    def from_proto(cls, frame: detection_pb2.VideoFrame) -> Self:
        return cls(
            frame_index=frame.frame_index,
            timestamp_seconds=round(frame.timestamp_seconds, _SECONDS_DECIMALS),
            timestamp_ms=round(frame.timestamp_seconds * 1000),
            detections=[DetectedObjectOut.from_proto(obj) for obj in frame.objects],
            error=frame.error or None,
        )


class VideoFramesOut(ApiModel):
    """One page of a video job's frames, in frame order; boxes in video pixels."""

    job_id: str
    width: int = Field(description="Frame width in pixels.")
    height: int = Field(description="Frame height in pixels.")
    frames: list[VideoFrameOut]
    total: int = Field(description="Frames detected so far (all of them once completed).")
    limit: int
    offset: int

    @classmethod
    def from_proto(cls, job_id: str, listed: detection_pb2.ListVideoFramesResponse) -> Self:
        return cls(
            job_id=job_id,
            width=listed.width,
            height=listed.height,
            frames=[VideoFrameOut.from_proto(frame) for frame in listed.frames],
            total=listed.total,
            limit=listed.limit,
            offset=listed.offset,
        )
