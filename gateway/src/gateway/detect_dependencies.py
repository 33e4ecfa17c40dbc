"""What the detection routes take, as dependencies: the upload, its detection parameters and
the history filters, checked as far as the gateway can without the service and shaped as the
detection service takes them.

Images come as multipart/form-data files, or in an application/json body by URL or as base64
(ADR 0027). A multipart body is parsed once (by Starlette, cached on the request): FastAPI
validates the route's form model from that parse, which also puts the model in the OpenAPI
document, and the files are counted from the same parse because a model field keeps only one
of two parts named `file`. A JSON body is read here, after authentication, into its own model
(documented by the route's `openapi_extra`), and its URLs are fetched here too
(gateway.media_urls). The detection parameters may come as query parameters or in the body,
not both. The gateway checks the content type, parameter ranges, image counts and sizes; the
detection service judges the bytes themselves (format, completeness, pixel count), however
they came.
"""

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, BinaryIO, TypeVar, cast

from fastapi import Depends, File, Header, Query, Request
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, RootModel, StringConstraints, ValidationError
from starlette.datastructures import FormData, UploadFile

from gateway.auth.dependencies import CurrentPrincipal
from gateway.config import GatewaySettings, RateLimitRule
from gateway.dependencies import ImageFetcherDep, RateLimiterDep, SettingsDep, VideoFetcherDep
from gateway.errors import ApiError, validation_error
from gateway.media_urls import (
    FETCHES_PER_BATCH,
    ByteBudget,
    OverBudget,
    UrlFetcher,
    url_filename,
)
from gateway.ratelimit import RateLimiter, limit_key
from gateway.schemas.base import request_body_schema
from gateway.schemas.detect import (
    METADATA_EXAMPLE,
    Absent,
    DetectBatchForm,
    DetectBatchJson,
    DetectImageForm,
    DetectImageJson,
    DetectionParamsIn,
    ImageSourceIn,
    MetadataIn,
    RerunJobJson,
)
from gateway.schemas.video import (
    CountingLinesIn,
    CountingZonesIn,
    DetectVideoForm,
    VideoOptionsIn,
    VideoSamplingIn,
)
from objectvision.v1 import detection_pb2
from objectvision_common.errors import InvalidArgument
from objectvision_common.limits import (
    MAX_FILENAME_FILTER_CHARS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    checked_filename_filter,
    checked_metadata,
)
from objectvision_common.sizes import readable_size

T = TypeVar("T")
Model = TypeVar("Model", bound=BaseModel)
Item = TypeVar("Item")

MAX_CLASS_NAME_CHARS = 100
_MAX_SHOWN_FILENAME_CHARS = 100
# A video fetched by URL is kept in memory up to this size, then on disk, as uploads are.
_VIDEO_SPOOL_BYTES = 1024 * 1024
_PARAMS = tuple(DetectionParamsIn.model_fields)
_JSON = "application/json"
_URLENCODED = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"

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
StoredDetectKeyHeader = Annotated[
    IdempotencyKey | Absent,
    Header(
        alias="Idempotency-Key",
        description="Retrying a stored detection with the same key answers what the first "
        "request stored (`Idempotent-Replayed: true`), and detects, stores and counts nothing "
        "again (ADR 0047); needs store=true.",
    ),
]
ClassName = Annotated[str, StringConstraints(max_length=MAX_CLASS_NAME_CHARS, pattern=r"\S")]
# Parameters that only a form or a JSON body carries: too long for a URL.
_BODY_ONLY_PARAMS = ("regions",)


def _no_body_only_params(request: Request) -> None:
    """A 422 naming a body-only parameter sent in the query string, rather than ignoring it."""
    for name in _BODY_ONLY_PARAMS:
        if name in request.query_params:
            raise ApiError.invalid(
                ["query", name], f"send {name} as a form field or in the JSON body, not in the URL"
            )


async def _params_query(
    request: Request, query: Annotated[DetectionParamsIn, Query()]
) -> DetectionParamsIn:
    _no_body_only_params(request)
    return query


async def _video_query(
    request: Request, query: Annotated[VideoOptionsIn, Query()]
) -> VideoOptionsIn:
    _no_body_only_params(request)
    return query


