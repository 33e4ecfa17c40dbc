"""Bodies of the detection routes: the upload forms, one image's objects, stored detections,
history and jobs.

Boxes are in pixels of the original image (x to the right, y down). Scores and coordinates
come from float32 model outputs; they are rounded here (4 decimals for scores, 2 for pixels)
so responses do not carry float32 noise such as 0.8312345027923584.
"""

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self, TypeVar

from fastapi import UploadFile
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    RootModel,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from gateway.schemas.base import (
    DISPLAY_TEXT_PATTERN,
    UNICODE_TEXT,
    ApiModel,
    PageOut,
    ProtoMirror,
    optional_datetime,
    request_body_schema,
    to_datetime,
)
from objectvision.v1 import detection_pb2
from objectvision_common.limits import (
    MAX_CLASS_CONFIDENCES,
    MAX_DETECTIONS_LIMIT,
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE_CHARS,
    MAX_REGION_POINTS,
    MAX_REGIONS,
    MAX_TILE_OVERLAP,
    MAX_TILE_SIZE,
    MAX_TILES_PER_IMAGE,
    METADATA_KEY_PATTERN,
    MIN_TILE_SIZE,
)
from objectvision_common.public_urls import MAX_URL_LENGTH

T = TypeVar("T")
JobStatus = Literal["pending", "processing", "completed", "failed", "cancelled"]
JobKind = Literal["batch", "video"]
DetectionStatus = Literal["pending", "completed", "failed"]

# Each status as the contract numbers it (also what a ?status= filter sends).
JOB_STATUS_NUMBERS: Mapping[JobStatus, detection_pb2.JobStatus] = MappingProxyType(
    {
        "pending": detection_pb2.JOB_STATUS_PENDING,
        "processing": detection_pb2.JOB_STATUS_PROCESSING,
        "completed": detection_pb2.JOB_STATUS_COMPLETED,
        "failed": detection_pb2.JOB_STATUS_FAILED,
        "cancelled": detection_pb2.JOB_STATUS_CANCELLED,
    }
)
_JOB_STATUSES: Mapping[int, JobStatus] = MappingProxyType(
    {number: name for name, number in JOB_STATUS_NUMBERS.items()}
)
_DETECTION_STATUSES: Mapping[int, DetectionStatus] = MappingProxyType(
    {
        detection_pb2.DETECTION_STATUS_PENDING: "pending",
        detection_pb2.DETECTION_STATUS_COMPLETED: "completed",
        detection_pb2.DETECTION_STATUS_FAILED: "failed",
    }
)
MAX_CLASSES_CHARS = 2000
_SCORE_DECIMALS = 4
_PIXEL_DECIMALS = 2
_MS_DECIMALS = 3


def _status(statuses: Mapping[int, T], value: int, what: str) -> T:
    """A status the contract names; anything else is a service bug, not something to show."""
    try:
        return statuses[value]
    except KeyError:
        raise ValueError(f"the detection service sent an unknown {what} status {value}") from None


