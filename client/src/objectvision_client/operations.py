"""Every API call as data: what to send and how to read the answer, with no I/O.

`Client` and `AsyncClient` both run these, so the two differ only in how they send and
sleep; paths, bodies and parsing exist once.
"""

import json
import mimetypes
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar
from urllib.parse import parse_qs, quote

import httpx

from objectvision_client.errors import ObjectVisionError
from objectvision_client.models import (
    AccountsPage,
    AccountStatus,
    ApiKey,
    CountingLine,
    CountingZone,
    CreatedApiKey,
    CreatedShareLink,
    CreatedWebhook,
    DetectionResult,
    EndedSessions,
    ExportedFile,
    HistoryDeletion,
    HistoryPage,
    HistorySummary,
    Job,
    JobEvaluation,
    JobsPage,
    RecoveryCodes,
    Retention,
    ServedModel,
    Session,
    SharedDetection,
    SharedVideo,
    ShareLink,
    ShareLinksPage,
    SignUpAccepted,
    StoredDetection,
    TokenPair,
    TwoFactorEnrollment,
    Usage,
    User,
    VideoFramesPage,
    Webhook,
    WebhookDeliveriesPage,
    WebhookDelivery,
    items_of,
    served_models,
    shared_of,
)

T = TypeVar("T")

# A path, or (filename, bytes) for images already in memory.
ImageSource = str | os.PathLike[str] | tuple[str, bytes]
# Ground-truth labels: a path, or the file's bytes already in memory.
LabelsSource = str | os.PathLike[str] | bytes
FilePart = tuple[str, tuple[str, bytes, str]]