ParamsQuery = Annotated[DetectionParamsIn, Depends(_params_query)]
VideoQuery = Annotated[VideoOptionsIn, Depends(_video_query)]
StoreQuery = Annotated[
    bool | Absent, Query(description=DetectImageForm.model_fields["store"].description)
]


def _json_alternative(model: type[BaseModel], *, optional: bool = False) -> dict[str, Any]:
    """The route's `openapi_extra`: its JSON body beside the multipart one FastAPI documents
    (`optional`: the route's only body, which may be left out)."""
    body: dict[str, Any] = {"content": {_JSON: {"schema": request_body_schema(model)}}}
    if optional:
        body["required"] = False
    return {"requestBody": body}


IMAGE_JSON_BODY = _json_alternative(DetectImageJson)
BATCH_JSON_BODY = _json_alternative(DetectBatchJson)
RERUN_JSON_BODY = _json_alternative(RerunJobJson, optional=True)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def multipart_form(request: Request) -> FormData:
    """The parsed form; 415 for anything but multipart/form-data, where an empty form would
    otherwise read as 'file missing'. Taken after authentication, so an anonymous caller
    gets 401 first."""
    if _media_type(request) != _MULTIPART:
        raise ApiError(415, "unsupported_media_type", "upload images as multipart/form-data")
    return await request.form()


MultipartForm = Annotated[FormData, Depends(multipart_form)]


async def video_form(request: Request) -> FormData:
    """The video route's form: multipart/form-data (the file, or its `url`), or a URL-encoded
    form that gives the `url` and the options (`curl -d url=…`); 415 for anything else."""
    if _media_type(request) not in (_MULTIPART, _URLENCODED):
        raise ApiError(
            415,
            "unsupported_media_type",
            "upload the video as multipart/form-data, or give its url in a form",
        )
    return await request.form()


VideoForm = Annotated[FormData, Depends(video_form)]


async def image_body(request: Request) -> FormData | bytes:
    """An image route's body: the parsed form for multipart/form-data, the raw bytes for
    application/json; 415 for anything else. Taken after authentication, like
    `multipart_form`, so a JSON body's URLs are never fetched for an anonymous caller."""
    media_type = _media_type(request)
    if media_type == _JSON:
        return await request.body()
    if media_type == _MULTIPART:
        return await request.form()
    raise ApiError(
        415,
        "unsupported_media_type",
        "upload images as multipart/form-data, or send them by URL or as base64 in an "
        "application/json body",
    )


ImageBody = Annotated[FormData | bytes, Depends(image_body)]


def _parsed(model: type[Model], body: bytes) -> Model:
    """A JSON body as `model`; 422 (`malformed_json` when it is not JSON at all) at `body`."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise validation_error(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_input=False)]
        ) from None


def _one_of(name: str, query: T | None, form: T | None) -> T | None:
    if query is not None and form is not None:
        raise ApiError.invalid(
            ["body", name], f"give {name} once, as a query parameter or in the body"
        )
    return query if query is not None else form


def _detect_params(
    query: DetectionParamsIn, form: DetectionParamsIn, regions: list[detection_pb2.Region]
) -> detection_pb2.DetectionParams:
    """The parameters from wherever they came, and the form's or body's `regions` (ADR 0053);
    zeros mean the service defaults."""
    chosen = DetectionParamsIn(
        **{name: _one_of(name, getattr(query, name), getattr(form, name)) for name in _PARAMS}
    )
    return chosen.to_proto(regions)


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


def _shown_name(filename: str | None, position: int) -> str:
    name = (filename or "").strip()[:_MAX_SHOWN_FILENAME_CHARS]
    return repr(name) if name else f"#{position + 1}"


def _too_large(what: str, filename: str | None, position: int, size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"{what} {_shown_name(filename, position)} is {readable_size(size)}; "
        f"at most {readable_size(limit)} per {what} are accepted",
    )


def utf8(text: str | None) -> str:
    """Proto strings must be valid UTF-8; the service sanitises names for display."""
    return (text or "").encode("utf-8", "replace").decode("utf-8")


def _checked_input(
    data: bytes, filename: str | None, content_type: str, position: int, max_bytes: int
) -> detection_pb2.ImageInput:
    """One image's bytes for the service; 413 past the upload limit."""
    if len(data) > max_bytes:
        raise _too_large("image", filename, position, len(data), max_bytes)
    return detection_pb2.ImageInput(
        data=data, filename=utf8(filename), content_type=utf8(content_type)
    )


