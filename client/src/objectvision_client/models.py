"""Typed results of the API calls, read from the JSON bodies the gateway documents.

pydantic reads the bodies: types are checked and converted, absent optional fields take their
defaults, fields this version does not know are ignored, and a body that is not in the
documented shape raises `pydantic.ValidationError` (the client turns it into
ObjectVisionError, code `unexpected_response`). Each whole answer keeps the body it came from
in `raw`, so `--json` output and callers that need a field this version does not know yet see
exactly what the API sent.
"""

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from email.message import Message
from typing import Any, Literal, Self, TypeVar

from pydantic import AliasPath, BaseModel, ConfigDict, Field, model_validator

JOB_FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

Json = Mapping[str, Any]


class _Model(BaseModel):
    """Immutable, built by field name in code and by the API's names (aliases) from JSON."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    @classmethod
    def from_json(cls, body: Any) -> Self:
        return cls.model_validate(body)


class _Answer(_Model):
    """A model read from a whole response body, kept in `raw` (the module docstring says why)."""

    raw: dict[str, Any] = Field(default_factory=dict, repr=False, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _keep_the_body(cls, body: Any) -> Any:
        if isinstance(body, Mapping):
            return {**body, "raw": dict(body)}
        return body


M = TypeVar("M", bound=_Model)


class _Items(BaseModel):
    """The `{"items": [...]}` envelope of the list answers that have no paging."""

    items: list[dict[str, Any]]


def items_of(model: type[M], body: Any) -> list[M]:
    return [model.from_json(item) for item in _Items.model_validate(body).items]


class TokenPair(_Model):
    access_token: str
    refresh_token: str
    expires_in: int = 0
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


class SignUpAccepted(_Answer):
    """The answer to a sign-up. The gateway gives the same one whether or not the address
    already had an account (that account's owner is told instead), so it names no account:
    log in with `email` and the password to continue."""

    email: str
    message: str = ""


class User(_Answer):
    id: str
    email: str
    # Whether the address was confirmed with the link mailed to it (False from servers that
    # predate verification, which did not verify addresses at all).
    email_verified: bool = False
    # A new address asked for and waiting for the link mailed to it (ADR 0033): `email` stays
    # the sign-in address until that link is opened. None when none waits.
    pending_email: str | None = None
    pending_email_expires_at: datetime | None = None
    # Whether logging in takes a code from an authenticator app too (ADR 0034; False from
    # servers that predate it).
    two_factor_enabled: bool = False
    name: str
    created_at: datetime


class TwoFactorEnrollment(_Answer):
    """An authenticator app's secret waiting for its first code (`confirm_two_factor`): as
    text to type into the app, as the `otpauth://` URI a QR code carries, and as that QR code
    (an SVG `data:` URI, for a page's `<img>`). Nothing changes at login until it is
    confirmed."""

    secret: str
    otpauth_uri: str
    qr_svg: str


class RecoveryCodes(_Model):
    """The answer that turns two-factor authentication on or renews its recovery codes: each
    code logs in once in place of the app's, and this answer is the only time they are shown."""

    recovery_codes: list[str]


class Session(_Answer):
    """One of the account's signed-in sessions (ADR 0035): a login and the refreshes that kept
    it going. `current` marks the one the listing request was made with; `client_ip` and
    `user_agent` are the login's, as the gateway saw them."""

    id: str
    # None for sessions opened before the server recorded logins.
    started_at: datetime | None = None
    last_active_at: datetime
    expires_at: datetime
    client_ip: str = ""
    user_agent: str = ""
    # Whether the login gave a second factor (ADR 0034).
    second_factor: bool = False
    current: bool = False


class EndedSessions(_Model):
    """The answer to logging out every other session: how many ended."""

    ended: int


class AccountStatus(User):
    """An account as an admin sees it after suspending, restoring, promoting or demoting it."""

    is_active: bool
    is_admin: bool


class AccountsPage(_Model):
    """One page of the accounts an admin looked up, newest first."""

    items: tuple[AccountStatus, ...] = ()
    total: int = 0
    limit: int = 0
    offset: int = 0


class BoundingBox(_Model):
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


class DetectedObject(_Model):
    class_name: str = Field(alias="class")
    class_id: int
    confidence: float
    bbox: BoundingBox
    # The object's track in a video job submitted with `track=True`: the same id in every
    # frame while the object stays (from its track's second frame on). None otherwise.
    track_id: int | None = None
    # In a video job with counting zones: the names of the zones the object stands in (the
    # bottom centre of its box is inside), in the order the zones were given.
    zones: tuple[str, ...] = ()


class DetectionResult(_Answer):
    """The objects found in one image, highest confidence first."""

    detection_id: str | None = None
    filename: str
    width: int = Field(validation_alias=AliasPath("image", "width"))
    height: int = Field(validation_alias=AliasPath("image", "height"))
    objects: tuple[DetectedObject, ...] = Field(alias="detections")
    total_ms: float | None = Field(default=None, validation_alias=AliasPath("timings", "total_ms"))
    # The model and version that answered (None on detections stored before models existed).
    model: str | None = None
    model_version: str | None = None
    # Answered from the result cache: the same bytes, model version and options were seen
    # before, so no inference ran.
    cached: bool = False

    def class_counts(self) -> dict[str, int]:
        """How many objects of each class, most frequent first."""
        counts: dict[str, int] = {}
        for obj in self.objects:
            counts[obj.class_name] = counts.get(obj.class_name, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


class StoredDetection(DetectionResult):
    """A detection from the history: the result plus its record."""

    status: str = "completed"
    job_id: str | None = None
    created_at: datetime | None = None
    # The pairs sent with the image (`detect_image(metadata=...)`), or its job's.
    metadata: dict[str, str] = Field(default_factory=dict)


class HistoryPage(_Model):
    items: tuple[StoredDetection, ...] = ()
    total: int = 0
    limit: int = 0
    offset: int = 0


class HistorySummary(_Answer):
    """How many stored detections a history filter keeps, and their objects per class (most
    first)."""

    detections: int = 0
    objects: int = 0
    class_counts: dict[str, int] = Field(default_factory=dict)


class HistoryDeletion(_Answer):
    """What one `delete_history` call removed: `deleted` detections, each with its objects and
    stored image; `kept_in_unfinished_jobs` that the filters keep but that belong to jobs still
    pending or processing, left in place (cancel the job or wait for it, then delete again);
    `more`: more matched than one call deletes, so call again for the rest."""

    deleted: int
    kept_in_unfinished_jobs: int = 0
    more: bool = False


class JobItem(_Model):
    filename: str = ""
    status: str = "pending"
    detection_id: str | None = None
    error: str | None = None
    object_count: int = 0


class CountingLine(_Model):
    """A named segment across the picture, in the video's pixels, that tracked objects are
    counted crossing (ADR 0039). Seen from `start` looking towards `end`, "in" is a crossing
    from the right-hand side to the left-hand side, "out" the other way."""

    name: str
    start: tuple[float, float]
    end: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        """The line as the `lines` form field of a video upload holds it."""
        return {"name": self.name, "start": list(self.start), "end": list(self.end)}


class LineCount(_Model):
    """How many tracked objects of one class crossed one line each way, so far."""

    line: str
    class_id: int
    class_name: str
    crossed_in: int
    crossed_out: int


class LineCrossing(_Model):
    """One tracked object crossing one counting line, in the frame it is seen crossing."""

    line: str
    track_id: int
    class_id: int
    class_name: str
    # "in" or "out"
    direction: str


class CountingZone(_Model):
    """A named region of the picture, a polygon of 3 to 32 corners in the video's pixels in
    drawing order (ADR 0042). A tracked object is in the zone while the bottom centre of its
    box, where it stands, is inside."""

    name: str
    polygon: tuple[tuple[float, float], ...]

    def to_json(self) -> dict[str, Any]:
        """The zone as the `zones` form field of a video upload holds it."""
        return {"name": self.name, "polygon": [list(point) for point in self.polygon]}


class ZoneCount(_Model):
    """Who of one class was in one zone, so far: how many tracked objects visited it, the
    most inside at once, and how long a visitor stayed on average."""

    zone: str
    class_id: int
    class_name: str
    visited: int
    peak: int
    mean_stay_seconds: float


class VideoFacts(_Model):
    """A video job's video as its container describes it, how its frames are sampled and what
    the job counted: what its owner reads (`VideoInfo`) and anyone it is shared with
    (`SharedVideo.video`, ADR 0052)."""

    container: str
    codec: str
    width: int
    height: int
    duration_seconds: float
    frame_rate: float
    frame_count: int
    sampled_frames: int
    fps: float | None = Field(default=None, validation_alias=AliasPath("sampling", "fps"))
    every: int | None = Field(default=None, validation_alias=AliasPath("sampling", "every"))
    # Objects are tracked across the sampled frames: they carry a `track_id`.
    tracked: bool = False
    # The counting lines the job was submitted with, and what crossed them so far, by line
    # and class (a line nothing crossed has no count).
    lines: tuple[CountingLine, ...] = ()
    line_counts: tuple[LineCount, ...] = ()
    # The counting zones it was submitted with, and who was in them so far, by zone and class
    # (a zone nobody entered has no count).
    zones: tuple[CountingZone, ...] = ()
    zone_counts: tuple[ZoneCount, ...] = ()
    # The classes (lower case) its annotated video shows pixelated in every frame (ADR 0049);
    # empty from a server older than that too, whose annotated videos pixelate nothing.
    redact: tuple[str, ...] = ()


class VideoInfo(VideoFacts):
    """A video job's upload as its owner reads it: its facts, its file name, and where its
    annotated video downloads once the job completed."""

    filename: str = ""
    annotated_url: str | None = None


class Job(_Answer):
    """A batch or video job. `processed` counts failed images too, so progress is
    processed / total. It ends completed, failed or cancelled (by its owner); the jobs list
    (`JobsPage`) leaves `items` empty."""

    job_id: str
    status: str = "pending"
    total: int = 0
    processed: int = 0
    failed: int = 0
    items: tuple[JobItem, ...] = ()
    created_at: datetime | None = None
    completed_at: datetime | None = None
    # The model the job runs with, and the version that answered its items.
    model: str | None = None
    model_version: str | None = None
    # "batch" or "video"; a video job's upload and sampling, and why a job failed as a whole.
    kind: str = "batch"
    video: VideoInfo | None = None
    error: str | None = None
    # The caller's own key-value pairs given at submission.
    metadata: dict[str, str] = Field(default_factory=dict)
    # Once the job has ended: the objects it found per class (None while it runs).
    class_counts: dict[str, int] | None = None
    # While it is processing and has finished an item since it (re)started: its pace (images
    # or a video's frames a second) and when it should end at that pace; None otherwise.
    items_per_second: float | None = None
    estimated_completion_at: datetime | None = None
    # The job whose stored images or video this one ran again (`rerun_job`), while it exists.
    rerun_of: str | None = None

    @property
    def done(self) -> bool:
        return self.status in JOB_FINAL_STATUSES

    def seconds_left(self, now: datetime) -> float | None:
        """How long until `estimated_completion_at` from `now` (never below 0); None without
        an estimate."""
        if self.estimated_completion_at is None:
            return None
        return max((self.estimated_completion_at - now).total_seconds(), 0.0)


class JobsPage(_Model):
    """One page of the caller's jobs, newest first, each without its items."""

    items: tuple[Job, ...] = ()
    total: int = 0
    limit: int = 0
    offset: int = 0


class VideoFrame(_Model):
    """One sampled frame of a video job: its index, its time and what was found in it."""

    frame_index: int
    timestamp_seconds: float
    timestamp_ms: int
    detections: tuple[DetectedObject, ...] = ()
    error: str | None = None
    # In a video job with counting lines: the objects of this frame that crossed one.
    crossings: tuple[LineCrossing, ...] = ()


class Timings(_Model):
    """Where one image's time went inside the detection service, in milliseconds."""

    decode_ms: float = 0.0
    # Waiting for a model batch.
    queue_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0
    total_ms: float = 0.0


class LiveReady(_Model):
    """A live detection stream's acceptance of its settings (ADR 0059): the largest frame it
    takes (the upload limit) and how many frames may be unanswered at once before the server
    stops reading."""

    max_frame_bytes: int
    max_in_flight: int = Field(ge=1)


class LiveFrame(_Answer):
    """The answer to one frame of a live detection stream (ADR 0059), in the order the frames
    were sent: frame `sequence` (the n-th frame sent is n, from 1) with its objects, as a video
    frame's (`track_id` when tracked, `zones` they stand in), and the crossings of the stream's
    counting lines seen in it. A frame the service could not detect (not an image, over the
    monthly quota, inference unavailable) has `error` saying why and nothing else: the stream
    goes on, so one bad frame does not cost the ones after it."""

    sequence: int
    # The `frame_error` answer's `message`; None for a detected frame.
    error: str | None = Field(default=None, validation_alias="message")
    width: int = Field(default=0, validation_alias=AliasPath("image", "width"))
    height: int = Field(default=0, validation_alias=AliasPath("image", "height"))
    objects: tuple[DetectedObject, ...] = Field(default=(), alias="detections")
    # Objects per class, as the server counted them.
    counts: dict[str, int] = Field(default_factory=dict)
    crossings: tuple[LineCrossing, ...] = ()
    timings: Timings | None = None
    # Answered from the result cache: these bytes, model version and options were seen before.
    cached: bool = False
    model: str | None = None
    model_version: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the frame was detected (else `error` says why not)."""
        return self.error is None

    def class_counts(self) -> dict[str, int]:
        """How many objects of each class, most frequent first (as
        `DetectionResult.class_counts`)."""
        return _most_first(self.counts)


class VideoFramesPage(_Answer):
    """One page of a video job's frames, in frame order; boxes in video pixels."""

    job_id: str
    width: int
    height: int
    frames: tuple[VideoFrame, ...] = ()
    total: int
    limit: int
    offset: int


class ApiKey(_Answer):
    """A key as listed: `scopes`, what it may do; `expires_at`, when it stops working (None:
    when it is revoked)."""

    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None


class CreatedApiKey(ApiKey):
    """A new key; `secret` is in the creation response only."""

    secret: str = Field(repr=False)


class Webhook(_Answer):
    """A URL that job events are delivered to. While it is disabled (`enabled` False, ADR
    0046) nothing is sent: its events are recorded as dead deliveries to redeliver once it is
    enabled again. `disabled_reason` says why: "owner" (its owner disabled it) or "failing"
    (the service did, after `consecutive_failures` deliveries in a row were dead-lettered);
    None while it is enabled. Answers of servers that predate ADR 0046 read as enabled."""

    id: str
    url: str
    events: tuple[str, ...] = ()
    created_at: datetime
    # The API key that registered it (deleted with the key's revocation or expiry); None
    # when it was registered from a signed-in session.
    api_key_id: str | None = None
    # Until when deliveries are also signed with the secret the last rotation replaced.
    previous_secret_expires_at: datetime | None = None
    enabled: bool = True
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    # Deliveries dead-lettered in a row since the last one delivered.
    consecutive_failures: int = 0


class CreatedWebhook(Webhook):
    """A new webhook; `secret` (the signing key) is in the creation response only."""

    secret: str = Field(repr=False)


class WebhookDelivery(_Answer):
    """One delivery of an event to a webhook and how its last attempt went. `state` is
    pending (due or between retries), delivered or dead (given up); a redelivery names the
    delivery it repeats in `redelivery_of` and carries the same `event_id`."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    state: str
    attempts: int = 0
    last_attempt_at: datetime | None = None
    # The receiver's HTTP status at the last attempt; None when no answer came back.
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    redelivery_of: str | None = None


class WebhookDeliveriesPage(_Answer):
    """One page of a webhook's deliveries, newest first."""

    items: tuple[WebhookDelivery, ...] = ()
    total: int = 0
    limit: int = 0
    offset: int = 0


class ShareLink(_Answer):
    """A link that shows one stored detection (ADR 0048) or one completed video job (ADR
    0052) to whoever holds it, no account needed, as its owner sees it: never its token,
    which is kept only as a hash, but the token's first characters (`token_prefix`) to tell
    links apart. Exactly one of `detection_id` and `job_id` is set: what it shows. `active`
    is the server's word on whether it shows it now (not revoked, not expired, the account
    not suspended); `views` counts the reads of what it shows through it (its image or video
    not included). `redact` names the classes (lower case) whose objects a detection's link's
    image always shows pixelated, boxed or not (ADR 0049), so the upload itself is never sent
    through it; empty when it shows the image as found, and for a job's link (its annotated
    video is shown as the job drew it: `SharedVideo.video.redact` says what that pixelates).
    Only what the model found is covered: an object it missed is shown as uploaded."""

    id: str
    # None for a video job's link (and `job_id` set).
    detection_id: str | None = None
    # The video job it shows (ADR 0052); None for a detection's link, and from a server that
    # predates ADR 0052, whose links all show detections.
    job_id: str | None = None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    active: bool
    views: int = 0
    last_viewed_at: datetime | None = None
    token_prefix: str
    # Empty from a server older than ADR 0049 too, whose links redact nothing.
    redact: tuple[str, ...] = ()

    @property
    def kind(self) -> Literal["detection", "video"]:
        """What the link shows: "video" (a video job's) or "detection"."""
        return "video" if self.job_id else "detection"


class CreatedShareLink(ShareLink):
    """A new link: the only answer that carries its `token` (`ovs_...`), and `url`, the
    console's page of what it shares with the token in its fragment (which browsers
    never send to a server). Give either to the people it is for; they can no longer be
    read back once this answer is gone."""

    token: str = Field(repr=False)
    url: str = Field(repr=False)


class ShareLinksPage(_Model):
    """One page of the caller's share links, newest first, revoked and expired ones too."""

    items: tuple[ShareLink, ...] = ()
    total: int = 0
    limit: int = 0
    offset: int = 0


def _most_first(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


class SharedDetection(_Answer):
    """A shared detection as anyone holding its link reads it: the image's size, its objects
    (highest confidence first), the model that found them and when, and when the link stops
    working. The owner's file name, metadata and ids are not shared, so none are here."""

    # What the link shows (the API's `kind`; absent from servers older than ADR 0052).
    kind: Literal["detection"] = "detection"
    width: int = Field(validation_alias=AliasPath("image", "width"))
    height: int = Field(validation_alias=AliasPath("image", "height"))
    objects: tuple[DetectedObject, ...] = Field(alias="detections")
    # Objects per class, as the server counted them.
    counts: dict[str, int] = Field(default_factory=dict)
    model: str | None = None
    model_version: str | None = None
    detected_at: datetime
    expires_at: datetime

    def class_counts(self) -> dict[str, int]:
        """How many objects of each class, most frequent first (as
        `DetectionResult.class_counts`)."""
        return _most_first(self.counts)


class SharedVideo(_Answer):
    """A shared video job as anyone holding its link reads it (ADR 0052): its video's facts
    (`video`: container, codec, size, duration, frame rate and count, how it was sampled,
    whether objects were tracked, its counting lines and zones with what they counted, and
    the classes its annotated video pixelates), the objects the job found per class, the
    model and when the job completed, and when the link stops working. The owner's file name,
    metadata, ids and URLs are not shared, so none are here; `shared_video` downloads the
    annotated video."""

    kind: Literal["video"] = "video"
    video: VideoFacts
    # Objects per class the job found, over its sampled frames.
    counts: dict[str, int] = Field(default_factory=dict)
    model: str | None = None
    model_version: str | None = None
    completed_at: datetime | None = None
    expires_at: datetime

    def class_counts(self) -> dict[str, int]:
        """How many objects of each class, most frequent first."""
        return _most_first(self.counts)


# What a share link shows, by the answer's `kind`.
Shared = SharedDetection | SharedVideo


def shared_of(body: Any) -> Shared:
    """The answer of `GET /api/v1/shared` as its `kind` says: a `SharedVideo` for "video", a
    `SharedDetection` for "detection" (or no `kind`: a server older than ADR 0052, whose
    links all show detections). Another kind is a ValueError: this client cannot read it."""
    kind = body.get("kind", "detection") if isinstance(body, Mapping) else None
    if kind == "video":
        return SharedVideo.from_json(body)
    if kind == "detection":
        return SharedDetection.from_json(body)
    raise ValueError(f"a share link showing {kind!r}, which this client does not know")


class ExportedFile(_Model):
    """What `Client.export` wrote: the server's name for the file (Content-Disposition),
    its media type and how many bytes arrived."""

    filename: str
    content_type: str
    size: int

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], size: int) -> Self:
        # The standard library's MIME header parser: quoting and RFC 2231 `filename*=`.
        disposition = Message()
        disposition["content-disposition"] = headers.get("content-disposition", "")
        name = disposition.get_filename() or ""
        return cls(filename=name, content_type=headers.get("content-type", ""), size=size)


class CurvePoint(_Model):
    """Keeping the detections that score at least `confidence`: their precision, recall and
    F1 at IoU 0.5. A curve lists the job's lowest threshold, then each hundredth above it that
    changes what is kept, so a point holds until the next one's confidence."""

    confidence: float
    precision: float
    recall: float
    f1: float


def point_at(curve: Sequence[CurvePoint], confidence: float) -> CurvePoint | None:
    """What keeping the detections from `confidence` up scores: the curve's last point at or
    below it; None below the curve's first threshold (the job never kept those scores) or
    for an empty curve."""
    reached = [point for point in curve if point.confidence <= confidence]
    return reached[-1] if reached else None


class SizeEvaluation(_Model):
    """COCO's mAP50-95 over the labelled objects of one size ("small": box area under 32 x 32
    pixels, "medium": to 96 x 96, "large": above); None without any of them."""

    size: str
    ground_truth: int = 0
    map50_95: float | None = None


class TrackingEvaluation(_Model):
    """How a tracked video job kept its objects' identities against labels that carry them
    (MOTChallenge's gt.txt), over its sampled frames: the CLEAR MOT and identity metrics,
    matching at IoU 0.5 within a class (ADR 0056). Only detections with a track id count."""

    # 1 - (misses + false detections + identity switches) / labelled objects (can go below 0).
    mota: float
    # Mean IoU of the matched pairs; None without any.
    motp: float | None = None
    # F1, precision and recall of the one best assignment of tracks to labelled identities.
    idf1: float
    id_precision: float = 0.0
    id_recall: float = 0.0
    id_switches: int = 0
    fragmentations: int = 0
    # Labelled identities, and of them those matched in 80% or more of their frames, in 20 to
    # 80%, and in under 20%.
    ground_truth_tracks: int = 0
    mostly_tracked: int = 0
    partially_tracked: int = 0
    mostly_lost: int = 0
    false_positives: int = 0
    misses: int = 0


class ClassEvaluation(_Model):
    """One class's scores in a `JobEvaluation`. None where there is nothing to score: AP and
    recall of a class without ground truth (COCO leaves it out of the mean), precision of one
    without detections, F1 of one without ground truth or without a correct detection."""

    class_id: int
    class_name: str
    ground_truth: int = 0
    detections: int = 0
    ap50_95: float | None = None
    ap50: float | None = None
    precision: float | None = None
    recall: float | None = None
    # The operating point: the best F1 at IoU 0.5, and the score a detection needs to be
    # kept to reach it (this class's threshold to detect with).
    f1: float | None = None
    f1_confidence: float | None = None
    # Precision, recall and F1 by threshold; empty without ground truth or detections, or
    # from a server older than it.
    curve: tuple[CurvePoint, ...] = ()
    # A tracked video job against labels with identities: this class's tracking.
    tracking: TrackingEvaluation | None = None


class Confusion(_Model):
    """One non-zero cell of a `JobEvaluation`'s confusion matrix (at IoU 0.5): `count` labelled
    objects of class `actual` that were detected as `predicted`. `predicted` None: objects
    missed; `actual` None: detections where nothing was labelled. A cell whose two classes
    differ is a mistake; one whose classes agree counts the objects found right."""

    # Both sent by every server that sends the cells, null being a class of its own: required.
    actual: str | None
    predicted: str | None
    count: int


class JobEvaluation(_Answer):
    """A finished job's detections scored against ground-truth labels (ADR 0054; a video
    job's frames, ADR 0056). Detections under the job's `min_confidence` were never kept, so
    they cannot count: the scores are of the job as it ran, not of the model at every
    threshold."""

    job_id: str
    # "batch" or "video": a video job's sampled frames are its images.
    job_kind: str = "batch"
    model: str | None = None
    # "yolo", "coco" or "mot": what the server read the labels as.
    labels_format: str
    min_confidence: float | None = None
    # The job's detected images (or sampled frames) that were scored; of those, the ones no
    # label named, scored as holding no object.
    images: int
    images_without_labels: int = 0
    # A video job's sampled frames outside the first to last frame the labels cover: not
    # scored.
    frames_outside_labels: int = 0
    # Label entries naming no image of the job: the first few, and how many in all.
    unmatched_labels: tuple[str, ...] = ()
    unmatched_label_count: int = 0
    # Label classes the model lacks: their boxes are not scored.
    unknown_classes: tuple[str, ...] = ()
    ground_truth: int
    detections: int
    map50_95: float
    map50: float
    map75: float
    # At IoU 0.5 over every class; None without detections (precision) or ground truth
    # (recall).
    precision: float | None = None
    recall: float | None = None
    # The best F1 at IoU 0.5 over every class, and the one threshold (keep detections scoring
    # at least it) that reaches it; None without ground truth or without a correct detection.
    f1: float | None = None
    f1_confidence: float | None = None
    # Each class's `f1_confidence` by class name, rounded down to 4 decimals: what the detect
    # calls' `class_confidence` takes (ADR 0050) for the best F1 on these images.
    suggested_class_confidence: dict[str, float] = Field(default_factory=dict)
    # Every class with ground truth or detections, by class id.
    classes: tuple[ClassEvaluation, ...] = ()
    # The confusion matrix's non-zero cells, the most frequent first: every labelled object
    # is in one cell of its class, every detection in one of its class. Empty from a server
    # older than it.
    confusions: tuple[Confusion, ...] = ()
    # Precision, recall and F1 by threshold over every class (see `point_at`).
    curve: tuple[CurvePoint, ...] = ()
    # mAP50-95 by object size: small, medium, large (empty from a server older than it).
    sizes: tuple[SizeEvaluation, ...] = ()
    # A tracked video job against labels with identities, over every class; None otherwise.
    tracking: TrackingEvaluation | None = None

    @property
    def unit(self) -> str:
        """What was scored, in the singular: "frame" for a video job, else "image"."""
        return "frame" if self.job_kind == "video" else "image"


class ServedModel(_Model):
    """A model the deployment serves (``GET /api/v1/models``): what ``model`` accepts."""

    name: str
    version: str = ""
    task: str = ""
    input_size: int = 0
    classes: tuple[str, ...] = ()
    precision: str = ""
    device: str = ""
    ready: bool = False
    state: str = ""
    default: bool = False
    reason: str | None = None


def served_models(body: Any) -> list[ServedModel]:
    return items_of(ServedModel, body)


class UsageDay(_Model):
    date: date
    # Images a waiting caller sent (detect routes, streams), and images of job work.
    calls: int
    jobs: int
    images: int


class Usage(_Answer):
    """An account's images this month against its quota, and per day
    (``GET /api/v1/users/me/usage``)."""

    user_id: str
    month_start: date
    renews_on: date
    month_images: int
    # Images the account's unfinished jobs have still to detect, held against the quota.
    held_images: int = 0
    # None: no quota.
    monthly_quota: int | None = None
    remaining: int | None = None
    custom_quota: bool = False
    days: tuple[UsageDay, ...] = ()


class Retention(_Answer):
    """How long an account's finished jobs and detections outside jobs are kept before they
    are deleted on their own (``GET /api/v1/users/me/retention``)."""

    user_id: str
    # 0: kept until their owner deletes them.
    days: int
    # Whether an admin set this account's period (else the deployment's default applies).
    custom: bool = False
    default_days: int = 0