# An optional input's only value is "left out": `X | Absent = None` keeps null out of the
# schema, so the document gives each input its one type (as PatchModel does for bodies).
Absent = SkipJsonSchema[None]
Score = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
MaxDetections = Annotated[int, Field(ge=1, le=MAX_DETECTIONS_LIMIT)]
TileSize = Annotated[int, Field(ge=MIN_TILE_SIZE, le=MAX_TILE_SIZE)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
RegionPolygon = Annotated[
    list[tuple[Fraction, Fraction]], Field(min_length=3, max_length=MAX_REGION_POINTS)
]
_REGIONS = TypeAdapter(Annotated[list[RegionPolygon], Field(min_length=1, max_length=MAX_REGIONS)])
# A JSON array of at most MAX_REGIONS polygons of MAX_REGION_POINTS [x, y] pairs: its longest
# text with generous number formatting.
MAX_REGIONS_CHARS = MAX_REGIONS * MAX_REGION_POINTS * 48


def regions(text: str) -> list[list[tuple[float, float]]]:
    """`[[[0, 0.5], [1, 0.5], [1, 1], [0, 1]]]` -> the polygons; ValueError saying what is
    wrong (the service checks again that each encloses an area)."""
    try:
        return [list(polygon) for polygon in _REGIONS.validate_json(text)]
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = "".join(f"[{part}]" for part in first["loc"])
        raise ValueError(
            f"regions{where}: {first['msg']}; give a JSON array of polygons, each 3 to"
            f" {MAX_REGION_POINTS} [x, y] corners as fractions of the image (0 to 1)"
        ) from None


def _checked_regions(text: str) -> str:
    regions(text)
    return text


Regions = Annotated[
    str, StringConstraints(max_length=MAX_REGIONS_CHARS), AfterValidator(_checked_regions)
]
TileOverlap = Annotated[float, Field(gt=0, le=MAX_TILE_OVERLAP, allow_inf_nan=False)]
ClassList = Annotated[str, StringConstraints(max_length=MAX_CLASSES_CHARS)]


def class_confidences(text: str) -> dict[str, float]:
    """`person:0.6, car:0.3` -> {"person": 0.6, "car": 0.3}: minimum scores of chosen classes
    (names or ids; the service resolves them). ValueError, saying what is wrong, for a pair
    without a score, a score that is not a number above 0 and at most 1, a class given twice,
    or more than MAX_CLASS_CONFIDENCES pairs."""
    chosen: dict[str, float] = {}
    for pair in (part.strip() for part in text.split(",")):
        if not pair:
            continue
        name, colon, value = pair.rpartition(":")
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        if not colon or not name.strip():
            raise ValueError(f"{pair!r} is not class:score, e.g. person:0.6")
        if not 0 < score <= 1:
            raise ValueError(f"the score of {name.strip()!r} must be above 0 and at most 1")
        if name.strip().lower() in (known.lower() for known in chosen):
            raise ValueError(f"class {name.strip()!r} is given twice")
        chosen[name.strip()] = score
    if len(chosen) > MAX_CLASS_CONFIDENCES:
        raise ValueError(f"at most {MAX_CLASS_CONFIDENCES} classes can have their own confidence")
    return chosen


def _checked_class_confidences(text: str) -> str:
    class_confidences(text)
    return text


ClassConfidences = Annotated[
    str,
    StringConstraints(max_length=MAX_CLASSES_CHARS),
    AfterValidator(_checked_class_confidences),
]
# Triton model names as this deployment writes them: letters, digits, '_', '.', '-'.
ModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class DetectionParamsIn(BaseModel):
    """Detection parameters, as query parameters or as form fields of the upload (not both).

    Not an ApiModel: query and form values arrive as text, which strict mode would refuse.
    """

    confidence: Score | Absent = Field(
        default=None, description="Minimum score, 0 to 1. Absent or 0: the service default."
    )
    iou: Score | Absent = Field(
        default=None,
        description="Overlap (IoU) above which boxes of one class are merged, 0 to 1. "
        "Absent or 0: the service default.",
    )
    classes: ClassList | Absent = Field(
        default=None,
        description="Only these classes: comma-separated names or ids, e.g. `person,bus` or "
        "`0,5`. An unknown class is a 422.",
    )
    max_detections: MaxDetections | Absent = Field(
        default=None,
        description=f"At most this many objects per image, 1 to {MAX_DETECTIONS_LIMIT}.",
    )
    class_confidence: ClassConfidences | Absent = Field(
        default=None,
        description="Minimum scores of chosen classes in place of `confidence` for their "
        "objects (ADR 0050): comma-separated `class:score` pairs, names or ids, each score "
        "above 0 and at most 1, e.g. `person:0.6,car:0.15`. An unknown class is a 422.",
    )
    tile_size: TileSize | Absent = Field(
        default=None,
        description="Tiled detection for small objects in large images (ADR 0051): besides "
        "the whole image, overlapping squares of this many pixels are each detected at the "
        "model's full resolution and the objects merged, each once, in the image's pixels. "
        f"{MIN_TILE_SIZE} to {MAX_TILE_SIZE}; each tile is one more inference, and an image "
        f"cut into more than {MAX_TILES_PER_IMAGE} tiles is a 422. Absent: the whole image "
        "only.",
    )
    tile_overlap: TileOverlap | Absent = Field(
        default=None,
        description="The share of a tile's side its neighbours also cover, above 0 and at "
        f"most {MAX_TILE_OVERLAP}. Absent: 0.2. Only with `tile_size`.",
    )
    model: ModelName | Absent = Field(
        default=None,
        description="The model to run, e.g. `yolov8n-int8` (GET /api/v1/models lists them). "
        "Absent: the deployment's default. Unknown: 404 listing the known ones; loading: 503 "
        "with Retry-After.",
    )

    def class_list(self) -> list[str]:
        """`person, bus,0` -> ['person', 'bus', '0']; the service resolves names and ids."""
        return [part.strip() for part in (self.classes or "").split(",") if part.strip()]

    def class_confidences(self) -> dict[str, float]:
        """`class_confidence` as a mapping (checked when the parameters were read)."""
        return class_confidences(self.class_confidence or "")

    def to_proto(self, regions: list[detection_pb2.Region]) -> detection_pb2.DetectionParams:
        """The parameters as the contract writes them, with `regions` (ADR 0053) from
        wherever they came; absent ones are zeros, which mean the service defaults."""
        return detection_pb2.DetectionParams(
            confidence=self.confidence or 0.0,
            iou=self.iou or 0.0,
            classes=self.class_list(),
            max_detections=self.max_detections or 0,
            class_confidence=self.class_confidences(),
            tile_size=self.tile_size or 0,
            tile_overlap=self.tile_overlap or 0.0,
            regions=regions,
            model=self.model or "",
        )


class RegionsIn(BaseModel):
    """Regions of interest (ADR 0053): a form field or a JSON body's field, never a query
    parameter, as 16 polygons of 32 corners do not fit in a URL."""

    regions: Regions | Absent = Field(
        default=None,
        description="Regions of interest (ADR 0053): only objects standing in one of them (the "
        "bottom centre of the box inside) are kept. A JSON array of 1 to "
        f"{MAX_REGIONS} polygons, each 3 to {MAX_REGION_POINTS} [x, y] corners as fractions of "
        "the image's width and height, e.g. `[[[0, 0.5], [1, 0.5], [1, 1], [0, 1]]]` (the "
        "lower half). With tiles, only the tiles near the regions are detected. Absent: the "
        "whole image. A form field or JSON field only, not a query parameter.",
    )

    def region_list(self) -> list[detection_pb2.Region]:
        """`regions` as the contract's polygons (checked when the parameters were read)."""
        return [
            detection_pb2.Region(polygon=[detection_pb2.Point(x=x, y=y) for x, y in polygon])
            for polygon in (regions(self.regions) if self.regions else [])
        ]


STORE_DESCRIPTION = "Keep the image and its objects in the caller's history (default true)."

# A job's metadata (ADR 0045), under the limits detection-service checks again.
MetadataKey = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=MAX_METADATA_KEY_CHARS, pattern=METADATA_KEY_PATTERN
    ),
]
MetadataValue = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=MAX_METADATA_VALUE_CHARS, pattern=DISPLAY_TEXT_PATTERN
    ),
    UNICODE_TEXT,
]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=MAX_METADATA_PAIRS)]
METADATA_DESCRIPTION = (
    "Your own key-value pairs, kept with the job and given back in its answers, its WebSocket "
    "messages and its webhooks (`data.metadata`), and a filter of GET /detect/jobs (ADR 0045): "
    f'an object such as `{{"camera": "north-gate", "order": "A-1042"}}`, at most '
    f"{MAX_METADATA_PAIRS} keys of 1 to {MAX_METADATA_KEY_CHARS} letters, digits, `_`, `.` "
    f"or `-`, each value a string of 1 to {MAX_METADATA_VALUE_CHARS} characters."
)
DETECTION_METADATA_DESCRIPTION = (
    "Your own key-value pairs, kept with the stored detection (so it needs store=true), given "
    "back with it in the history, and a filter of GET /detect/history and its export "
    "(ADR 0045); the limits of a job's metadata apply."
)
METADATA_EXAMPLE = '{"camera": "north-gate"}'


