"""What the detection routes take, as dependencies: the upload, its detection parameters and
the history filters, checked as far as the gateway can without the service and shaped as the
detection service takes them.

Uploads are multipart/form-data, parsed once (by Starlette, cached on the request): FastAPI
validates the route's form model from that parse, which also puts the model in the OpenAPI
document, and the files are counted from the same parse because a model field keeps only one
of two parts named `file`. The detection parameters may come as query parameters or as form
fields, not both. The gateway checks the content type, parameter ranges, file counts and
sizes; the detection service judges the bytes themselves (format, completeness, pixel count).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import Depends, File, Header, Query, Request
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import StringConstraints
from starlette.datastructures import FormData, UploadFile

from gateway.dependencies import SettingsDep
from gateway.errors import ApiError
from gateway.schemas.detect import Absent, DetectBatchForm, DetectImageForm, DetectionParamsIn
from gateway.schemas.video import DetectVideoForm, VideoSamplingIn
from objectvision.v1 import detection_pb2
from objectvision_common.limits import MAX_IDEMPOTENCY_KEY_CHARS
from objectvision_common.sizes import readable_size

T = TypeVar("T")

MAX_CLASS_NAME_CHARS = 100
_MAX_SHOWN_FILENAME_CHARS = 100
_PARAMS = tuple(DetectionParamsIn.model_fields)

# Printable ASCII without surrounding spaces: what HTTP carries unchanged.
IdempotencyKey = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=MAX_IDEMPOTENCY_KEY_CHARS, pattern=r"^[!-~](?:[ -~]*[!-~])?$"
    ),
]
IdempotencyKeyHeader = Annotated[
    IdempotencyKey | Absent,
    Header(
        alias="Idempotency-Key",
        description="Retrying a submission with the same key returns the first job "
        "instead of making a new one.",
    ),
]
ClassName = Annotated[str, StringConstraints(max_length=MAX_CLASS_NAME_CHARS, pattern=r"\S")]
ParamsQuery = Annotated[DetectionParamsIn, Query()]
SamplingQuery = Annotated[VideoSamplingIn, Query()]
StoreQuery = Annotated[
    bool | Absent, Query(description=DetectImageForm.model_fields["store"].description)
]


async def multipart_form(request: Request) -> FormData:
    """The parsed form; 415 for anything but multipart/form-data, where an empty form would
    otherwise read as 'file missing'. Taken after authentication, so an anonymous caller
    gets 401 first."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "upload images as multipart/form-data")
    return await request.form()


MultipartForm = Annotated[FormData, Depends(multipart_form)]


def _one_of(name: str, query: T | None, form: T | None) -> T | None:
    if query is not None and form is not None:
        raise ApiError.invalid(
            ["body", name], f"give {name} once, as a query parameter or a form field"
        )
    return query if query is not None else form


def _detect_params(
    query: DetectionParamsIn, form: DetectionParamsIn
) -> detection_pb2.DetectionParams:
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


def _files(form: FormData, *fields: str) -> list[UploadFile]:
    """Every file part under these names, in upload order."""
    return [
        value
        for name, value in form.multi_items()
        if name in fields and isinstance(value, UploadFile)
    ]


def _only_file(parts: FormData, what: str, where: str, fields: tuple[str, ...]) -> UploadFile:
    """The one file part under these names; 422 at `where` for none or more."""
    uploads = _files(parts, *fields)
    if len(uploads) != 1:
        raise ApiError.invalid(["body", where], f"send exactly one {what}; got {len(uploads)}")
    return uploads[0]


def _shown_name(upload: UploadFile, position: int) -> str:
    name = (upload.filename or "").strip()[:_MAX_SHOWN_FILENAME_CHARS]
    return repr(name) if name else f"#{position + 1}"


def _too_large(what: str, upload: UploadFile, position: int, size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"{what} {_shown_name(upload, position)} is {readable_size(size)}; "
        f"at most {readable_size(limit)} per {what} are accepted",
    )


def utf8(text: str | None) -> str:
    """Proto strings must be valid UTF-8; the service sanitises names for display."""
    return (text or "").encode("utf-8", "replace").decode("utf-8")


async def _image_input(
    upload: UploadFile, position: int, max_bytes: int
) -> detection_pb2.ImageInput:
    """The file's bytes for the service; 413 unread when the parser already counted too many."""
    if upload.size is not None and upload.size > max_bytes:
        raise _too_large("image", upload, position, upload.size, max_bytes)
    data = await upload.read()
    if len(data) > max_bytes:
        raise _too_large("image", upload, position, len(data), max_bytes)
    return detection_pb2.ImageInput(
        data=data, filename=utf8(upload.filename), content_type=utf8(upload.content_type)
    )


@dataclass(frozen=True)
class ImageUpload:
    """One image to detect now, with its parameters and whether to keep it."""

    image: detection_pb2.ImageInput
    params: detection_pb2.DetectionParams
    store: bool