async def _image_input(
    upload: UploadFile, position: int, max_bytes: int
) -> detection_pb2.ImageInput:
    """The file's bytes for the service; 413 unread when the parser already counted too many."""
    if upload.size is not None and upload.size > max_bytes:
        raise _too_large("image", upload.filename, position, upload.size, max_bytes)
    data = await upload.read()
    return _checked_input(data, upload.filename, upload.content_type or "", position, max_bytes)


def _source_name(source: ImageSourceIn) -> str:
    return source.filename or url_filename(source.url or "")


async def _source_input(
    source: ImageSourceIn,
    position: int,
    fetcher: UrlFetcher,
    max_bytes: int,
    budget: ByteBudget | None = None,
) -> detection_pb2.ImageInput:
    """A JSON body's image for the service: fetched from its URL (its bytes taken from the
    request's `budget`, where it has one), or decoded from base64; named by its `filename`,
    else by the URL's last path segment."""
    name = _source_name(source)
    if source.url is not None:
        fetched = await fetcher.fetch(source.url, budget=budget)
        return _checked_input(fetched.data, name, fetched.content_type, position, max_bytes)
    return _checked_input(source.image_base64 or b"", name, "", position, max_bytes)


@dataclass(frozen=True)
class UrlFetchAllowance:
    """The caller's RATE_LIMIT_IMAGE_URLS: a request's URLs are counted before any of them
    is fetched, all or none in one step, so a batch is never left half fetched by the limit."""

    limiter: RateLimiter
    rule: RateLimitRule
    user_id: str

    async def take(self, sources: Sequence[ImageSourceIn]) -> None:
        await self._take(sum(1 for source in sources if source.url is not None), "image")

    async def take_video(self) -> None:
        """A video's URL counts as one fetch, as an image's does."""
        await self._take(1, "video")

    async def _take(self, wanted: int, noun: str) -> None:
        if not wanted:
            return
        decision = await self.limiter.hit(
            limit_key("image-urls", self.user_id), self.rule, cost=wanted
        )
        if not decision.allowed:
            raise ApiError(
                429,
                "rate_limited",
                f"{wanted} {noun} URL{'s' if wanted > 1 else ''} sent, and this account may"
                f" have {decision.remaining} more fetched now (at most {self.rule.limit} every"
                f" {self.rule.window_seconds} s); nothing was fetched: try again in"
                f" {decision.retry_after_seconds} s, or send the {noun}s themselves",
                headers={"Retry-After": str(decision.retry_after_seconds)},
            )


async def url_fetch_allowance(
    principal: CurrentPrincipal, limiter: RateLimiterDep, settings: SettingsDep
) -> UrlFetchAllowance:
    """Also what makes an image URL wait for authentication: nobody's URL is fetched before
    the caller is known."""
    return UrlFetchAllowance(
        limiter=limiter, rule=settings.rate_limit_image_urls, user_id=principal.user_id
    )


UrlFetches = Annotated[UrlFetchAllowance, Depends(url_fetch_allowance)]


@dataclass(frozen=True)
class ImageUpload:
    """One image to detect now, with its parameters and whether to keep it."""

    image: detection_pb2.ImageInput
    params: detection_pb2.DetectionParams
    store: bool
    metadata: dict[str, str]
    idempotency_key: str


