"""Typed results of the API calls, read from the JSON bodies the gateway documents.

Each model keeps the body it came from in `raw`, so `--json` output and callers that need a
field this version does not know yet see exactly what the API sent.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Self

JOB_FINAL_STATUSES = frozenset({"completed", "failed"})

Json = Mapping[str, Any]


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _required_datetime(value: Any) -> datetime:
    parsed = _datetime(value)
    if parsed is None:
        raise ValueError(f"expected an ISO 8601 time, got {value!r}")
    return parsed


@dataclass(frozen=True)
class _Answer:
    """Base of the models read from a whole response body, which they keep in `raw` (the
    module docstring says why). Keyword-only, so it comes after the fields of whichever model
    it is part of; not compared or shown, so two answers with the same fields are equal
    however they were sent."""

    raw: Json = field(repr=False, compare=False, default_factory=dict, kw_only=True)


@dataclass(frozen=True)
class _Created:
    """Mixed in before a resource (`class CreatedApiKey(_Created, ApiKey)`): the resource as
    its creation response gives it, with the `secret` no other response carries."""

    secret: str = field(default="", repr=False)

    @classmethod
    def from_json(cls, body: Json) -> Self:
        resource: Any = super()
        return replace(resource.from_json(body), secret=body["secret"])


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return cls(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            expires_in=int(body.get("expires_in", 0)),
            token_type=body.get("token_type", "bearer"),
        )


@dataclass(frozen=True)
class SignUpAccepted(_Answer):
    """The answer to a sign-up. The gateway gives the same one whether or not the address
    already had an account (that account's owner is told instead), so it names no account:
    log in with `email` and the password to continue."""

    email: str
    message: str

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return cls(email=body["email"], message=body.get("message", ""), raw=body)


@dataclass(frozen=True)
class User(_Answer):
    id: str
    email: str
    name: str
    created_at: datetime

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return cls(
            id=body["id"],
            email=body["email"],
            name=body["name"],
            created_at=_required_datetime(body["created_at"]),
            raw=body,
        )


@dataclass(frozen=True)
class BoundingBox:
    """Corners in original-image pixels (x to the right, y down)."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


@dataclass(frozen=True)
class DetectedObject:
    class_name: str
    class_id: int
    confidence: float
    bbox: BoundingBox

    @classmethod
    def from_json(cls, body: Json) -> Self:
        box = body["bbox"]
        return cls(
            class_name=body["class"],
            class_id=int(body["class_id"]),
            confidence=float(body["confidence"]),
            bbox=BoundingBox(
                float(box["x1"]), float(box["y1"]), float(box["x2"]), float(box["y2"])
            ),
        )


@dataclass(frozen=True)
class DetectionResult(_Answer):
    """The objects found in one image, highest confidence first."""

    detection_id: str | None
    filename: str
    width: int
    height: int
    objects: tuple[DetectedObject, ...]
    total_ms: float | None
    # The model and version that answered (None on detections stored before models existed).
    model: str | None = None
    model_version: str | None = None
    # Answered from the result cache: the same bytes, model version and options were seen
    # before, so no inference ran.
    cached: bool = False

    @classmethod
    def from_json(cls, body: Json) -> Self:
        image = body.get("image") or {}
        return cls(
            detection_id=body.get("detection_id"),
            filename=body.get("filename", ""),
            width=int(image.get("width", 0)),
            height=int(image.get("height", 0)),
            objects=tuple(DetectedObject.from_json(item) for item in body.get("detections", [])),
            total_ms=(body.get("timings") or {}).get("total_ms"),
            raw=body,
            model=body.get("model"),
            model_version=body.get("model_version"),
            cached=bool(body.get("cached", False)),
        )

    def class_counts(self) -> dict[str, int]:
        """How many objects of each class, most frequent first."""
        counts: dict[str, int] = {}
        for obj in self.objects:
            counts[obj.class_name] = counts.get(obj.class_name, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


@dataclass(frozen=True)
class StoredDetection(DetectionResult):
    """A detection from the history: the result plus its record."""

    status: str = "completed"
    job_id: str | None = None
    created_at: datetime | None = None

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return replace(
            super().from_json(body),
            status=body.get("status", "completed"),
            job_id=body.get("job_id"),
            created_at=_datetime(body.get("created_at")),
        )


@dataclass(frozen=True)
class HistoryPage:
    items: tuple[StoredDetection, ...]
    total: int
    limit: int
    offset: int

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return cls(
            items=tuple(StoredDetection.from_json(item) for item in body.get("items", [])),
            total=int(body.get("total", 0)),
            limit=int(body.get("limit", 0)),
            offset=int(body.get("offset", 0)),
        )


@dataclass(frozen=True)
class JobItem:
    filename: str
    status: str
    detection_id: str | None
    error: str | None
    object_count: int

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return cls(
            filename=body.get("filename", ""),
            status=body.get("status", "pending"),
            detection_id=body.get("detection_id"),
            error=body.get("error"),
            object_count=int(body.get("object_count", 0)),
        )


@dataclass(frozen=True)
class Job(_Answer):
    """A batch job. `processed` counts failed images too, so progress is processed / total."""

    job_id: str
    status: str
    total: int
    processed: int
    failed: int
    items: tuple[JobItem, ...]
    created_at: datetime | None = None
    completed_at: datetime | None = None
    # The model the job runs with, and the version that answered its items.
    model: str | None = None
    model_version: str | None = None
    # "batch" or "video"; a video job's upload and sampling, and why a job failed as a whole.
    kind: str = "batch"
    video: "VideoInfo | None" = None
    error: str | None = None

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return cls(
            kind=body.get("kind", "batch"),
            video=VideoInfo.from_json(body["video"]) if body.get("video") else None,
            error=body.get("error"),
            model=body.get("model"),
            model_version=body.get("model_version"),
            job_id=body["job_id"],
            status=body.get("status", "pending"),
            total=int(body.get("total", 0)),
            processed=int(body.get("processed", 0)),
            failed=int(body.get("failed", 0)),
            items=tuple(JobItem.from_json(item) for item in body.get("items", [])),
            created_at=_datetime(body.get("created_at")),
            completed_at=_datetime(body.get("completed_at")),
            raw=body,
        )

    @property
    def done(self) -> bool:
        return self.status in JOB_FINAL_STATUSES


@dataclass(frozen=True)
class VideoInfo:
    """A video job's upload as its container describes it, and how its frames are sampled."""

    filename: str
    container: str
    codec: str
    width: int
    height: int
    duration_seconds: float
    frame_rate: float
    frame_count: int
    sampled_frames: int
    fps: float | None
    every: int | None
    annotated_url: str | None

    @classmethod
    def from_json(cls, body: Json) -> Self:
        sampling = body.get("sampling") or {}
        return cls(
            filename=body.get("filename", ""),
            container=body["container"],
            codec=body["codec"],
            width=int(body["width"]),
            height=int(body["height"]),
            duration_seconds=float(body["duration_seconds"]),
            frame_rate=float(body["frame_rate"]),
            frame_count=int(body["frame_count"]),
            sampled_frames=int(body["sampled_frames"]),
            fps=sampling.get("fps"),
            every=sampling.get("every"),
            annotated_url=body.get("annotated_url"),
        )


@dataclass(frozen=True)
class VideoFrame:
    """One sampled frame of a video job: its index, its time and what was found in it."""

    frame_index: int
    timestamp_seconds: float
    timestamp_ms: int
    detections: tuple[DetectedObject, ...]
    error: str | None

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return cls(
            frame_index=int(body["frame_index"]),
            timestamp_seconds=float(body["timestamp_seconds"]),
            timestamp_ms=int(body["timestamp_ms"]),
            detections=tuple(DetectedObject.from_json(d) for d in body.get("detections", [])),
            error=body.get("error"),
        )


@dataclass(frozen=True)
class VideoFramesPage(_Answer):
    """One page of a video job's frames, in frame order; boxes in video pixels."""

    job_id: str
    width: int
    height: int
    frames: tuple[VideoFrame, ...]
    total: int
    limit: int
    offset: int

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return cls(
            job_id=body["job_id"],
            width=int(body["width"]),
            height=int(body["height"]),
            frames=tuple(VideoFrame.from_json(frame) for frame in body.get("frames", [])),
            total=int(body["total"]),
            limit=int(body["limit"]),
            offset=int(body["offset"]),
            raw=body,
        )


@dataclass(frozen=True)
class ApiKey(_Answer):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return cls(
            id=body["id"],
            name=body["name"],
            prefix=body["prefix"],
            created_at=_required_datetime(body["created_at"]),
            last_used_at=_datetime(body.get("last_used_at")),
            revoked_at=_datetime(body.get("revoked_at")),
            raw=body,
        )


@dataclass(frozen=True)
class CreatedApiKey(_Created, ApiKey):
    """A new key; `secret` is in the creation response only."""


@dataclass(frozen=True)
class Webhook(_Answer):
    id: str
    url: str
    events: tuple[str, ...]
    created_at: datetime

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return cls(
            id=body["id"],
            url=body["url"],
            events=tuple(body.get("events", [])),
            created_at=_required_datetime(body["created_at"]),
            raw=body,
        )


@dataclass(frozen=True)
class CreatedWebhook(_Created, Webhook):
    """A new webhook; `secret` (the signing key) is in the creation response only."""


@dataclass(frozen=True)
class ExportedFile:
    """What `Client.export` wrote: the server's name for the file (Content-Disposition),
    its media type and how many bytes arrived."""

    filename: str
    content_type: str
    size: int

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], size: int) -> Self:
        disposition = headers.get("content-disposition", "")
        name = ""
        for part in disposition.split(";"):
            key, _, value = part.strip().partition("=")
            if key.lower() == "filename":
                name = value.strip().strip('"')
        return cls(filename=name, content_type=headers.get("content-type", ""), size=size)


@dataclass(frozen=True)
class ServedModel:
    """A model the deployment serves (``GET /api/v1/models``): what ``model`` accepts."""

    name: str
    version: str
    task: str
    input_size: int
    classes: tuple[str, ...]
    precision: str
    device: str
    ready: bool
    state: str
    default: bool
    reason: str | None = None

    @classmethod
    def from_json(cls, body: Json) -> Self:
        return cls(
            name=body["name"],
            version=str(body.get("version", "")),
            task=body.get("task", ""),
            input_size=int(body.get("input_size", 0)),
            classes=tuple(body.get("classes", [])),
            precision=body.get("precision", ""),
            device=body.get("device", ""),
            ready=bool(body.get("ready", False)),
            state=body.get("state", ""),
            default=bool(body.get("default", False)),
            reason=body.get("reason"),
        )


def served_models(body: Json) -> list[ServedModel]:
    return [ServedModel.from_json(item) for item in body.get("items", [])]