class MetadataIn(RootModel[Metadata]):
    """A job's metadata as a multipart form sends it: JSON text of one object of strings."""

    model_config = ConfigDict(strict=True)


def metadata_form_field(description: str = METADATA_DESCRIPTION) -> Any:
    """The `metadata` field of a multipart form: text, read as JSON by
    gateway.detect_dependencies, so that its own 422 can say that the JSON is wrong."""
    return Field(
        default=None,
        description=f"{description} JSON text in a form field.",
        json_schema_extra={
            "contentMediaType": "application/json",
            "contentSchema": request_body_schema(MetadataIn),
        },
    )


class _UploadForm(DetectionParamsIn, RegionsIn):
    # A misspelt field fails loudly instead of being ignored, and the schema says so.
    model_config = ConfigDict(extra="forbid")


class DetectImageForm(_UploadForm):
    """One image, as the `file` part or as the only `files` part."""

    file: UploadFile | Absent = Field(
        default=None, description="The image: JPEG, PNG, WebP or BMP."
    )
    files: list[UploadFile] | Absent = Field(
        default=None, description="Alternatively the image as the only `files` part."
    )
    store: bool | Absent = Field(default=None, description=STORE_DESCRIPTION)
    metadata: str | Absent = metadata_form_field(DETECTION_METADATA_DESCRIPTION)