async def one_image(
    body: ImageBody,
    settings: SettingsDep,
    fetcher: ImageFetcherDep,
    url_fetches: UrlFetches,
    form: Annotated[DetectImageForm, File()],
    query: ParamsQuery,
    store: StoreQuery = None,
    idempotency_key: StoredDetectKeyHeader = None,
) -> ImageUpload:
    if isinstance(body, bytes):
        sent = _parsed(DetectImageJson, body)
        params = _detect_params(query, sent, sent.region_list())
        keep = _one_of("store", store, sent.store)
        metadata = _kept_metadata(sent.metadata or {}, keep)
        await url_fetches.take([sent])
        image = await _source_input(sent, 0, fetcher, settings.max_upload_bytes)
    else:
        where = "files" if form.file is None and form.files else "file"
        upload = _only_file(body, "image", where, ("file", "files"))
        params = _detect_params(query, form, form.region_list())
        keep = _one_of("store", store, form.store)
        metadata = _kept_metadata(_metadata(form.metadata), keep)
        image = await _image_input(upload, 0, settings.max_upload_bytes)
    if idempotency_key and keep is False:
        raise ApiError.invalid(
            ["header", "Idempotency-Key"],
            "an idempotency key makes a stored detection safe to retry, and store=false keeps"
            " nothing to answer a retry with: send store=true, or leave the key out",
        )
    return ImageUpload(
        image=image,
        params=params,
        store=True if keep is None else keep,
        metadata=metadata,
        idempotency_key=idempotency_key or "",
    )


OneImage = Annotated[ImageUpload, Depends(one_image)]


@dataclass(frozen=True)
class BatchUpload:
    """The images of one batch job, those refused from their size, the parameters and the
    submission's idempotency key ("" for none)."""

    images: list[detection_pb2.ImageInput]
    refused: list[detection_pb2.RefusedImage]
    params: detection_pb2.DetectionParams
    idempotency_key: str
    metadata: dict[str, str]


async def _outcome(
    read: Awaitable[detection_pb2.ImageInput],
) -> detection_pb2.ImageInput | ApiError:
    """The image, or the reason the gateway refused it."""
    try:
        return await read
    except ApiError as error:
        return error


def _usable(
    outcomes: Sequence[tuple[str | None, detection_pb2.ImageInput | ApiError]],
) -> tuple[list[detection_pb2.ImageInput], list[detection_pb2.RefusedImage]]:
    """Each (filename, outcome) as an image for the job or a refused item with its reason;
    the last refusal is raised when no image is usable."""
    images: list[detection_pb2.ImageInput] = []
    refused: list[detection_pb2.RefusedImage] = []
    for filename, outcome in outcomes:
        if isinstance(outcome, ApiError):
            reason = f"{outcome.message}; left out of the job"
            refused.append(detection_pb2.RefusedImage(filename=utf8(filename), reason=reason))
            if len(refused) == len(outcomes):
                raise outcome
        else:
            images.append(outcome)
    return images, refused


def _check_count(count: int, where: str, max_files: int) -> None:
    if not 1 <= count <= max_files:
        raise ApiError.invalid(["body", where], f"send 1 to {max_files} images; got {count}")


def _batch_too_large(size: str, max_batch_bytes: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"the images are {size} together; at most {readable_size(max_batch_bytes)} per batch"
        " are accepted: split them into several jobs",
    )


async def _sources_outcomes(
    sources: Sequence[ImageSourceIn], fetcher: UrlFetcher, max_bytes: int, max_batch_bytes: int
) -> list[tuple[str | None, detection_pb2.ImageInput | ApiError]]:
    """Each source's image or refusal, in order; at most FETCHES_PER_BATCH URLs at a time.
    The fetched images hold at most `max_batch_bytes` together: past it the request is a 413
    at once and the fetches still running are cancelled (a hundred URLs of 20 MiB each would
    otherwise all be held before the batch's size was checked)."""
    fetching = asyncio.Semaphore(FETCHES_PER_BATCH)
    inline = sum(len(source.image_base64 or b"") for source in sources)
    budget = ByteBudget(max_batch_bytes, held=inline)

    async def read(position: int, source: ImageSourceIn) -> detection_pb2.ImageInput | ApiError:
        async with fetching:
            return await _outcome(_source_input(source, position, fetcher, max_bytes, budget))

    try:
        async with asyncio.TaskGroup() as fetches:
            reads = [fetches.create_task(read(p, source)) for p, source in enumerate(sources)]
    except* OverBudget:
        raise _batch_too_large(f"over {readable_size(max_batch_bytes)}", max_batch_bytes) from None
    return [
        (_source_name(source), task.result()) for source, task in zip(sources, reads, strict=True)
    ]


