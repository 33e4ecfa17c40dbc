"""Bodies of the video routes: the upload form and a video job's per-frame detections."""

from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Annotated, Literal, Self

from fastapi import UploadFile
from pydantic import ConfigDict, Field, RootModel, model_validator

from gateway.schemas.base import DISPLAY_TEXT_PATTERN, UNICODE_TEXT, ApiModel, request_body_schema
from gateway.schemas.detect import (
    REDACT_DESCRIPTION,
    Absent,
    DetectedObjectOut,
    DetectionParamsIn,
    MediaUrl,
    RedactedClass,
    RegionsIn,
    metadata_form_field,
)
from objectvision.v1 import detection_pb2
from objectvision_common.limits import (
    MAX_COUNTING_LINES,
    MAX_COUNTING_NAME_CHARS,
    MAX_COUNTING_ZONES,
    MAX_REDACTED_CLASSES,
    MAX_ZONE_POINTS,
)

MAX_EVERY = 100_000
_SECONDS_DECIMALS = 6
CrossingDirection = Literal["in", "out"]
_DIRECTIONS: Mapping[int, CrossingDirection] = MappingProxyType(
    {detection_pb2.CROSSING_DIRECTION_IN: "in", detection_pb2.CROSSING_DIRECTION_OUT: "out"}
)


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


# A counting line's or zone's name. Shown in tables, the console and the annotated video:
# text a person reads back.
RegionName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_COUNTING_NAME_CHARS, pattern=DISPLAY_TEXT_PATTERN),
    UNICODE_TEXT,
]
# Frame pixels; the detection service checks that the point lies inside the picture, whose
# size only it knows once the video is probed.
Coordinate = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PointIn = tuple[Coordinate, Coordinate]


def _check_unique_names(kind: str, names: Iterable[str]) -> None:
    """ValueError naming the first name given twice: counts are reported by name, so two
    regions (`kind`: line, zone) of one job named alike could not be told apart."""
    repeated = [name for name, n in Counter(names).items() if n > 1]
    if repeated:
        raise ValueError(f"{kind} names must be unique; {repeated[0]!r} is given twice")


class CountingLineIn(ApiModel):
    """A named segment across the picture that tracked objects are counted crossing."""

    name: RegionName = Field(
        description=f"Unique among the job's lines; 1 to {MAX_COUNTING_NAME_CHARS} characters."
    )
    start: PointIn = Field(description="[x, y] in the video's pixels.")
    end: PointIn = Field(description="[x, y] in the video's pixels; not the start.")

    @model_validator(mode="after")
    def _two_different_points(self) -> Self:
        if self.start == self.end:
            raise ValueError(f"line {self.name!r} starts where it ends: give two different points")
        return self

    def to_proto(self) -> detection_pb2.CountingLine:
        return detection_pb2.CountingLine(
            name=self.name,
            start=detection_pb2.Point(x=self.start[0], y=self.start[1]),
            end=detection_pb2.Point(x=self.end[0], y=self.end[1]),
        )


class CountingLinesIn(RootModel[list[CountingLineIn]]):
    """The counting lines of one video job, each named differently."""

    model_config = ConfigDict(strict=True)

    root: list[CountingLineIn] = Field(min_length=1, max_length=MAX_COUNTING_LINES)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        _check_unique_names("line", (line.name for line in self.root))
        return self


LINES_DESCRIPTION = (
    "Count the tracked objects that cross these lines (ADR 0039; needs `track=true`): a JSON "
    'array such as `[{"name": "gate", "start": [0, 360], "end": [1280, 360]}]`, 1 to '
    f"{MAX_COUNTING_LINES} lines with unique names of 1 to {MAX_COUNTING_NAME_CHARS} characters, "
    "ends in the video's pixels, inside the picture. An object crosses when the centre of its "
    "box moves from one side of the segment to the other within the segment's span; seen "
    'from `start` looking towards `end`, "in" is a crossing from the right-hand side to the '
    'left-hand side, "out" the other way. A form field only, not a query parameter.'
)


def _area(polygon: Iterable[PointIn]) -> float:
    """The polygon's area by the shoelace formula: zero for points on one line."""
    points = list(polygon)
    following = points[1:] + points[:1]
    doubled = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, following, strict=True))
    return abs(doubled) / 2


class CountingZoneIn(ApiModel):
    """A named region of the picture in which tracked objects are counted standing."""

    name: RegionName = Field(
        description=f"Unique among the job's zones; 1 to {MAX_COUNTING_NAME_CHARS} characters."
    )
    polygon: list[PointIn] = Field(
        min_length=3,
        max_length=MAX_ZONE_POINTS,
        description=f"3 to {MAX_ZONE_POINTS} [x, y] corners in the video's pixels, in drawing "
        "order: a simple polygon that encloses some area.",
    )

    @model_validator(mode="after")
    def _encloses_an_area(self) -> Self:
        # The detection service's own threshold: in less than a pixel nothing could stand.
        if _area(self.polygon) < 1:
            raise ValueError(
                f"zone {self.name!r} encloses no area: give corners that are not on one line"
            )
        return self

    def to_proto(self) -> detection_pb2.CountingZone:
        return detection_pb2.CountingZone(
            name=self.name, polygon=[detection_pb2.Point(x=x, y=y) for x, y in self.polygon]
        )