class DetectBatchForm(_UploadForm):
    """The images of one batch job."""

    # Required in a multipart body, as the schema says; optional to the validator only,
    # because the same route takes a JSON body (DetectBatchJson) with no form at all.
    # gateway.detect_dependencies counts the parts itself.
    model_config = ConfigDict(json_schema_extra={"required": ["files"]})

    files: list[UploadFile] | Absent = Field(
        default=None, description="The images, one `files` part each: JPEG, PNG, WebP or BMP."
    )
    metadata: str | Absent = metadata_form_field()


# `data:image/png;base64,` before the base64 itself, as browsers' FileReader writes it.
_DATA_URL_PREFIX = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.IGNORECASE)
MAX_FILENAME_CHARS = 1000


def _base64_bytes(value: object) -> bytes:
    """The bytes of standard base64 text (line breaks allowed, as `base64` writes them), or
    of a `data:image/...;base64,` URL."""
    if not isinstance(value, str):
        raise ValueError("must be the image's bytes as a base64 string")
    text = "".join(_DATA_URL_PREFIX.sub("", value, count=1).split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "is not valid base64: use the standard alphabet with padding, optionally after a "
            "data:image/...;base64, prefix"
        ) from None


Base64Image = Annotated[
    bytes,
    PlainValidator(_base64_bytes),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]
MediaUrl = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH), UNICODE_TEXT]
Filename = Annotated[str, StringConstraints(max_length=MAX_FILENAME_CHARS), UNICODE_TEXT]