@dataclass(frozen=True)
class Operation(Generic[T]):
    """One request and the parser of its 2xx response."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    # A sequence value repeats the parameter (`metadata=a:1&metadata=b:2`).
    params: Mapping[str, str | int | float | Sequence[str]] | None = None
    json: Any = None
    # A sequence value repeats the form field (`redact=person&redact=car`).
    data: Mapping[str, str | Sequence[str]] | None = None
    files: Sequence[FilePart] | None = None
    headers: Mapping[str, str] | None = None
    # False for sign-up, login and refresh: no credentials sent, no refresh on 401.
    authenticated: bool = True


# Bytes received so far, called as a download progresses.
BytesCallback = Callable[[int], None]


@dataclass(frozen=True)
class Download(Generic[T]):
    """An operation whose body is written to `destination` as it arrives rather than held
    in memory; `result` makes the answer from the response headers and the bytes written."""

    operation: "Operation[bytes]"
    destination: BinaryIO
    on_progress: BytesCallback | None
    result: Callable[[Mapping[str, str], int], T]


@dataclass(frozen=True)
class DetectionParams:
    """Zero or None fields mean the service default."""

    confidence: float | None = None
    iou: float | None = None
    classes: Sequence[str] = ()
    max_detections: int | None = None
    # A model from Client.models(); None: the deployment's default.
    model: str | None = None
    # Minimum scores of chosen classes (names or ids) in place of `confidence` for their
    # objects (ADR 0050), e.g. {"person": 0.6, "car": 0.15}.
    class_confidence: Mapping[str, float] | None = None
    # Tiled detection for small objects in large images (ADR 0051): overlapping squares of
    # this many pixels (128 to 4096) detected besides the whole image; each one more inference.
    tile_size: int | None = None
    # The share of a tile's side its neighbours cover, above 0 and at most 0.5 (None: 0.2).
    tile_overlap: float | None = None
    # Regions of interest (ADR 0053): only objects standing in one of these polygons (the
    # bottom centre of the box inside) are kept; corners (x, y) as fractions of the image.
    regions: Sequence[Sequence[tuple[float, float]]] = ()

    def json_fields(self) -> dict[str, str | int | float]:
        """The parameters as a JSON body carries them (numbers as numbers)."""
        fields: dict[str, str | int | float] = {}
        if self.confidence is not None:
            fields["confidence"] = float(self.confidence)
        if self.iou is not None:
            fields["iou"] = float(self.iou)
        if self.classes:
            fields["classes"] = ",".join(name.strip() for name in self.classes if name.strip())
        if self.max_detections is not None:
            fields["max_detections"] = int(self.max_detections)
        if self.model:
            fields["model"] = self.model.strip()
        if self.class_confidence:
            fields["class_confidence"] = ",".join(
                f"{name.strip()}:{float(score)!r}" for name, score in self.class_confidence.items()
            )
        if self.tile_size is not None:
            fields["tile_size"] = int(self.tile_size)
        if self.tile_overlap is not None:
            fields["tile_overlap"] = float(self.tile_overlap)
        if self.regions:
            fields["regions"] = json.dumps(
                [[[float(x), float(y)] for x, y in polygon] for polygon in self.regions]
            )
        return fields

    def form_fields(self) -> dict[str, str]:
        """The parameters as form fields, all text."""
        return {
            name: repr(value) if isinstance(value, float) else str(value)
            for name, value in self.json_fields().items()
        }


def _segment(value: str) -> str:
    """An id as one URL path segment, whatever the caller passed."""
    return quote(str(value), safe="")


def _json(parser: Callable[[Any], T]) -> Callable[[httpx.Response], T]:
    return lambda response: parser(response.json())


def _nothing(response: httpx.Response) -> None:
    return None


def _bytes(response: httpx.Response) -> bytes:
    return response.content


def read_image(source: ImageSource) -> tuple[str, bytes, str]:
    """(filename, bytes, content type guessed from the name). The service judges the bytes
    themselves; the type only helps proxies and logs. Files are read when the operation is
    built, so a retried upload sends the same bytes (AsyncClient reads them synchronously:
    images are small next to the request itself)."""
    if isinstance(source, tuple):
        filename, data = source
    else:
        path = Path(source)
        filename, data = path.name, path.read_bytes()
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return filename, data, content_type


def signup(email: str, password: str, name: str) -> Operation[SignUpAccepted]:
    """Sign up; then `login` with the same email and password."""
    return Operation(
        "POST",
        "/api/v1/auth/signup",
        _json(SignUpAccepted.from_json),
        json={"email": email, "password": password, "name": name},
        authenticated=False,
    )


def login(email: str, password: str, second_factor_code: str | None = None) -> Operation[TokenPair]:
    """A token pair for the account. One with two-factor authentication on also needs
    `second_factor_code` (its app's current code, or an unused recovery code): without one
    the right password raises ObjectVisionError 401 `second_factor_required`, so the caller
    can ask for the code and log in again with it; a wrong or used one raises 401
    `invalid_second_factor`."""
    body = {"email": email, "password": password}
    if second_factor_code is not None:
        body["second_factor_code"] = second_factor_code
    return Operation(
        "POST", "/api/v1/auth/login", _json(TokenPair.from_json), json=body, authenticated=False
    )


def refresh(refresh_token: str) -> Operation[TokenPair]:
    return Operation(
        "POST",
        "/api/v1/auth/refresh",
        _json(TokenPair.from_json),
        json={"refresh_token": refresh_token},
        authenticated=False,
    )


def logout(refresh_token: str) -> Operation[None]:
    return Operation("POST", "/api/v1/auth/logout", _nothing, json={"refresh_token": refresh_token})


def forgot_password(email: str) -> Operation[None]:
    """Ask for a link to choose a new password, emailed to the account with this address.

    The server answers alike whether or not the address has an account, so this returns
    nothing either way; the link (single use, 30 minutes by default) is in the email.
    """
    return Operation(
        "POST",
        "/api/v1/auth/forgot-password",
        _nothing,
        json={"email": email},
        authenticated=False,
    )


def reset_password(token: str, new_password: str) -> Operation[None]:
    """Choose a new password with the `token` of a reset email's link. Every session of the
    account ends, access tokens included: log in again with the new password. A link that
    is unknown, used, replaced or expired raises ObjectVisionError `invalid_reset_token`."""
    return Operation(
        "POST",
        "/api/v1/auth/reset-password",
        _nothing,
        json={"token": token, "new_password": new_password},
        authenticated=False,
    )


def _verified_email(response: httpx.Response) -> str:
    email: str = response.json()["email"]
    return email


def verify_email(token: str) -> Operation[str]:
    """Confirm the account's address with the `token` of a verification email's link (no
    session needed: the token is the credential); returns the address now verified. A link
    that is unknown, used, replaced or expired raises ObjectVisionError
    `invalid_verification_token`."""
    return Operation(
        "POST",
        "/api/v1/auth/verify-email",
        _verified_email,
        json={"token": token},
        authenticated=False,
    )


def resend_verification() -> Operation[None]:
    """Mail a new verification link to the signed-in account's address; earlier links stop
    working. Needs a signed-in session (an API key raises 403 `session_required`); an
    address verified already raises 409 `email_already_verified`."""
    return Operation("POST", "/api/v1/auth/resend-verification", _nothing)


def me() -> Operation[User]:
    return Operation("GET", "/api/v1/users/me", _json(User.from_json))


def usage(*, days: int = 31) -> Operation[Usage]:
    """Images the account had detected in the last `days` days (1 to 366, today the last,
    UTC) and this month against its quota. Any credential, API keys included."""
    return Operation("GET", "/api/v1/users/me/usage", _json(Usage.from_json), params={"days": days})


def set_quota(user_id: str, monthly_images: int) -> Operation[Usage]:
    """Admins: give one account a monthly quota of images (0: none), replacing the
    deployment's USAGE_MONTHLY_IMAGE_QUOTA for it."""
    return Operation(
        "PUT",
        f"/api/v1/users/{_segment(user_id)}/quota",
        _json(Usage.from_json),
        json={"monthly_images": monthly_images},
    )


def clear_quota(user_id: str) -> Operation[Usage]:
    """Admins: the deployment's quota applies to this account again."""
    return Operation("DELETE", f"/api/v1/users/{_segment(user_id)}/quota", _json(Usage.from_json))


def retention() -> Operation[Retention]:
    """How long the account's finished jobs and detections outside jobs are kept (0: until
    deleted). Any credential, API keys included."""
    return Operation("GET", "/api/v1/users/me/retention", _json(Retention.from_json))


def set_retention(user_id: str, days: int) -> Operation[Retention]:
    """Admins: give one account a retention period in days (0: keep forever), replacing the
    deployment's RETENTION_DAYS for it."""
    return Operation(
        "PUT",
        f"/api/v1/users/{_segment(user_id)}/retention",
        _json(Retention.from_json),
        json={"days": days},
    )


def clear_retention(user_id: str) -> Operation[Retention]:
    """Admins: the deployment's retention period applies to this account again."""
    return Operation(
        "DELETE", f"/api/v1/users/{_segment(user_id)}/retention", _json(Retention.from_json)
    )


def list_accounts(query: str = "", *, limit: int = 20, offset: int = 0) -> Operation[AccountsPage]:
    """Admins: the accounts whose email contains `query` (any case), or the one whose id it
    is; all of them for an empty query; newest first."""
    return Operation(
        "GET",
        "/api/v1/users",
        _json(AccountsPage.from_json),
        params={"q": query, "limit": limit, "offset": offset},
    )


def set_account_status(
    user_id: str, *, active: bool | None = None, admin: bool | None = None
) -> Operation[AccountStatus]:
    """Admins: suspend (`active=False`) or restore an account, grant or withdraw admin
    rights; None leaves that as it is. Suspending or demoting ends the account's sessions at
    once; an admin's own account is refused (ObjectVisionError 409 `own_account`)."""
    asked = {"active": active, "admin": admin}
    changes = {name: value for name, value in asked.items() if value is not None}
    return Operation(
        "PATCH",
        f"/api/v1/users/{_segment(user_id)}/status",
        _json(AccountStatus.from_json),
        json=changes,
    )


def change_email(new_email: str, current_password: str) -> Operation[User]:
    """Ask to sign in with `new_email` from now on, given the account's password. Nothing
    changes yet: a link goes to `new_email`, and opening it (or `verify_email` with its
    token) makes the change. The account as stored comes back, with `pending_email` set;
    it looks the same whether or not another account has the address. The account's own
    address withdraws a waiting change. A signed-in session only."""
    return Operation(
        "PATCH",
        "/api/v1/users/me",
        _json(User.from_json),
        json={"email": new_email, "current_password": current_password},
    )


TWO_FACTOR = "/api/v1/users/me/two-factor"


def _recovery_codes(body: object) -> list[str]:
    return RecoveryCodes.from_json(body).recovery_codes


def start_two_factor(current_password: str) -> Operation[TwoFactorEnrollment]:
    """A new secret for an authenticator app, given the account's password (a wrong one
    raises ObjectVisionError 403). Nothing changes at login until `confirm_two_factor` proves
    the app has it; starting again replaces a secret not yet confirmed. An account with two-
    factor authentication on already raises 409 `two_factor_enabled`. A signed-in session
    only (ADR 0034), as are the other two-factor calls."""
    return Operation(
        "POST",
        TWO_FACTOR,
        _json(TwoFactorEnrollment.from_json),
        json={"current_password": current_password},
    )


def confirm_two_factor(code: str) -> Operation[list[str]]:
    """Turn two-factor authentication on with the app's first `code`; returns the ten
    recovery codes, shown only in this answer: store them. A wrong code raises
    ObjectVisionError 422 `invalid_second_factor`; with no secret started, 409
    `no_two_factor_enrollment`."""
    return Operation("POST", f"{TWO_FACTOR}/confirm", _json(_recovery_codes), json={"code": code})


def regenerate_recovery_codes(current_password: str, code: str) -> Operation[list[str]]:
    """New recovery codes, given the password and a `code` (the app's, or a recovery code);
    every earlier recovery code stops working. Without two-factor authentication on,
    ObjectVisionError 409 `two_factor_not_enabled`."""
    return Operation(
        "POST",
        f"{TWO_FACTOR}/recovery-codes",
        _json(_recovery_codes),
        json={"current_password": current_password, "code": code},
    )


def disable_two_factor(current_password: str, code: str) -> Operation[None]:
    """Turn two-factor authentication off, given the password and a `code` (the app's, or a
    recovery code); the account's address is told."""
    return Operation(
        "DELETE",
        TWO_FACTOR,
        _nothing,
        json={"current_password": current_password, "code": code},
    )


def disable_two_factor_for(user_id: str, current_password: str) -> Operation[None]:
    """Admins: turn another account's two-factor authentication off, for an owner who lost
    both the app and the recovery codes; `current_password` is the admin's own. The owner
    is told by email."""
    return Operation(
        "DELETE",
        f"/api/v1/users/{_segment(user_id)}/two-factor",
        _nothing,
        json={"current_password": current_password},
    )


SESSIONS = "/api/v1/users/me/sessions"


def sessions() -> Operation[list[Session]]:
    """The account's signed-in sessions that can still refresh, most recently active first:
    when and where each login was, and `current` on the one this client uses. A signed-in
    session only (ADR 0035), as are the other session calls: an API key raises
    ObjectVisionError 403 `session_required`, so a leaked key can neither see where its owner
    logs in nor log them out."""
    return Operation("GET", SESSIONS, _json(partial(items_of, Session)))


def end_session(session: Session | str) -> Operation[None]:
    """Log one session out, given as listed by `sessions` or by its id: its refresh token and
    every access token minted from it stop working at once. Another account's session, an
    ended or an unknown one raises ObjectVisionError 404 `not_found`. Ending the client's own
    session is a logout: given as a `Session` marked `current`, the client forgets its tokens
    at once; given by id, its next request finds them refused and forgets them then."""
    session_id = session.id if isinstance(session, Session) else session
    return Operation("DELETE", f"{SESSIONS}/{_segment(session_id)}", _nothing)


def _ended_count(body: object) -> int:
    return EndedSessions.from_json(body).ended


def end_other_sessions() -> Operation[int]:
    """Log out every session of the account but this client's own; returns how many ended."""
    return Operation("DELETE", SESSIONS, _json(_ended_count))


def delete_account(current_password: str) -> Operation[None]:
    """Delete the signed-in account, given its password again (a wrong one raises
    ObjectVisionError 403 and deletes nothing). The server answers at once: the account can
    no longer log in, its sessions and API keys stop working, and its images, detections,
    jobs, videos and webhooks are erased in the background; a last email confirms it."""
    return Operation(
        "DELETE", "/api/v1/users/me", _nothing, json={"current_password": current_password}
    )


def detect_image(
    image: ImageSource,
    params: DetectionParams | None = None,
    *,
    store: bool = True,
    metadata: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
) -> Operation[DetectionResult]:
    """Objects in one image, now. `metadata`: your own key-value pairs, kept with the stored
    detection (`StoredDetection.metadata`) and a filter of `history` and `export`; it needs
    `store`. A stored detection goes with a new idempotency key unless given, so a retried
    POST (after a 503) is answered with what the first one stored, not stored twice."""
    filename, data, content_type = read_image(image)
    fields = (params or DetectionParams()).form_fields()
    if not store:
        fields["store"] = "false"
    return Operation(
        "POST",
        "/api/v1/detect/image",
        _json(DetectionResult.from_json),
        data=_with_metadata(fields, metadata),
        files=[("file", (filename, data, content_type))],
        headers=_stored_detect_key(store, idempotency_key),
    )


def detect_url(
    url: str,
    params: DetectionParams | None = None,
    *,
    filename: str | None = None,
    store: bool = True,
    metadata: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
) -> Operation[DetectionResult]:
    """Objects in the image at `url` (http or https), which the server fetches: nothing is
    uploaded from here. The answer is the one an upload of the same bytes gets; a URL the
    server may not fetch (a private address, credentials in it) raises ObjectVisionError
    422 `image_url_forbidden`, one that gives no image (unknown host, an error status, no
    answer in time) 422 `image_url_unreachable`. `filename` names the image in the history
    (default: the URL's last path segment); `metadata` and `idempotency_key` as for
    `detect_image`."""
    body: dict[str, str | int | float | bool | dict[str, str]] = {
        "url": url,
        **(params or DetectionParams()).json_fields(),
    }
    if filename is not None:
        body["filename"] = filename
    if not store:
        body["store"] = False
    if metadata:
        body["metadata"] = dict(metadata)
    return Operation(
        "POST",
        "/api/v1/detect/image",
        _json(DetectionResult.from_json),
        json=body,
        headers=_stored_detect_key(store, idempotency_key),
    )


def _stored_detect_key(store: bool, idempotency_key: str | None) -> dict[str, str]:
    """The Idempotency-Key of a stored detection (ADR 0047): the caller's, else a new one;
    none for an unstored one, which the server would refuse a key for (it keeps nothing to
    answer a retry with)."""
    if not store:
        if idempotency_key:
            raise ValueError("an idempotency key needs store=True")
        return {}
    return {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}


def _with_metadata(fields: dict[str, str], metadata: Mapping[str, str] | None) -> dict[str, str]:
    """A submission's form fields with its metadata, as the JSON the API reads."""
    if metadata:
        fields["metadata"] = json.dumps(dict(metadata))
    return fields


def _metadata_filter(metadata: Mapping[str, str] | None) -> dict[str, list[str]]:
    """A list's metadata filter as query parameters: `metadata=key:value`, once a pair."""
    if not metadata:
        return {}
    return {"metadata": [f"{key}:{value}" for key, value in metadata.items()]}


def _period(since: datetime | None, until: datetime | None) -> dict[str, str]:
    """A history filter's time bounds as query parameters (ISO 8601)."""
    bounds = {"since": since, "until": until}
    return {name: value.isoformat() for name, value in bounds.items() if value is not None}


def submit_batch(
    images: Iterable[ImageSource],
    params: DetectionParams | None = None,
    *,
    idempotency_key: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Operation[Job]:
    """A new idempotency key per submission unless given, so a retried POST (after a 503)
    never makes a second job. `metadata`: your own key-value pairs, kept with the job and
    given back in its answers and events (`Job.metadata`), and a filter of `list_jobs`."""
    files: list[FilePart] = [("files", read_image(image)) for image in images]
    return Operation(
        "POST",
        "/api/v1/detect/batch",
        _json(Job.from_json),
        data=_with_metadata((params or DetectionParams()).form_fields(), metadata),
        files=files,
        headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
    )


def submit_video(
    video: ImageSource,
    params: DetectionParams | None = None,
    *,
    fps: float | None = None,
    every: int | None = None,
    track: bool = False,
    lines: Sequence[CountingLine] | None = None,
    zones: Sequence[CountingZone] | None = None,
    idempotency_key: str | None = None,
    metadata: Mapping[str, str] | None = None,
    redact: Sequence[str] = (),
) -> Operation[Job]:
    """A video file (MP4, MOV or WebM) as a job sampling `fps` frames a second or `every`
    n-th frame (neither: the service default, 1 fps); with `track`, its objects are followed
    from frame to frame and carry a `track_id` (sample fast, e.g. every=1, to track well).
    With `lines` as well, the tracked objects crossing each line are counted: the job's
    `video.line_counts`, each frame's `crossings` (the API refuses lines without `track`).
    With `zones`, each object of a frame names the zones it stands in (`zones`) and the job's
    `video.zone_counts` say who was in each (visited, peak, mean stay; also needs `track`).
    `redact` (class names or ids, such as `["person"]`; at most 100) pixelates those classes'
    objects in every frame of the annotated video, each frame from its own detections (ADR
    0049); the job's `video.redact` names them and its frames still list every object. Only
    what the model found is covered: an object it missed is shown as recorded. An unknown
    class raises ObjectVisionError 422 `invalid_argument`; a bare string in place of a list,
    TypeError before anything is sent.
    The file is read when the operation is built, so a retry sends the same bytes; a new
    idempotency key per submission unless given, so a retried POST never makes a second job.
    `metadata` as for `submit_batch`. Follow it with `wait_for_job`, read `video_frames`."""
    fields = _video_fields(params, fps, every, track, lines, zones, metadata, redact)
    return Operation(
        "POST",
        "/api/v1/detect/video",
        _json(Job.from_json),
        data=fields,
        files=[("file", read_image(video))],
        headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
    )


def submit_video_url(
    url: str,
    params: DetectionParams | None = None,
    *,
    fps: float | None = None,
    every: int | None = None,
    track: bool = False,
    lines: Sequence[CountingLine] | None = None,
    zones: Sequence[CountingZone] | None = None,
    idempotency_key: str | None = None,
    metadata: Mapping[str, str] | None = None,
    redact: Sequence[str] = (),
) -> Operation[Job]:
    """The video at `url` (http or https) as a job, which the server fetches: nothing is
    uploaded from here, and the job is the one `submit_video` makes of the same bytes (its
    `video.filename` is the URL's last path segment). A URL the server may not fetch (a
    private address, credentials in it, another scheme) raises ObjectVisionError 422
    `video_url_forbidden`, one that gives no video (unknown host, an error status, no answer
    in time) 422 `video_url_unreachable`; a too large or not a video file 413 or 415, as an
    upload. The other options (`redact` too), and the idempotency key, as for
    `submit_video`."""
    fields = {
        "url": url,
        **_video_fields(params, fps, every, track, lines, zones, metadata, redact),
    }
    return Operation(
        "POST",
        "/api/v1/detect/video",
        _json(Job.from_json),
        data=fields,
        headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
    )


def _video_fields(
    params: DetectionParams | None,
    fps: float | None,
    every: int | None,
    track: bool,
    lines: Sequence[CountingLine] | None,
    zones: Sequence[CountingZone] | None,
    metadata: Mapping[str, str] | None,
    redact: Sequence[str],
) -> dict[str, str | Sequence[str]]:
    """A video job's form fields but the video itself: the detection parameters, the
    sampling, tracking, the counting lines and zones (as JSON), the metadata and the classes
    to pixelate (one `redact` field each; none when there are none)."""
    classes = _redacted_classes(redact)
    fields = (params or DetectionParams()).form_fields()
    if fps is not None:
        fields["fps"] = repr(float(fps))
    if every is not None:
        fields["every"] = str(int(every))
    if track:
        fields["track"] = "true"
    if lines:
        fields["lines"] = json.dumps([line.to_json() for line in lines])
    if zones:
        fields["zones"] = json.dumps([zone.to_json() for zone in zones])
    redacting: dict[str, str | Sequence[str]] = {"redact": classes} if classes else {}
    return {**_with_metadata(fields, metadata), **redacting}


LIVE_DETECT_PATH = "/api/v1/ws/detect"
# Sent after the last frame: answer the frames still owed, then end the stream.
LIVE_END = {"type": "end"}


def live_settings(
    params: DetectionParams | None = None,
    *,
    track: bool = False,
    frame_rate: float | None = None,
    lines: Sequence[CountingLine] = (),
    zones: Sequence[CountingZone] = (),
) -> dict[str, Any]:
    """The first message of a live detection stream (ADR 0059): the detection parameters as
    a JSON detect body carries them, and tracking, the frame rate (how long an object out of
    sight keeps its track id; the server's default is 30) and the counting lines and zones as
    a video job takes them. Lines and zones without `track` are sent all the same: the server
    refuses them (close 4422) with the reason, as it does a video job's."""
    settings: dict[str, Any] = dict((params or DetectionParams()).json_fields())
    if track:
        settings["track"] = True
    if frame_rate is not None:
        settings["frame_rate"] = float(frame_rate)
    if lines:
        settings["lines"] = [line.to_json() for line in lines]
    if zones:
        settings["zones"] = [zone.to_json() for zone in zones]
    return settings


def video_frames(job_id: str, *, limit: int = 100, offset: int = 0) -> Operation[VideoFramesPage]:
    """A page of a video job's per-frame detections with their timestamps."""
    return Operation(
        "GET",
        f"/api/v1/detect/jobs/{_segment(job_id)}/frames",
        _json(VideoFramesPage.from_json),
        params={"limit": limit, "offset": offset},
    )


def annotated_video(
    job_id: str, destination: BinaryIO, *, on_progress: BytesCallback | None = None
) -> Download[int]:
    """A completed video job's annotated MP4, written to `destination` as it arrives;
    returns its size. A job still running raises ObjectVisionError 409."""
    operation = Operation("GET", f"/api/v1/detect/jobs/{_segment(job_id)}/annotated", _bytes)
    return Download(operation, destination, on_progress, lambda headers, size: size)


def models() -> Operation[list[ServedModel]]:
    """The models the deployment serves; pass a name as ``DetectionParams(model=...)``."""
    return Operation("GET", "/api/v1/models", _json(served_models))


def get_job(job_id: str) -> Operation[Job]:
    return Operation("GET", f"/api/v1/detect/jobs/{_segment(job_id)}", _json(Job.from_json))


JOB_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
JOB_KINDS = ("batch", "video")


def list_jobs(
    *,
    limit: int = 20,
    offset: int = 0,
    status: str | None = None,
    kind: str | None = None,
    metadata: Mapping[str, str] | None = None,
    rerun_of: str | None = None,
) -> Operation[JobsPage]:
    """The caller's batch and video jobs, newest first, without their per-image items
    (`get_job` has them); only those in `status` (pending, processing, completed, failed,
    cancelled), of `kind` (batch, video), holding every pair of `metadata`, or that ran
    `rerun_of` again (`rerun_job`) when given."""
    params: dict[str, str | int | list[str]] = {"limit": limit, "offset": offset}
    if status:
        params["status"] = status
    if kind:
        params["kind"] = kind
    if rerun_of:
        params["rerun_of"] = rerun_of
    params.update(_metadata_filter(metadata))
    return Operation("GET", "/api/v1/detect/jobs", _json(JobsPage.from_json), params=params)


def cancel_job(job_id: str) -> Operation[Job]:
    """Stop a pending or processing job: images (or frames) not yet processed never are,
    those done keep their results. Returns the job, now `cancelled`; a cancelled job is
    answered unchanged, a completed or failed one raises ObjectVisionError 409."""
    return Operation("POST", f"/api/v1/detect/jobs/{_segment(job_id)}/cancel", _json(Job.from_json))


def rerun_job(
    job_id: str,
    params: DetectionParams | None = None,
    *,
    idempotency_key: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Operation[Job]:
    """A new job over what a job stored, uploaded by nobody again: a batch job's images, or a
    video job's video sampled, tracked and counted as before. `params`' fields that are set
    replace the job's own (`DetectionParams(model="yolov8n-int8")` runs the same pictures
    through another model), the rest are the job's. The new job's `rerun_of` names this one;
    `metadata` None keeps the job's. Admitted as a submission (quota, unfinished jobs, a new
    idempotency key unless given); a batch job with no stored image left, or a video gone from
    storage, raises ObjectVisionError 409."""
    body: dict[str, str | int | float | dict[str, str]] = {
        **(params or DetectionParams()).json_fields()
    }
    if metadata:
        body["metadata"] = dict(metadata)
    return Operation(
        "POST",
        f"/api/v1/detect/jobs/{_segment(job_id)}/rerun",
        _json(Job.from_json),
        json=body,
        headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
    )


def rerun_history(
    params: DetectionParams | None = None,
    *,
    class_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    metadata: Mapping[str, str] | None = None,
    filename: str | None = None,
    confidence_below: float | None = None,
    job_metadata: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
) -> Operation[Job]:
    """A new batch job over the stored images of your detections that the history's filters
    keep (as `history` takes them), oldest first, nothing uploaded again: `params` (another
    model, thresholds) as for a submission, `job_metadata` the new job's own pairs. More
    detections than a batch takes raises ObjectVisionError 422 with their count; none, 409."""
    body: dict[str, str | int | float | dict[str, str]] = {
        **(params or DetectionParams()).json_fields()
    }
    if job_metadata:
        body["metadata"] = dict(job_metadata)
    return Operation(
        "POST",
        "/api/v1/detect/history/rerun",
        _json(Job.from_json),
        params=_history_filters(class_name, since, until, metadata, filename, confidence_below),
        json=body,
        headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex},
    )


def delete_job(job_id: str) -> Operation[None]:
    """Delete a finished (completed, failed or cancelled) job with everything it stored: its
    images, their detections, a video job's video, frames and annotated video. A pending or
    processing job raises ObjectVisionError 409 (cancel it first); a missing one, another
    user's or one already deleted, 404."""
    return Operation("DELETE", f"/api/v1/detect/jobs/{_segment(job_id)}", _nothing)


def _history_filters(
    class_name: str | None,
    since: datetime | None,
    until: datetime | None,
    metadata: Mapping[str, str] | None,
    filename: str | None,
    confidence_below: float | None = None,
) -> dict[str, str | list[str]]:
    """The history's filters as query parameters: those given, and only those."""
    params: dict[str, str | list[str]] = {}
    if class_name:
        params["class_name"] = class_name
    if filename:
        params["filename"] = filename
    if confidence_below is not None:
        params["confidence_below"] = f"{confidence_below:g}"
    params.update(_period(since, until))
    params.update(_metadata_filter(metadata))
    return params


def history(
    *,
    limit: int = 20,
    offset: int = 0,
    class_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    metadata: Mapping[str, str] | None = None,
    filename: str | None = None,
    confidence_below: float | None = None,
) -> Operation[HistoryPage]:
    """The caller's stored detections, newest first; only those with an object of
    `class_name`, made in [since, until), holding every pair of `metadata`, whose file name
    contains `filename` (ignoring case), or with an object scoring below `confidence_below`
    (of `class_name`, when given: where the model was unsure), when given."""
    params: dict[str, str | int | list[str]] = {
        "limit": limit,
        "offset": offset,
        **_history_filters(class_name, since, until, metadata, filename, confidence_below),
    }
    return Operation("GET", "/api/v1/detect/history", _json(HistoryPage.from_json), params=params)


def history_summary(
    *,
    class_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    metadata: Mapping[str, str] | None = None,
    filename: str | None = None,
    confidence_below: float | None = None,
) -> Operation[HistorySummary]:
    """How many stored detections `history`'s filters keep, and their objects per class."""
    return Operation(
        "GET",
        "/api/v1/detect/history/summary",
        _json(HistorySummary.from_json),
        params=_history_filters(class_name, since, until, metadata, filename, confidence_below),
    )


# What one `delete_history` call deletes at most (the API's limit): `more` says to call again.
MAX_DELETED_PER_CALL = 5000


def delete_history(
    *,
    class_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    metadata: Mapping[str, str] | None = None,
    filename: str | None = None,
    everything: bool = False,
    confidence_below: float | None = None,
) -> Operation[HistoryDeletion]:
    """Delete the stored detections that `history`'s filters keep, each as
    `delete_detection` deletes one: its objects, its stored image, its item in a finished
    job and the result cache's answers for the image. Detections of jobs still pending or
    processing stay, counted in `kept_in_unfinished_jobs`.

    One call, as every operation here is: it deletes at most MAX_DELETED_PER_CALL, and its
    answer's `more` says that more matched, so call again with the same filters until it is
    false (`objectvision history delete` does; a call cut short can simply be repeated).
    No filter deletes the whole history, and only with `everything=True`: without a filter
    and without it, ValueError before anything is sent, so a forgotten filter never empties
    an account; `everything` with filters is a ValueError too, as it could only mean one of
    them. An API key needs the `results:write` scope (else ObjectVisionError 403
    `insufficient_scope`)."""
    params: dict[str, str | list[str]] = _history_filters(
        class_name, since, until, metadata, filename, confidence_below
    )
    if everything and params:
        raise ValueError(
            "everything=True deletes the whole history: leave out the filters, or everything"
        )
    if not everything and not params:
        raise ValueError(
            "no filter given: this would delete the whole history; give a filter (class_name,"
            " since, until, metadata, filename, confidence_below), or everything=True to delete"
            " all of it"
        )
    if everything:
        params["all"] = "true"
    return Operation(
        "DELETE",
        "/api/v1/detect/history",
        _json(HistoryDeletion.from_json),
        params=params,
    )


def get_detection(detection_id: str) -> Operation[StoredDetection]:
    return Operation(
        "GET", f"/api/v1/detect/{_segment(detection_id)}", _json(StoredDetection.from_json)
    )


def delete_detection(detection_id: str) -> Operation[None]:
    """Delete a stored detection and its image: it leaves the history and exports (and its
    finished job's items). One of a job still pending or processing raises ObjectVisionError
    409; a missing one, another user's or one already deleted, 404."""
    return Operation("DELETE", f"/api/v1/detect/{_segment(detection_id)}", _nothing)


def _redacted_classes(redact: Sequence[str]) -> list[str]:
    """The class names or ids to pixelate, as given, without blanks or repeats. A bare string
    is refused: it would be taken as its letters."""
    if isinstance(redact, str):
        raise TypeError(f"redact takes a sequence of classes, such as [{redact!r}], not a string")
    chosen: list[str] = []
    for name in (str(item).strip() for item in redact):
        if name and name not in chosen:
            chosen.append(name)
    return chosen


def detection_image(
    detection_id: str, *, annotated: bool = True, redact: Sequence[str] = ()
) -> Operation[bytes]:
    """The stored image: JPEG with boxes drawn, or the upload as it was. `redact` (class
    names or ids, such as `["person"]`; at most 100) pixelates those classes' objects, with
    or without the boxes, and the answer is then a JPEG either way (ADR 0049). Only what the
    model found is covered: an object it missed, or found under the detection's threshold,
    is shown as uploaded, so detect with a lower `confidence` first where that matters. A
    class the model does not know raises ObjectVisionError 422 `invalid_argument` naming
    those it knows."""
    params: dict[str, str | Sequence[str]] = {"annotated": "true" if annotated else "false"}
    classes = _redacted_classes(redact)
    if classes:
        params["redact"] = classes
    return Operation(
        "GET",
        f"/api/v1/detect/{_segment(detection_id)}/image",
        _bytes,
        params=params,
    )


API_KEYS = "/api/v1/users/me/api-keys"
WEBHOOKS = "/api/v1/webhooks"


def list_api_keys() -> Operation[list[ApiKey]]:
    return Operation("GET", API_KEYS, _json(partial(items_of, ApiKey)))


# What an API key may be allowed to do (the API's `scopes`). Managing the account and its keys
# needs a logged-in session whatever a key's scopes.
API_KEY_SCOPES = ("detect", "results:read", "results:write", "results:share", "webhooks")
# The longest lifetime a key may be given, in days.
MAX_API_KEY_LIFETIME_DAYS = 365


def create_api_key(
    name: str, scopes: Sequence[str] | None = None, expires_in_days: int | None = None
) -> Operation[CreatedApiKey]:
    """A new key (its secret in this answer only) with `scopes` (None: every scope) that
    stops working after `expires_in_days` (1 to MAX_API_KEY_LIFETIME_DAYS; None: when it is
    revoked). Needs a logged-in session: an API key cannot create keys."""
    body: dict[str, Any] = {"name": name}
    if scopes is not None:
        body["scopes"] = list(scopes)
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    return Operation("POST", API_KEYS, _json(CreatedApiKey.from_json), json=body)


def revoke_api_key(key_id: str) -> Operation[None]:
    return Operation("DELETE", f"{API_KEYS}/{_segment(key_id)}", _nothing)


def list_webhooks() -> Operation[list[Webhook]]:
    return Operation("GET", WEBHOOKS, _json(partial(items_of, Webhook)))


# The events a webhook can be limited to (`events`; none: every one of them).
WEBHOOK_EVENTS = ("job.progress", "job.completed", "job.failed", "job.cancelled")


def create_webhook(url: str, events: Sequence[str] = ()) -> Operation[CreatedWebhook]:
    return Operation(
        "POST", WEBHOOKS, _json(CreatedWebhook.from_json), json={"url": url, "events": list(events)}
    )


def update_webhook(
    webhook_id: str,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> Operation[Webhook]:
    """Change a webhook's `url` or `events` (WEBHOOK_EVENTS; empty: every job event), or
    disable (`enabled=False`) and enable it (ADR 0046); None leaves that as it is, and at
    least one must be given (else ValueError, before anything is sent). Returns the webhook
    as it now is. While disabled, its events are recorded as dead deliveries and nothing is
    sent; enabling it clears its failure count, and what it missed can then be redelivered.
    A URL another of the account's webhooks has raises ObjectVisionError 409
    `already_exists`."""
    asked = {"url": url, "events": None if events is None else list(events), "enabled": enabled}
    changes = {name: value for name, value in asked.items() if value is not None}
    if not changes:
        raise ValueError("nothing to change: give url, events or enabled")
    return Operation(
        "PATCH", f"{WEBHOOKS}/{_segment(webhook_id)}", _json(Webhook.from_json), json=changes
    )


def ping_webhook(webhook_id: str) -> Operation[WebhookDelivery]:
    """Send the webhook a signed test event (`webhook.ping`, whose data names the webhook)
    now, enabled or not, so a receiver can be tried before the webhook is enabled again.
    Returns the new delivery, pending: follow it in `list_webhook_deliveries`."""
    return Operation(
        "POST", f"{WEBHOOKS}/{_segment(webhook_id)}/ping", _json(WebhookDelivery.from_json)
    )


def rotate_webhook_secret(
    webhook_id: str, *, keep_previous_seconds: int = 86400
) -> Operation[CreatedWebhook]:
    """A new signing secret for the webhook, in this answer only. For `keep_previous_seconds`
    (a day by default; 0 to 604800) deliveries are signed with the new and the old secret, so
    the receiver can switch without missing one (see `objectvision_client.webhooks.verify`)."""
    return Operation(
        "POST",
        f"{WEBHOOKS}/{_segment(webhook_id)}/rotate-secret",
        _json(CreatedWebhook.from_json),
        json={"keep_previous_seconds": keep_previous_seconds},
    )


def delete_webhook(webhook_id: str) -> Operation[None]:
    return Operation("DELETE", f"{WEBHOOKS}/{_segment(webhook_id)}", _nothing)


# What `state` filters a webhook's deliveries by.
DELIVERY_STATES = ("pending", "delivered", "dead")


def list_webhook_deliveries(
    webhook_id: str, *, state: str | None = None, limit: int = 20, offset: int = 0
) -> Operation[WebhookDeliveriesPage]:
    """A page of the webhook's deliveries, newest first; `state` one of DELIVERY_STATES."""
    params: dict[str, str | int] = {"limit": limit, "offset": offset}
    if state:
        params["state"] = state
    return Operation(
        "GET",
        f"{WEBHOOKS}/{_segment(webhook_id)}/deliveries",
        _json(WebhookDeliveriesPage.from_json),
        params=params,
    )


def redeliver(webhook_id: str, delivery_id: str) -> Operation[WebhookDelivery]:
    """Send a delivered or dead delivery's event again now, as a new delivery (same event id
    and body, a fresh signature). A delivery still pending, or a disabled webhook (enable it
    first: `update_webhook(webhook_id, enabled=True)`), raises ObjectVisionError 409."""
    return Operation(
        "POST",
        f"{WEBHOOKS}/{_segment(webhook_id)}/deliveries/{_segment(delivery_id)}/redeliver",
        _json(WebhookDelivery.from_json),
    )


SHARE_LINKS = "/api/v1/share-links"
SHARED = "/api/v1/shared"
# The header a share link's reads carry its token in: never the URL, which access logs,
# proxies and Referer headers would keep.
SHARE_TOKEN_HEADER = "X-Share-Token"  # noqa: S105 - a header name
# What a share link's URL holds before its query: the console's page of what it shares.
SHARED_PAGE = "#/shared?"
# The longest a link may work for, in days (the API's limit; 7 when not given).
MAX_SHARE_LINK_DAYS = 30


def _given_id(value: str | None) -> str | None:
    """An id as given, None for none (or only blanks, which the API takes as none)."""
    text = "" if value is None else str(value).strip()
    return text or None


def create_share_link(
    detection_id: str | None = None,
    *,
    job_id: str | None = None,
    expires_in_days: int | None = None,
    redact: Sequence[str] = (),
) -> Operation[CreatedShareLink]:
    """A new link that shows one of the caller's stored detections (its objects and image,
    ADR 0048) or, with `job_id` in place of `detection_id`, one of its completed video jobs
    (its annotated video, its video's facts and what the job counted, ADR 0052) to whoever
    holds it, with no account, for `expires_in_days` (1 to MAX_SHARE_LINK_DAYS; None: the
    server's default, 7) unless revoked first. Exactly one of `detection_id` and `job_id`:
    neither or both raise ValueError before anything is sent. The answer is the only one that
    carries its `token` and `url`: pass one on, as nothing reads them back later.
    `redact` (class names or ids, such as `["person"]`; a detection's link only) fixes
    classes whose objects the link's image always shows pixelated, with its boxes or
    without, so the upload itself is never sent through it (ADR 0049); the objects are still
    listed. It covers only what the model found: a person it missed is shown as uploaded, so
    detect with a lower `confidence` first where that matters. An unknown class raises
    ObjectVisionError 422 `invalid_argument`. A job's link takes no `redact` (ValueError):
    its annotated video is shown as the job drew it, so submit the video with `redact`
    instead. A detection or job with 10 active links already raises 409
    `too_many_share_links`; a video job without its annotated video (pending, processing,
    failed or cancelled), 409 `failed_precondition`; another account's, or a batch job, 404
    `not_found`. An API key needs the `results:share` scope (else 403
    `insufficient_scope`)."""
    detection, job = _given_id(detection_id), _given_id(job_id)
    if (detection is None) == (job is None):
        raise ValueError(
            "a share link shows one thing: give detection_id or job_id"
            + (", not both" if detection is not None else "")
        )
    classes = _redacted_classes(redact)
    if job is not None and classes:
        raise ValueError(
            "redact is for a detection's link: a video job's annotated video is shown as the "
            "job drew it (submit the video with redact to pixelate classes in it)"
        )
    body: dict[str, str | int | list[str]] = (
        {"detection_id": detection} if detection is not None else {"job_id": str(job)}
    )
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    if classes:
        body["redact"] = classes
    return Operation("POST", SHARE_LINKS, _json(CreatedShareLink.from_json), json=body)


def list_share_links(
    *,
    detection_id: str | None = None,
    job_id: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> Operation[ShareLinksPage]:
    """A page of the caller's share links, newest first, revoked and expired ones included
    (`active` says which work); only `detection_id`'s, or only `job_id`'s, when given; with
    their views, never their tokens."""
    params: dict[str, str | int] = {"limit": limit, "offset": offset}
    if detection_id:
        params["detection_id"] = str(detection_id)
    if job_id:
        params["job_id"] = str(job_id)
    return Operation("GET", SHARE_LINKS, _json(ShareLinksPage.from_json), params=params)


def revoke_share_link(link_id: str) -> Operation[ShareLink]:
    """Stop a share link at once: whoever holds it gets 404 `share_link_revoked` from then
    on. Returns the link, now revoked (`active` false, `revoked_at` set); it stays listed,
    and revoking it again answers it unchanged. Another account's link, 404 `not_found`."""
    return Operation("DELETE", f"{SHARE_LINKS}/{_segment(link_id)}", _json(ShareLink.from_json))


def share_token(token_or_url: str) -> str:
    """The token of a share link, given as the token itself or as the link people pass
    around (`https://.../#/shared?token=ovs_...`, the console's page, the token in its
    fragment's query). ValueError for a link that holds no token, or nothing at all, so
    nothing is sent that can only be refused."""
    text = token_or_url.strip()
    _, page, query = text.partition(SHARED_PAGE)
    if page:
        text = parse_qs(query).get("token", [""])[0].strip()
        if not text:
            raise ValueError(f"{token_or_url!r} is a shared page's link with no token in it")
    if not text:
        raise ValueError("no share token given: pass the token (ovs_...) or the link holding it")
    return text


def _shared_read(token_or_url: str, parse: Callable[[httpx.Response], T]) -> Operation[T]:
    """`GET /api/v1/shared` with the link's token alone: never this client's credentials."""
    return Operation(
        "GET",
        SHARED,
        parse,
        headers={SHARE_TOKEN_HEADER: share_token(token_or_url)},
        authenticated=False,
    )


def shared(token_or_url: str) -> Operation[SharedDetection | SharedVideo]:
    """What a share link shows, as its answer's `kind` says: a `SharedDetection` (the
    image's size, its objects, the model and when it ran) or a `SharedVideo` (a video job's
    facts and counts, the model and when the job completed, ADR 0052), each with when the
    link stops working. For anyone holding the link: sent with its token alone (never this
    client's API key or session), so a client made without credentials calls it. Takes the
    token or the whole link (see `share_token`). Each read counts as one of the link's
    views. An unknown, expired or revoked link, or one whose owner's account is suspended,
    raises ObjectVisionError 404 `share_link_not_found`, `share_link_expired`,
    `share_link_revoked` or `share_link_unavailable`; too many reads from one network, 429
    (retried as any 429)."""
    return _shared_read(token_or_url, _json(shared_of))


def _shared_detection_of(response: httpx.Response) -> SharedDetection:
    shown = shared_of(response.json())
    if isinstance(shown, SharedVideo):
        raise ObjectVisionError(
            409,
            "share_link_shows_video",
            "this share link shows a video job, not a detection: read it with shared(), and "
            "its annotated video with shared_video()",
            response.headers.get("x-request-id"),
        )
    return shown


def shared_detection(token_or_url: str) -> Operation[SharedDetection]:
    """What a detection's share link shows: the image's size, its objects, the model and when
    it ran, and when the link stops working. Sent and refused as `shared` is; a video job's
    link raises ObjectVisionError 409 `share_link_shows_video` (as its image would), after
    the read: `shared` reads either kind."""
    return _shared_read(token_or_url, _shared_detection_of)


def shared_image(token_or_url: str, *, annotated: bool = True) -> Operation[bytes]:
    """A detection's share link's image: JPEG with the boxes drawn, or (`annotated=False`)
    without them: the image as uploaded, unless the link was made with `redact`, whose
    classes it then shows pixelated either way (ADR 0049; what the link shares does not say
    which). Sent and refused as `shared` is; a video job's link raises ObjectVisionError 409
    `share_link_shows_video`."""
    return Operation(
        "GET",
        f"{SHARED}/image",
        _bytes,
        params={"annotated": "true" if annotated else "false"},
        headers={SHARE_TOKEN_HEADER: share_token(token_or_url)},
        authenticated=False,
    )


def shared_video(
    token_or_url: str, destination: BinaryIO, *, on_progress: BytesCallback | None = None
) -> Download[int]:
    """A video job's share link's annotated video (MP4, H.264; ADR 0052), as the job drew it,
    written to `destination` as it arrives rather than held in memory; returns its size.
    Sent and refused as `shared` is; a detection's link raises ObjectVisionError 409
    `share_link_shows_image`. The read does not count as a view."""
    operation = Operation(
        "GET",
        f"{SHARED}/video",
        _bytes,
        headers={SHARE_TOKEN_HEADER: share_token(token_or_url)},
        authenticated=False,
    )
    return Download(operation, destination, on_progress, lambda headers, size: size)


EXPORT_FORMATS = ("coco", "yolo", "csv")


def _export_format(format: str) -> str:
    if format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose {', '.join(EXPORT_FORMATS)}")
    return format


def export_job(job_id: str, *, format: str) -> Operation[bytes]:
    """A finished job's detections as a file (COCO JSON, YOLO zip or CSV); a job still
    running is a 409. `export` streams it to a file instead of into memory."""
    return Operation(
        "GET",
        f"/api/v1/detect/jobs/{_segment(job_id)}/export",
        _bytes,
        params={"format": _export_format(format)},
    )


def export_history(
    *,
    format: str,
    class_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    metadata: Mapping[str, str] | None = None,
    filename: str | None = None,
    confidence_below: float | None = None,
) -> Operation[bytes]:
    """The caller's detections, with the filters of `history`, as a file."""
    params: dict[str, str | list[str]] = {
        "format": _export_format(format),
        **_history_filters(class_name, since, until, metadata, filename, confidence_below),
    }
    return Operation("GET", "/api/v1/detect/history/export", _bytes, params=params)


def export(
    destination: BinaryIO,
    *,
    format: str = "coco",
    job_id: str | None = None,
    class_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    metadata: Mapping[str, str] | None = None,
    filename: str | None = None,
    on_progress: BytesCallback | None = None,
    confidence_below: float | None = None,
) -> Download[ExportedFile]:
    """A finished job's (`job_id`) or the filtered history's detections as COCO JSON,
    a YOLO zip or CSV, written to `destination` as it arrives rather than held in
    memory. A job still running raises ObjectVisionError 409: `wait_for_job` first."""
    if job_id is None:
        operation = export_history(
            format=format,
            class_name=class_name,
            since=since,
            until=until,
            metadata=metadata,
            filename=filename,
            confidence_below=confidence_below,
        )
    elif (
        class_name
        or since is not None
        or until is not None
        or metadata
        or filename
        or confidence_below is not None
    ):
        raise ValueError(
            "a job's export takes no history filters (class_name, since, until, metadata,"
            " filename, confidence_below)"
        )
    else:
        operation = export_job(job_id, format=format)
    return Download(operation, destination, on_progress, ExportedFile.from_headers)


# What every zip file starts with (a local file header, or the end record of an empty one).
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def read_labels(labels: LabelsSource) -> tuple[str, bytes, str]:
    """(filename, bytes, content type) of a labels file. The server tells a YOLO zip from
    COCO JSON by the bytes; bytes given here are named by them too (`labels.zip` or
    `labels.json`), so the name in the server's logs does not mislead. Read when the
    operation is built, so a retry sends the same bytes."""
    if isinstance(labels, bytes):
        data = labels
        filename = "labels.zip" if data.startswith(ZIP_MAGIC) else "labels.json"
    else:
        path = Path(labels)
        filename, data = path.name, path.read_bytes()
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return filename, data, content_type


def evaluate_job(job_id: str, labels: LabelsSource) -> Operation[JobEvaluation]:
    """A finished batch job's detections scored against ground-truth `labels` (ADR 0054): mAP,
    precision and recall, overall and per class. `labels` is a path or the bytes of a zip of
    YOLO label files (the layout `export(format="yolo")` writes) or of a COCO JSON file. A
    job still running raises ObjectVisionError 409; a video job, a file that is neither, a
    bad line (named in the message) or labels naming no image of the job, 422; over 32 MiB,
    413. An API key needs the `results:read` scope."""
    return Operation(
        "POST",
        f"/api/v1/detect/jobs/{_segment(job_id)}/evaluation",
        _json(JobEvaluation.from_json),
        files=[("labels", read_labels(labels))],
    )
