"""Bodies of share links and of what they show: a detection (ADR 0048) or a video job (ADR
0052)."""

import uuid
from collections import Counter
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import Field

from gateway.schemas.base import ApiModel, PageOut, ProtoMirror, optional_datetime, to_datetime
from gateway.schemas.detect import DetectedObjectOut, ImageSizeOut, RedactedClass, VideoFactsOut
from objectvision.v1 import detection_pb2
from objectvision_common.limits import (
    DEFAULT_SHARE_LINK_DAYS,
    MAX_REDACTED_CLASSES,
    MAX_SHARE_LINK_DAYS,
)


class ShareLinkIn(ApiModel):
    # Not strict: JSON has no UUID type, so the ids arrive as text.
    detection_id: uuid.UUID | None = Field(
        default=None, strict=False, description="The stored detection to share."
    )
    job_id: uuid.UUID | None = Field(
        default=None,
        strict=False,
        description="Or a completed video job to share (ADR 0052): its annotated video and "
        "what the job counted. Exactly one of `detection_id` and `job_id` (422 otherwise).",
    )
    expires_in_days: int = Field(
        default=DEFAULT_SHARE_LINK_DAYS,
        ge=1,
        le=MAX_SHARE_LINK_DAYS,
        description="Days the link works; it can be revoked before.",
    )
    redact: list[RedactedClass] = Field(
        default_factory=list,
        max_length=MAX_REDACTED_CLASSES,
        description="Classes (names or ids) whose objects the link's image always shows "
        "pixelated, with its boxes or without (ADR 0049): the image as uploaded is then never "
        "shown through the link. Only what the model found is covered. Not for a video job, "
        "whose annotated video is shown as the job drew it (submit it with `redact`).",
    )


class ShareLinkOut(ProtoMirror):
    """A link to one stored detection or video job, as its owner sees it (never its token)."""

    id: str
    detection_id: str | None = Field(description="The detection it shows; null for a job's.")
    job_id: str | None = Field(description="The video job it shows; null for a detection's.")
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = Field(description="Null unless revoked.")
    active: bool = Field(
        description="It shows the detection now: not expired, not revoked, and the account "
        "not suspended."
    )
    views: int = Field(description="Times the detection was read through it.")
    last_viewed_at: datetime | None
    token_prefix: str = Field(description="The token's first characters, to tell links apart.")
    redact: list[str] = Field(description="Classes its image shows pixelated.")


class CreatedShareLinkOut(ShareLinkOut):
    """A new link: the only response that carries its token."""

    token: str = Field(
        description="The secret the link is. Kept only as a hash: this is the one time it is "
        "shown. Anyone holding it reads the detection: send it as the X-Share-Token header "
        "of GET /api/v1/shared, or share `url`."
    )
    url: str = Field(
        description="The console's page of the shared detection. The token is in the URL's "
        "fragment, which browsers never send to a server."
    )

    @classmethod
    def of(cls, created: detection_pb2.CreatedShareLink, *, console_base_url: str) -> Self:
        link = ShareLinkOut.from_proto(created.link)
        return cls(
            **link.model_dump(),
            token=created.token,
            url=f"{console_base_url.rstrip('/')}/#/shared?token={created.token}",
        )


class ShareLinkListOut(PageOut[ShareLinkOut]):
    total: int = Field(description="Links in the list (of the detection, if one was named).")

    @classmethod
    def from_proto(cls, listed: detection_pb2.ListShareLinksResponse) -> Self:
        return cls.of((ShareLinkOut.from_proto(link) for link in listed.links), listed)


class SharedDetectionOut(ApiModel):
    """A shared detection as anyone with its link reads it: the image's size and objects, the
    model and when it ran. Not the owner's file name, metadata, ids or account."""

    kind: Literal["detection"] = Field(
        default="detection", description="What the link shows: read its image at /image."
    )
    image: ImageSizeOut
    detections: list[DetectedObjectOut]
    counts: dict[str, int] = Field(description="Objects per class (class name -> count).")
    model: str | None
    model_version: str | None
    detected_at: datetime
    expires_at: datetime = Field(description="When the link stops working, unless revoked.")

    @classmethod
    def from_proto(cls, shared: detection_pb2.SharedDetection) -> Self:
        return cls(
            image=ImageSizeOut(width=shared.width, height=shared.height),
            detections=[DetectedObjectOut.from_proto(obj) for obj in shared.objects],
            counts=dict(Counter(obj.class_name for obj in shared.objects)),
            model=shared.model or None,
            model_version=shared.model_version or None,
            detected_at=to_datetime(shared.detected_at),
            expires_at=to_datetime(shared.expires_at),
        )


class SharedVideoOut(ApiModel):
    """A shared video job as anyone with its link reads it (ADR 0052): the video's facts, what
    the job counted, the model and when it completed. Not the owner's file name, metadata, ids
    or account; the annotated video itself is read at /video."""

    kind: Literal["video"] = Field(
        default="video", description="What the link shows: read its annotated video at /video."
    )
    video: VideoFactsOut
    counts: dict[str, int] = Field(description="Objects per class the job found.")
    model: str | None
    model_version: str | None
    completed_at: datetime | None
    expires_at: datetime = Field(description="When the link stops working, unless revoked.")

    @classmethod
    def from_proto(cls, shared: detection_pb2.SharedVideo) -> Self:
        return cls(
            video=VideoFactsOut.of(shared.video),
            counts=dict(shared.class_counts),
            model=shared.model or None,
            model_version=shared.model_version or None,
            completed_at=optional_datetime(shared, "completed_at"),
            expires_at=to_datetime(shared.expires_at),
        )


SharedOut = Annotated[SharedDetectionOut | SharedVideoOut, Field(discriminator="kind")]


def shared_out(shared: detection_pb2.Shared) -> SharedDetectionOut | SharedVideoOut:
    """What a link shows, as the body of its kind."""
    if shared.WhichOneof("shown") == "video":
        return SharedVideoOut.from_proto(shared.video)
    return SharedDetectionOut.from_proto(shared.detection)