class ImageSourceIn(ApiModel):
    """One image in a JSON body: fetched from `url`, or its bytes in `image_base64`."""

    url: MediaUrl | Absent = Field(
        default=None,
        description="An http or https URL the gateway fetches the image from: public "
        "addresses only, at most 3 redirects, the upload size limit and "
        "IMAGE_URL_TIMEOUT_SECONDS for the whole fetch.",
    )
    image_base64: Base64Image | Absent = Field(
        default=None,
        description="The image's bytes in standard base64, or a data URL "
        "(`data:image/jpeg;base64,...`).",
    )
    filename: Filename | Absent = Field(
        default=None,
        description="The name to show and store; default: the last segment of the URL's path.",
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        if (self.url is None) == (self.image_base64 is None):
            raise ValueError("give exactly one of url or image_base64")
        return self


class DetectImageJson(ImageSourceIn, DetectionParamsIn, RegionsIn):
    """One image by URL or as base64, with the parameters the form takes (query parameters
    work as for an upload, and a parameter may not come both ways)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    store: bool | Absent = Field(default=None, description=STORE_DESCRIPTION)
    metadata: Metadata | Absent = Field(default=None, description=DETECTION_METADATA_DESCRIPTION)


class DetectBatchJson(DetectionParamsIn, RegionsIn):
    """The images of one batch job, each by URL or as base64."""

    model_config = ConfigDict(extra="forbid", strict=True)

    images: list[ImageSourceIn] = Field(
        description='The images, each `{"url": ...}` or `{"image_base64": ...}`, '
        "either with an optional `filename`."
    )
    metadata: Metadata | Absent = Field(default=None, description=METADATA_DESCRIPTION)


class RerunJobJson(DetectionParamsIn, RegionsIn):
    """What a job run again changes (ADR 0058): each parameter given replaces the job's own,
    the rest are the job's (a video's sampling, tracking and counting too). The job's classes
    go to another model by name."""

    model_config = ConfigDict(extra="forbid", strict=True)

    metadata: Metadata | Absent = Field(
        default=None, description=f"{METADATA_DESCRIPTION} Absent: the job's own."
    )


class BoundingBoxOut(ApiModel):
    """Corners and size of a box in original-image pixels."""

    x1: float = Field(description="Left edge.")
    y1: float = Field(description="Top edge.")
    x2: float = Field(description="Right edge.")
    y2: float = Field(description="Bottom edge.")
    width: float = Field(description="x2 - x1.")
    height: float = Field(description="y2 - y1.")

    @classmethod
    def from_proto(cls, box: detection_pb2.BoundingBox) -> Self:
        x1, y1, x2, y2 = (
            round(value, _PIXEL_DECIMALS) for value in (box.x1, box.y1, box.x2, box.y2)
        )
        return cls(
            x1=x1,
            y1=y1,
            x2=x2,
            y2=y2,
            width=round(x2 - x1, _PIXEL_DECIMALS),
            height=round(y2 - y1, _PIXEL_DECIMALS),
        )


class DetectedObjectOut(ApiModel):
    # `class` is a Python keyword: the field is `class_name` here and `class` on the wire.
    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    class_name: str = Field(alias="class", description="Class name, e.g. 'person'.")
    class_id: int = Field(description="Class index in the model (COCO order).")
    confidence: float = Field(ge=0, le=1)
    bbox: BoundingBoxOut
    track_id: int | None = Field(
        default=None,
        description="The object's track in a tracked video job (`track=true`, ADR 0038): the "
        "same id in every frame while the object stays, from its track's second frame on; "
        "ids are per video, from 0. Null in the frame a track starts, and on every object "
        "that is not tracked (images, batch jobs, videos without `track`).",
    )

    @classmethod
    def from_proto(cls, obj: detection_pb2.DetectedObject) -> Self:
        return cls(
            class_name=obj.class_name,
            class_id=obj.class_id,
            confidence=round(obj.confidence, _SCORE_DECIMALS),
            bbox=BoundingBoxOut.from_proto(obj.box),
            track_id=obj.track_id if obj.HasField("track_id") else None,
        )


class ImageSizeOut(ApiModel):
    width: int = Field(description="Width of the uploaded image in pixels.")
    height: int = Field(description="Height of the uploaded image in pixels.")


class TimingsOut(ApiModel):
    """Where the time went inside the detection service, in milliseconds."""

    decode_ms: float
    queue_ms: float = Field(description="Waiting for a model batch.")
    inference_ms: float
    postprocess_ms: float
    total_ms: float

    @classmethod
    def from_proto(cls, timings: detection_pb2.Timings) -> Self:
        return cls(
            decode_ms=round(timings.decode_ms, _MS_DECIMALS),
            queue_ms=round(timings.queue_ms, _MS_DECIMALS),
            inference_ms=round(timings.inference_ms, _MS_DECIMALS),
            postprocess_ms=round(timings.postprocess_ms, _MS_DECIMALS),
            total_ms=round(timings.total_ms, _MS_DECIMALS),
        )


class DetectionOut(ApiModel):
    """The objects found in one image, highest confidence first."""

    detection_id: str | None = Field(
        description="Id of the stored detection; null when the request had store=false."
    )
    filename: str = Field(description="The uploaded file's name, for display only.")
    image: ImageSizeOut
    detections: list[DetectedObjectOut]
    timings: TimingsOut
    counts: dict[str, int] = Field(
        default_factory=dict,
        description="How many objects of each class were found (class name -> count).",
    )
    cached: bool = Field(
        default=False,
        description="Answered from the result cache: this image, model version and these "
        "parameters were detected before, so no inference ran.",
    )
    model: str | None = Field(
        default=None,
        description="The model that answered; null on detections stored before models "
        "could be chosen.",
    )
    model_version: str | None = Field(default=None, description="Its version, e.g. '1'.")

    @classmethod
    def from_proto(cls, result: detection_pb2.ImageResult) -> Self:
        return cls(
            detection_id=result.detection_id or None,
            filename=result.filename,
            image=ImageSizeOut(width=result.width, height=result.height),
            detections=[DetectedObjectOut.from_proto(obj) for obj in result.objects],
            timings=TimingsOut.from_proto(result.timings),
            counts=dict(Counter(obj.class_name for obj in result.objects)),
            cached=result.cached,
            model=result.model or None,
            model_version=result.model_version or None,
        )


class StoredDetectionOut(DetectionOut):
    """A detection from the caller's history: the image response plus its record."""

    detection_id: str
    status: DetectionStatus
    job_id: str | None = Field(description="The batch job that made it; null for /detect/image.")
    created_at: datetime
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description="The caller's own key-value pairs (ADR 0045): those sent with the image to "
        "/detect/image, or its job's; keys sorted.",
    )

    @classmethod
    def from_detection(cls, detection: detection_pb2.Detection) -> Self:
        result = DetectionOut.from_proto(detection.result)
        return cls(
            **{**dict(result), "detection_id": detection.id},
            status=_status(_DETECTION_STATUSES, detection.status, "detection"),
            job_id=detection.job_id or None,
            created_at=to_datetime(detection.created_at),
            metadata=dict(sorted(detection.metadata.items())),
        )