async def batch_images(
    body: ImageBody,
    settings: SettingsDep,
    fetcher: ImageFetcherDep,
    url_fetches: UrlFetches,
    form: Annotated[DetectBatchForm, File()],
    query: ParamsQuery,
    idempotency_key: IdempotencyKeyHeader = None,
) -> BatchUpload:
    """Each image gets its own result: one refused by the gateway (its size; for a URL, one
    that could not or may not be fetched) is a failed item of the job with its reason, and
    the request is refused only when no image is usable."""
    if isinstance(body, bytes):
        sent = _parsed(DetectBatchJson, body)
        _check_count(len(sent.images), "images", settings.max_batch_files)
        params = _detect_params(query, sent, sent.region_list())
        metadata = sent.metadata or {}
        await url_fetches.take(sent.images)
        outcomes = await _sources_outcomes(
            sent.images, fetcher, settings.max_upload_bytes, settings.max_batch_bytes
        )
    else:
        uploads = _files(body, "files")
        _check_count(len(uploads), "files", settings.max_batch_files)
        params = _detect_params(query, form, form.region_list())
        metadata = _metadata(form.metadata)
        outcomes = [
            (
                upload.filename,
                await _outcome(_image_input(upload, position, settings.max_upload_bytes)),
            )
            for position, upload in enumerate(uploads)
        ]
    images, refused = _usable(outcomes)
    total_bytes = sum(len(image.data) for image in images)
    if total_bytes > settings.max_batch_bytes:
        raise _batch_too_large(readable_size(total_bytes), settings.max_batch_bytes)
    return BatchUpload(
        images=images,
        refused=refused,
        params=params,
        idempotency_key=idempotency_key or "",
        metadata=metadata,
    )


BatchImages = Annotated[BatchUpload, Depends(batch_images)]


@dataclass(frozen=True)
class JobRerun:
    """What a job run again changes, its idempotency key ("" for none) and metadata (empty:
    the job's own)."""

    params: detection_pb2.DetectionParams
    idempotency_key: str
    metadata: dict[str, str]


async def _rerun_body(request: Request) -> RerunJobJson:
    """A rerun's optional application/json body (none at all: every parameter left open)."""
    body = await request.body()
    if not body.strip():
        return RerunJobJson()
    if _media_type(request) != _JSON:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the detection parameters as an application/json body, or none at all",
        )
    return _parsed(RerunJobJson, body)


async def job_rerun(
    request: Request, query: ParamsQuery, idempotency_key: IdempotencyKeyHeader = None
) -> JobRerun:
    """The parameters to change, as query parameters or an application/json body (not both);
    no body at all runs the job as it ran, e.g. after a new model version was loaded."""
    sent = await _rerun_body(request)
    return JobRerun(
        params=_detect_params(query, sent, sent.region_list()),
        idempotency_key=idempotency_key or "",
        metadata=sent.metadata or {},
    )


JobRerunRequest = Annotated[JobRerun, Depends(job_rerun)]


async def history_rerun(request: Request, idempotency_key: IdempotencyKeyHeader = None) -> JobRerun:
    """A history rerun's detection parameters and the new job's metadata: an application/json
    body only, as the query string holds the history's filters; none at all: the defaults."""
    return await job_rerun(request, DetectionParamsIn(), idempotency_key)


HistoryRerunRequest = Annotated[JobRerun, Depends(history_rerun)]


@dataclass(frozen=True)
class VideoFile:
    """One video, still spooled by Starlette (never whole in memory), with the parameters,
    the frame sampling, whether to track objects, the lines to count them crossing and the
    zones to name and count them in (none: no counting), the submission's idempotency key
    ("" for none) and the job's metadata."""

    file: UploadFile
    size_bytes: int
    params: detection_pb2.DetectionParams
    sampling: detection_pb2.VideoSampling
    track: bool
    idempotency_key: str
    lines: Sequence[detection_pb2.CountingLine] = ()
    zones: Sequence[detection_pb2.CountingZone] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    # Classes the annotated video pixelates (ADR 0049).
    redact: Sequence[str] = ()