async def one_image(
    parts: MultipartForm,
    settings: SettingsDep,
    form: Annotated[DetectImageForm, File()],
    query: ParamsQuery,
    store: StoreQuery = None,
) -> ImageUpload:
    where = "files" if form.file is None and form.files else "file"
    upload = _only_file(parts, "image", where, ("file", "files"))
    params = _detect_params(query, form)
    keep = _one_of("store", store, form.store)
    image = await _image_input(upload, 0, settings.max_upload_bytes)
    return ImageUpload(image=image, params=params, store=True if keep is None else keep)


OneImage = Annotated[ImageUpload, Depends(one_image)]


@dataclass(frozen=True)
class BatchUpload:
    """The images of one batch job, those refused from their size, the parameters and the
    submission's idempotency key ("" for none)."""

    images: list[detection_pb2.ImageInput]
    refused: list[detection_pb2.RefusedImage]
    params: detection_pb2.DetectionParams
    idempotency_key: str


async def batch_images(
    parts: MultipartForm,
    settings: SettingsDep,
    form: Annotated[DetectBatchForm, File()],
    query: ParamsQuery,
    idempotency_key: IdempotencyKeyHeader = None,
) -> BatchUpload:
    """Each file gets its own result: one refused from its size is a failed item of the job
    with its reason, and the request is refused only when no file is usable."""
    uploads = _files(parts, "files")
    if not 1 <= len(uploads) <= settings.max_batch_files:
        raise ApiError.invalid(
            ["body", "files"], f"send 1 to {settings.max_batch_files} images; got {len(uploads)}"
        )
    params = _detect_params(query, form)
    images: list[detection_pb2.ImageInput] = []
    refused: list[detection_pb2.RefusedImage] = []
    for position, upload in enumerate(uploads):
        try:
            images.append(await _image_input(upload, position, settings.max_upload_bytes))
        except ApiError as error:
            reason = f"{error.message}; left out of the job"
            refused.append(
                detection_pb2.RefusedImage(filename=utf8(upload.filename), reason=reason)
            )
            if len(refused) == len(uploads):
                raise
    total_bytes = sum(len(image.data) for image in images)
    if total_bytes > settings.max_batch_bytes:
        raise ApiError(
            413,
            "payload_too_large",
            f"the images are {readable_size(total_bytes)} together; at most"
            f" {readable_size(settings.max_batch_bytes)} per batch are accepted: split them into"
            " several jobs",
        )
    return BatchUpload(
        images=images, refused=refused, params=params, idempotency_key=idempotency_key or ""
    )


BatchImages = Annotated[BatchUpload, Depends(batch_images)]


@dataclass(frozen=True)
class VideoFile:
    """One video, still spooled by Starlette (never whole in memory), with the parameters,
    the frame sampling and the submission's idempotency key ("" for none)."""

    file: UploadFile
    size_bytes: int
    params: detection_pb2.DetectionParams
    sampling: detection_pb2.VideoSampling
    idempotency_key: str


def _sampling(query: VideoSamplingIn, form: VideoSamplingIn) -> detection_pb2.VideoSampling:
    fps = _one_of("fps", query.fps, form.fps)
    every = _one_of("every", query.every, form.every)
    if fps is not None and every is not None:
        raise ApiError.invalid(["body", "every"], "give fps or every, not both")
    return detection_pb2.VideoSampling(fps=fps or 0.0, every=every or 0)


async def video_upload(
    parts: MultipartForm,
    settings: SettingsDep,
    form: Annotated[DetectVideoForm, File()],
    query: SamplingQuery,
    idempotency_key: IdempotencyKeyHeader = None,
) -> VideoFile:
    upload = _only_file(parts, "video", "file", ("file",))
    size = upload.size if upload.size is not None else 0
    if size > settings.max_video_bytes:
        raise _too_large("video", upload, 0, size, settings.max_video_bytes)
    return VideoFile(
        file=upload,
        size_bytes=size,
        params=_detect_params(query, form),
        sampling=_sampling(query, form),
        idempotency_key=idempotency_key or "",
    )


VideoUpload = Annotated[VideoFile, Depends(video_upload)]


def _timestamp(value: datetime | None, name: str) -> Timestamp | None:
    """A query datetime as a protobuf Timestamp; one without a zone is taken as UTC."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    stamp = Timestamp()
    try:
        stamp.FromDatetime(aware.astimezone(UTC))
    except (OverflowError, ValueError):
        raise ApiError.invalid(["query", name], "the time is out of range") from None
    return stamp


@dataclass(frozen=True)
class HistoryFilter:
    """Which of the caller's detections: the fields of ListDetectionsRequest and
    ExportDetectionsRequest that filter."""

    class_filter: str
    since: Timestamp | None
    until: Timestamp | None


async def history_filter(
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
) -> HistoryFilter:
    since_stamp, until_stamp = _timestamp(since, "since"), _timestamp(until, "until")
    if since_stamp and until_stamp and since_stamp.ToDatetime() > until_stamp.ToDatetime():
        raise ApiError.invalid(["query", "since"], "since is after until")
    return HistoryFilter(
        class_filter=(class_name or "").strip(), since=since_stamp, until=until_stamp
    )


HistoryFilterQuery = Annotated[HistoryFilter, Depends(history_filter)]