class DetectionListOut(PageOut[StoredDetectionOut]):
    """One page of the caller's detections, newest first."""

    total: int = Field(description="How many detections match the filters in all.")

    @classmethod
    def from_proto(cls, listed: detection_pb2.ListDetectionsResponse) -> Self:
        return cls.of(map(StoredDetectionOut.from_detection, listed.items), listed)


class HistorySummaryOut(ApiModel):
    """What the filtered history holds, counted rather than listed."""

    detections: int = Field(description="How many detections (stored images) match.")
    objects: int = Field(description="Their objects, every class together.")
    class_counts: dict[str, int] = Field(
        description="Their objects per class name, most first (ties by name)."
    )

    @classmethod
    def from_proto(cls, summary: detection_pb2.DetectionSummary) -> Self:
        counted = sorted(summary.class_counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(
            detections=summary.detections, objects=summary.objects, class_counts=dict(counted)
        )


class HistoryDeletionOut(ProtoMirror):
    """What a filtered deletion of the history removed."""

    deleted: int = Field(
        description="Detections deleted by this call, each with its objects and stored image."
    )
    kept_in_unfinished_jobs: int = Field(
        description="Matching detections of jobs still pending or processing, left in place: "
        "cancel the job or wait for it, then delete again."
    )
    more: bool = Field(
        description="More matched than one call deletes (5,000): call again for the rest."
    )


class JobItemOut(ApiModel):
    """One image of a batch job, in upload order. `cancelled`: the image was still waiting
    when the job was cancelled and was never detected."""

    filename: str
    status: JobStatus
    detection_id: str | None = Field(description="Set once the image is detected.")
    error: str | None = Field(description="Why this image failed; null otherwise.")
    object_count: int

    @classmethod
    def from_proto(cls, item: detection_pb2.JobItem) -> Self:
        return cls(
            filename=item.filename,
            status=_status(_JOB_STATUSES, item.status, "job item"),
            detection_id=item.detection_id or None,
            error=item.error or None,
            object_count=item.object_count,
        )


class VideoSamplingOut(ApiModel):
    """How the video's frames are picked: at most `fps` a second, or every `every`-th frame
    (the other is null)."""

    fps: float | None
    every: int | None


def _pixels(point: detection_pb2.Point) -> tuple[float, float]:
    """A point the caller gave, as they gave it: the float32 noise of its trip through the
    service rounded away."""
    return round(point.x, _PIXEL_DECIMALS), round(point.y, _PIXEL_DECIMALS)


class CountingLineOut(ApiModel):
    """A counting line of a video job, as it was submitted (ADR 0039)."""

    name: str
    start: tuple[float, float] = Field(description="[x, y] in the video's pixels.")
    end: tuple[float, float] = Field(description="[x, y] in the video's pixels.")

    @classmethod
    def from_proto(cls, line: detection_pb2.CountingLine) -> Self:
        return cls(name=line.name, start=_pixels(line.start), end=_pixels(line.end))


class LineCountOut(ApiModel):
    """How many tracked objects of one class crossed one line each way, in the frames
    detected so far."""

    line: str = Field(description="The line's name.")
    class_id: int
    class_name: str
    crossed_in: int = Field(description="Crossings from the line's right-hand side to its left.")
    crossed_out: int = Field(description="Crossings from the line's left-hand side to its right.")

    @classmethod
    def from_proto(cls, count: detection_pb2.LineCount) -> Self:
        return cls(
            line=count.line,
            class_id=count.class_id,
            class_name=count.class_name,
            crossed_in=count.crossed_in,
            crossed_out=count.crossed_out,
        )


class CountingZoneOut(ApiModel):
    """A counting zone of a video job, as it was submitted (ADR 0042)."""

    name: str
    polygon: list[tuple[float, float]] = Field(
        description="Its corners, [x, y] in the video's pixels, in drawing order."
    )

    @classmethod
    def from_proto(cls, zone: detection_pb2.CountingZone) -> Self:
        return cls(name=zone.name, polygon=[_pixels(point) for point in zone.polygon])


class ZoneCountOut(ApiModel):
    """Who of one class was in one zone, in the frames detected so far."""

    zone: str = Field(description="The zone's name.")
    class_id: int
    class_name: str
    visited: int = Field(description="Tracked objects seen inside in at least one frame.")
    peak: int = Field(
        description="The most objects inside at once, in one frame (tracked yet or not)."
    )
    mean_stay_seconds: float = Field(
        description="How long a tracked visitor stayed, on average: seconds from the first "
        "to the last sampled frame it was seen inside (0 for one seen inside in one frame)."
    )

    @classmethod
    def from_proto(cls, count: detection_pb2.ZoneCount) -> Self:
        return cls(
            zone=count.zone,
            class_id=count.class_id,
            class_name=count.class_name,
            visited=count.visited,
            peak=count.peak,
            mean_stay_seconds=round(count.mean_stay_seconds, 3),
        )


# A class whose objects an image or a video is shown with pixelated (ADR 0049): a name or id,
# checked against the model by the detection service.
RedactedClass = Annotated[str, Field(min_length=1, max_length=64), UNICODE_TEXT]
REDACT_DESCRIPTION = (
    "Classes (names or ids) whose objects are shown pixelated (ADR 0049), boxes drawn over "
    "them; only what the model found is covered."
)


class VideoFactsOut(ApiModel):
    """A video job's video as its container describes it, how it was sampled, and what the job
    counted: what its owner reads, and anyone it is shared with (ADR 0052)."""

    container: Literal["mp4", "mov", "webm"]
    codec: str = Field(description="The video codec: h264, hevc, vp8, vp9, av1 or mpeg4.")
    width: int
    height: int
    duration_seconds: float
    frame_rate: float = Field(description="Frames per second of the video (average).")
    frame_count: int = Field(description="Frames in the video.")
    sampling: VideoSamplingOut
    sampled_frames: int = Field(description="Frames the sampling picks: the job's total.")
    tracked: bool = Field(
        default=False,
        description="Objects are tracked across the sampled frames (submitted with "
        "`track=true`): they carry a `track_id`.",
    )
    lines: list[CountingLineOut] = Field(
        default_factory=list,
        description="The counting lines it was submitted with (`lines`, ADR 0039), in the "
        "order given; empty for none.",
    )
    line_counts: list[LineCountOut] = Field(
        default_factory=list,
        description="What crossed the counting lines in the frames detected so far, by line "
        "(in the order of `lines`) and class; a line nothing crossed has no count. Each "
        "crossing is also listed in its frame's `crossings`.",
    )
    zones: list[CountingZoneOut] = Field(
        default_factory=list,
        description="The counting zones it was submitted with (`zones`, ADR 0042), in the "
        "order given; empty for none.",
    )
    zone_counts: list[ZoneCountOut] = Field(
        default_factory=list,
        description="Who was in the counting zones in the frames detected so far, by zone (in "
        "the order of `zones`) and class; a zone nobody entered has no count. Each object of "
        "a frame names the zones it stands in (`zones`).",
    )
    redact: list[str] = Field(
        default_factory=list,
        description="The classes its annotated video shows pixelated (`redact`, ADR 0049).",
    )

    @classmethod
    def of(cls, video: detection_pb2.VideoInfo, **more: object) -> Self:
        """The facts of `video`, with the fields a subclass adds as `more`."""
        return cls(
            container=video.container,  # type: ignore[arg-type]
            codec=video.codec,
            width=video.width,
            height=video.height,
            duration_seconds=round(video.duration_seconds, 3),
            frame_rate=round(video.frame_rate, 3),
            frame_count=video.frame_count,
            sampling=VideoSamplingOut(
                fps=round(video.sampling.fps, 3) if video.sampling.fps else None,
                every=video.sampling.every or None,
            ),
            sampled_frames=video.sampled_frames,
            tracked=video.tracked,
            lines=[CountingLineOut.from_proto(line) for line in video.lines],
            line_counts=[LineCountOut.from_proto(count) for count in video.line_counts],
            zones=[CountingZoneOut.from_proto(zone) for zone in video.zones],
            zone_counts=[ZoneCountOut.from_proto(count) for count in video.zone_counts],
            redact=list(video.redact),
            **more,
        )


class VideoInfoOut(VideoFactsOut):
    """The uploaded video of a video job, as its owner reads it: its facts, its file name and
    size, and where its annotated video and frames are read."""

    filename: str
    size_bytes: int
    annotated_url: str | None = Field(
        description="Where the annotated video (MP4, H.264) downloads once the job completed."
    )
    frames_url: str = Field(description="The per-frame detections with their timestamps.")

    @classmethod
    def from_proto(cls, job_id: str, video: detection_pb2.VideoInfo) -> Self:
        base = f"/api/v1/detect/jobs/{job_id}"
        return cls.of(
            video,
            filename=video.filename,
            size_bytes=video.size_bytes,
            annotated_url=f"{base}/annotated" if video.annotated_available else None,
            frames_url=f"{base}/frames",
        )


class JobSummaryOut(ApiModel):
    """A job without its per-image items, as the jobs list shows it: `processed` counts
    failed items too, so progress is processed / total."""

    job_id: str
    status: JobStatus = Field(
        description="pending or processing until it ends completed, failed or cancelled "
        "(stopped by its owner: items not yet processed never will be; those done keep "
        "their results)."
    )
    total: int
    processed: int
    failed: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = Field(
        description="When the job ended (completed, failed or cancelled); null until then."
    )
    kind: JobKind = Field(
        default="batch",
        description="batch: images, one item each; video: one video, whose sampled frames "
        "are the job's total and are listed at `video.frames_url`.",
    )
    video: VideoInfoOut | None = Field(default=None, description="Set on video jobs.")
    error: str | None = Field(
        default=None, description="Why the job failed as a whole (a video that stopped decoding)."
    )
    model: str | None = Field(default=None, description="The model the job runs with.")
    model_version: str | None = Field(
        default=None, description="The model version that answered its items; null until one did."
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description="The key-value pairs given at submission (ADR 0045), keys in "
        "alphabetical order.",
    )
    class_counts: dict[str, int] | None = Field(
        default=None,
        description="Once the job has ended: the objects it found per class, as its final "
        "event (webhook, WebSocket) counted them; null while it runs.",
    )
    items_per_second: float | None = Field(
        default=None,
        description="While the job is processing: the images (a video job: sampled frames) it"
        " finished per second since a worker last started it; null before the first of them"
        " and once it is not processing.",
    )
    estimated_completion_at: datetime | None = Field(
        default=None,
        description="When the job should end if it keeps that pace: the items left over"
        " `items_per_second`; an estimate, null whenever that is.",
    )
    rerun_of: str | None = Field(
        default=None,
        description="The job whose stored images or video this job ran again (POST "
        "/api/v1/detect/jobs/{job_id}/rerun), while that job exists; null otherwise.",
    )

    @staticmethod
    def fields_of(job: detection_pb2.Job) -> dict[str, Any]:
        """The summary's fields of a job message (JobOut adds its items)."""
        is_video = job.HasField("video")
        return {
            "kind": "video" if is_video else "batch",
            "video": VideoInfoOut.from_proto(job.id, job.video) if is_video else None,
            "error": job.error or None,
            "model": job.model or None,
            "model_version": job.model_version or None,
            "metadata": dict(sorted(job.metadata.items())),
            "class_counts": (
                dict(job.class_counts.counts) if job.HasField("class_counts") else None
            ),
            "job_id": job.id,
            "status": _status(_JOB_STATUSES, job.status, "job"),
            "total": job.total,
            "processed": job.processed,
            "failed": job.failed,
            "created_at": to_datetime(job.created_at),
            "updated_at": to_datetime(job.updated_at),
            "completed_at": optional_datetime(job, "completed_at"),
            "items_per_second": (
                job.items_per_second if job.HasField("items_per_second") else None
            ),
            "estimated_completion_at": optional_datetime(job, "estimated_completion_at"),
            "rerun_of": job.rerun_of or None,
        }

    @classmethod
    def from_proto(cls, job: detection_pb2.Job) -> Self:
        return cls(**cls.fields_of(job))


class JobOut(JobSummaryOut):
    """A job with its per-image items (a video job has none: its frames are listed at
    `video.frames_url`)."""

    items: list[JobItemOut]

    @classmethod
    def from_proto(cls, job: detection_pb2.Job) -> Self:
        return cls(**cls.fields_of(job), items=[JobItemOut.from_proto(item) for item in job.items])


class JobListOut(PageOut[JobSummaryOut]):
    """One page of the caller's jobs, newest first, without their items."""

    total: int = Field(description="How many jobs match the filters in all.")

    @classmethod
    def from_proto(cls, listed: detection_pb2.ListJobsResponse) -> Self:
        return cls.of(map(JobSummaryOut.from_proto, listed.jobs), listed)