class CountingZonesIn(RootModel[list[CountingZoneIn]]):
    """The counting zones of one video job, each named differently."""

    model_config = ConfigDict(strict=True)

    root: list[CountingZoneIn] = Field(min_length=1, max_length=MAX_COUNTING_ZONES)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        _check_unique_names("zone", (zone.name for zone in self.root))
        return self


ZONES_DESCRIPTION = (
    "Name the zones each tracked object stands in, and count who was in them (ADR 0042; needs "
    '`track=true`): a JSON array such as `[{"name": "queue", "polygon": [[0, 0], [640, 0], '
    f"[640, 200], [0, 200]]}}]`, 1 to {MAX_COUNTING_ZONES} zones with unique names of 1 to "
    f"{MAX_COUNTING_NAME_CHARS} characters, each a simple polygon of 3 to {MAX_ZONE_POINTS} "
    "corners in the video's pixels, inside the picture. An object is in a zone while the "
    "bottom centre of its box (where it stands) is inside the polygon. A form field only, not "
    "a query parameter."
)


class DetectVideoForm(VideoOptionsIn, RegionsIn):
    """One video, as a file or by URL, with the detection parameters, the sampling, the
    tracking choice and the counting lines and zones."""

    # A misspelt field fails loudly instead of being ignored, and the schema says so.
    model_config = ConfigDict(extra="forbid")

    file: UploadFile | Absent = Field(
        default=None,
        description="The video: MP4, MOV or WebM (H.264, HEVC, VP8, VP9, AV1). Or `url`.",
    )
    url: MediaUrl | Absent = Field(
        default=None,
        description="Instead of `file`: an http or https URL the gateway fetches the video "
        "from, as it fetches images (public addresses only, at most 3 redirects), within "
        "MAX_VIDEO_BYTES and VIDEO_URL_TIMEOUT_SECONDS.",
    )
    # Text here, read as JSON by gateway.detect_dependencies: a multipart field is a string,
    # and its own 422 can then say that the JSON, not the form, is wrong.
    lines: str | Absent = Field(
        default=None,
        description=LINES_DESCRIPTION,
        json_schema_extra={
            "contentMediaType": "application/json",
            "contentSchema": request_body_schema(CountingLinesIn),
        },
    )
    zones: str | Absent = Field(
        default=None,
        description=ZONES_DESCRIPTION,
        json_schema_extra={
            "contentMediaType": "application/json",
            "contentSchema": request_body_schema(CountingZonesIn),
        },
    )
    metadata: str | Absent = metadata_form_field()
    redact: list[RedactedClass] = Field(
        default_factory=list,
        max_length=MAX_REDACTED_CLASSES,
        description=f"{REDACT_DESCRIPTION} In the annotated video; repeat the field for more "
        "classes (`redact=person`).",
    )


class LineCrossingOut(ApiModel):
    """One tracked object crossing one counting line, in the frame the crossing is seen in."""

    line: str = Field(description="The line's name.")
    track_id: int = Field(description="The object's track (its `track_id` in the frames).")
    class_id: int
    class_name: str
    direction: CrossingDirection = Field(
        description="in: from the line's right-hand side to its left-hand side, seen from "
        "`start` looking towards `end`; out: the other way."
    )

    @classmethod
    def from_proto(cls, crossing: detection_pb2.LineCrossing) -> Self:
        try:
            direction = _DIRECTIONS[crossing.direction]
        except KeyError:
            raise ValueError(
                f"the detection service sent an unknown crossing direction {crossing.direction}"
            ) from None
        return cls(
            line=crossing.line,
            track_id=crossing.track_id,
            class_id=crossing.class_id,
            class_name=crossing.class_name,
            direction=direction,
        )


class VideoObjectOut(DetectedObjectOut):
    """An object of a video frame: what an image's objects say, and the zones it stands in.
    Its own schema, so that images and batch results do not list zones they never have."""

    zones: list[str] = Field(
        default_factory=list,
        description="In a video job with counting zones (ADR 0042): the names of the zones "
        "the object stands in (the bottom centre of its box is inside), in the order the "
        "zones were given. Empty otherwise.",
    )

    @classmethod
    def from_proto(cls, obj: detection_pb2.DetectedObject) -> Self:
        return super().from_proto(obj).model_copy(update={"zones": list(obj.zones)})


class VideoFrameOut(ApiModel):
    """One sampled frame: where it is in the video and what was found in it."""

    frame_index: int = Field(description="The frame's index in the whole video, from 0.")
    timestamp_seconds: float = Field(description="Its time from the start of the video.")
    timestamp_ms: int = Field(description="The same time in whole milliseconds.")
    detections: list[VideoObjectOut]
    error: str | None = Field(description="Why this frame could not be detected; null otherwise.")
    crossings: list[LineCrossingOut] = Field(
        default_factory=list,
        description="In a video job with counting lines: the objects of this frame that "
        "crossed one (an object crossing two lines is listed once for each). Empty otherwise.",
    )

    @classmethod
    def from_proto(cls, frame: detection_pb2.VideoFrame) -> Self:
        return cls(
            frame_index=frame.frame_index,
            timestamp_seconds=round(frame.timestamp_seconds, _SECONDS_DECIMALS),
            timestamp_ms=round(frame.timestamp_seconds * 1000),
            detections=[VideoObjectOut.from_proto(obj) for obj in frame.objects],
            error=frame.error or None,
            crossings=[LineCrossingOut.from_proto(crossing) for crossing in frame.crossings],
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