def _sampling(query: VideoSamplingIn, form: VideoSamplingIn) -> detection_pb2.VideoSampling:
    fps = _one_of("fps", query.fps, form.fps)
    every = _one_of("every", query.every, form.every)
    if fps is not None and every is not None:
        raise ApiError.invalid(["body", "every"], "give fps or every, not both")
    return detection_pb2.VideoSampling(fps=fps or 0.0, every=every or 0)


_LINES_EXAMPLE = '[{"name": "gate", "start": [0, 360], "end": [1280, 360]}]'
_ZONES_EXAMPLE = '[{"name": "queue", "polygon": [[0, 0], [640, 0], [640, 200], [0, 200]]}]'


def _json_form_field(name: str, text: str, model: type[RootModel[Item]], example: str) -> Item:
    """A form field's JSON text read as `model`; 422 at body.<name> (or inside it) for text
    that is not JSON, or JSON in the wrong shape or beyond the limits."""
    try:
        return model.model_validate_json(text).root
    except ValidationError as exc:
        errors = exc.errors(include_input=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise ApiError.invalid(
                ["body", name], f"is not valid JSON; give one such as {example}"
            ) from None
        raise validation_error(
            [{**error, "loc": ("body", name, *error["loc"])} for error in errors]
        ) from None


def _counting_regions(
    name: str,
    text: str | None,
    regions: type[RootModel[list[Item]]],
    *,
    track: bool,
    example: str,
) -> list[Item]:
    """A JSON form field of counting regions (`lines`, `zones`) read as `regions`; none when
    absent. 422 at body.<name> also for regions without tracking: a crossing, a visit and a
    stay are each one tracked object's."""
    if text is None:
        return []
    if not track:
        raise ApiError.invalid(
            ["body", name], f"counting {name} need track=true: only tracked objects are counted"
        )
    return _json_form_field(name, text, regions, example)


def _metadata(text: str | None) -> dict[str, str]:
    """A multipart form's `metadata` field (JSON text) as the job's or the detection's
    metadata; none when absent."""
    if text is None:
        return {}
    return _json_form_field("metadata", text, MetadataIn, METADATA_EXAMPLE)


def _kept_metadata(metadata: dict[str, str], store: bool | None) -> dict[str, str]:
    """One image's metadata, which only a stored detection keeps: 422 at body.metadata with
    store=false, rather than dropping it."""
    if metadata and store is False:
        raise ApiError.invalid(
            ["body", "metadata"],
            "metadata is kept with the stored detection, and store=false keeps none: send "
            "store=true, or leave the metadata out",
        )
    return metadata


async def video_upload(
    parts: VideoForm,
    settings: SettingsDep,
    fetcher: VideoFetcherDep,
    url_fetches: UrlFetches,
    form: Annotated[DetectVideoForm, File()],
    query: VideoQuery,
    idempotency_key: IdempotencyKeyHeader = None,
) -> AsyncIterator[VideoFile]:
    """The video uploaded as `file`, or fetched from `url` by the gateway with the same guard
    and rate limit as an image URL, the video's own size limit and deadline, into a spooled
    temporary file (memory, then disk past _VIDEO_SPOOL_BYTES) as Starlette keeps an upload,
    discarded once the request is done."""
    if form.url is None:
        upload = _only_file(parts, "video", "file", ("file",))
        yield _video_file(upload, settings, form, query, idempotency_key)
        return
    if _files(parts, "file"):
        raise ApiError.invalid(["body", "url"], "send the video as `file` or by `url`, not both")
    await url_fetches.take_video()
    with tempfile.SpooledTemporaryFile(max_size=_VIDEO_SPOOL_BYTES) as spooled:
        size = await fetcher.fetch_to(form.url, spooled)
        # Starlette's own uploads are this very type, typed as BinaryIO there too.
        fetched = UploadFile(cast(BinaryIO, spooled), size=size, filename=url_filename(form.url))
        yield _video_file(fetched, settings, form, query, idempotency_key)


def _video_file(
    upload: UploadFile,
    settings: GatewaySettings,
    form: DetectVideoForm,
    query: VideoOptionsIn,
    idempotency_key: str | None,
) -> VideoFile:
    size = upload.size if upload.size is not None else 0
    if size > settings.max_video_bytes:
        raise _too_large("video", upload.filename, 0, size, settings.max_video_bytes)
    track = bool(_one_of("track", query.track, form.track))
    return VideoFile(
        file=upload,
        size_bytes=size,
        params=_detect_params(query, form, form.region_list()),
        sampling=_sampling(query, form),
        track=track,
        idempotency_key=idempotency_key or "",
        metadata=_metadata(form.metadata),
        redact=form.redact,
        lines=[
            line.to_proto()
            for line in _counting_regions(
                "lines", form.lines, CountingLinesIn, track=track, example=_LINES_EXAMPLE
            )
        ],
        zones=[
            zone.to_proto()
            for zone in _counting_regions(
                "zones", form.zones, CountingZonesIn, track=track, example=_ZONES_EXAMPLE
            )
        ],
    )


VideoUpload = Annotated[VideoFile, Depends(video_upload)]


async def metadata_filter(
    metadata: Annotated[
        list[str] | Absent,
        Query(
            description="Only those whose metadata holds this pair, as `key:value` (the first "
            "`:` ends the key); repeat it to ask for several pairs at once.",
        ),
    ] = None,
) -> dict[str, str]:
    """The `metadata=key:value` filters of the jobs list or the history as the pairs a job or
    a detection must hold; 422 at query.metadata for one without `:`, a key given twice or
    pairs beyond the limits."""
    wanted: dict[str, str] = {}
    for pair in metadata or ():
        key, colon, value = pair.partition(":")
        if not colon:
            raise ApiError.invalid(["query", "metadata"], f"give key:value, not {pair[:80]!r}")
        if key in wanted:
            raise ApiError.invalid(["query", "metadata"], f"key {key[:80]!r} given twice")
        wanted[key] = value
    try:
        return checked_metadata(wanted)
    except InvalidArgument as error:
        raise ApiError.invalid(["query", "metadata"], error.message) from None


MetadataFilter = Annotated[dict[str, str], Depends(metadata_filter)]


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


def _filename_filter(text: str | None) -> str:
    """The `filename` search as detection-service takes it; 422 at query.filename for text
    no stored name can hold."""
    try:
        return checked_filename_filter(utf8(text))
    except InvalidArgument as error:
        raise ApiError.invalid(["query", "filename"], error.message) from None


@dataclass(frozen=True)
class HistoryFilter:
    """Which of the caller's detections: the fields of ListDetectionsRequest and
    ExportDetectionsRequest that filter."""

    class_filter: str
    since: Timestamp | None
    until: Timestamp | None
    metadata: dict[str, str]
    filename_contains: str
    confidence_below: float | None = None

    @property
    def is_empty(self) -> bool:
        """No filter given: the whole history matches."""
        return not any(self.request_fields().values())

    def request_fields(self) -> dict[str, Any]:
        """The filter as the keyword arguments of either request."""
        return {
            "class_filter": self.class_filter,
            "since": self.since,
            "until": self.until,
            "metadata": self.metadata,
            "filename_contains": self.filename_contains,
            "confidence_below": self.confidence_below,
        }


async def history_filter(
    metadata: MetadataFilter,
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
    filename: Annotated[
        str | Absent,
        Query(
            max_length=MAX_FILENAME_FILTER_CHARS,
            description="Only detections whose file name contains this text, ignoring case "
            "(`%` and `_` are plain characters here).",
        ),
    ] = None,
    confidence_below: Annotated[
        float | Absent,
        Query(
            gt=0,
            le=1,
            description="Only detections with an object scoring below this (of `class_name`, when"
            " given): the images the model was unsure of, to label and learn from.",
        ),
    ] = None,
) -> HistoryFilter:
    since_stamp, until_stamp = _timestamp(since, "since"), _timestamp(until, "until")
    if since_stamp and until_stamp and since_stamp.ToDatetime() > until_stamp.ToDatetime():
        raise ApiError.invalid(["query", "since"], "since is after until")
    return HistoryFilter(
        class_filter=(class_name or "").strip(),
        since=since_stamp,
        until=until_stamp,
        metadata=metadata,
        filename_contains=_filename_filter(filename),
        confidence_below=confidence_below,
    )


HistoryFilterQuery = Annotated[HistoryFilter, Depends(history_filter)]
