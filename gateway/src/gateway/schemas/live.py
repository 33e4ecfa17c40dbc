"""Messages of the live detection WebSocket (ADR 0059): the settings a client opens a stream
with, and the answer to each frame."""

from collections import Counter
from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from gateway.schemas.base import ApiModel
from gateway.schemas.detect import Absent, DetectionParamsIn, ImageSizeOut, RegionsIn, TimingsOut
from gateway.schemas.video import (
    TRACK_DESCRIPTION,
    CountingLinesIn,
    CountingZonesIn,
    LineCrossingOut,
    VideoObjectOut,
)
from objectvision.v1 import detection_pb2

# Frames a second a stream's tracker may be told: beyond this no camera sends, and the
# tracker's memory of an object out of sight (a number of frames) would shrink to nothing.
MAX_FRAME_RATE = 240.0


class LiveSettingsIn(DetectionParamsIn, RegionsIn):
    """The one message that opens a live detection stream, after the credentials: a JSON
    body's detection parameters, and a video job's tracking and counting choices. Every
    field is optional: `{}` detects with the deployment's defaults."""

    model_config = ConfigDict(extra="forbid", strict=True)

    track: bool = Field(default=False, description=TRACK_DESCRIPTION)
    frame_rate: float | Absent = Field(
        default=None,
        gt=0,
        le=MAX_FRAME_RATE,
        allow_inf_nan=False,
        description="Frames a second the client sends, which sets how long a tracked object "
        "out of sight keeps its id. Absent: 30.",
    )
    lines: CountingLinesIn | Absent = Field(
        default=None,
        description="Counting lines in the frames' pixels (ADR 0039; needs `track`): each "
        "answer lists the objects of its frame that crossed one.",
    )
    zones: CountingZonesIn | Absent = Field(
        default=None,
        description="Counting zones in the frames' pixels (ADR 0042; needs `track`): each "
        "object names the zones it stands in.",
    )

    @model_validator(mode="after")
    def _counting_needs_tracking(self) -> Self:
        for name in ("lines", "zones"):
            if getattr(self, name) is not None and not self.track:
                raise ValueError(f"counting {name} need track=true: only tracked objects count")
        return self

    def opening_frame(self) -> detection_pb2.Frame:
        """The settings as the stream's first Frame carries them (its sequence and image are
        the first binary message's)."""
        return detection_pb2.Frame(
            params=self.to_proto(self.region_list()),
            track=self.track,
            frame_rate=self.frame_rate or 0.0,
            lines=[line.to_proto() for line in self.lines.root] if self.lines else [],
            zones=[zone.to_proto() for zone in self.zones.root] if self.zones else [],
        )


class LiveFrameOut(ApiModel):
    """The answer to one frame: what the n-th binary message showed."""

    type: Literal["detections"] = "detections"
    sequence: int = Field(description="The frame's number: the n-th binary message is n.")
    image: ImageSizeOut
    detections: list[VideoObjectOut]
    counts: dict[str, int] = Field(description="Objects of each class in this frame.")
    crossings: list[LineCrossingOut] = Field(
        description="With counting lines: the objects of this frame that crossed one."
    )
    timings: TimingsOut
    cached: bool = Field(description="The same bytes were detected before: no inference ran.")
    model: str | None
    model_version: str | None

    @classmethod
    def from_proto(cls, answer: detection_pb2.FrameDetections) -> Self:
        result = answer.result
        return cls(
            sequence=answer.sequence,
            image=ImageSizeOut(width=result.width, height=result.height),
            detections=[VideoObjectOut.from_proto(obj) for obj in result.objects],
            counts=dict(Counter(obj.class_name for obj in result.objects)),
            crossings=[LineCrossingOut.from_proto(crossing) for crossing in answer.crossings],
            timings=TimingsOut.from_proto(result.timings),
            cached=result.cached,
            model=result.model or None,
            model_version=result.model_version or None,
        )
