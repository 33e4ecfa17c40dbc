"""Every variable the gateway reads, named once."""

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from gateway.auth.jwks import DEFAULT_MAX_AGE_SECONDS
from objectvision_common.grpc_server import MAX_MESSAGE_BYTES
from objectvision_common.settings import CommonSettings

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RULE = re.compile(r"^\s*(\d+)\s*/\s*(\d+|second|minute|hour|day)\s*$")
MIB = 1024 * 1024
# Images travel to the detection service in one gRPC message; this much of it is left for
# the message's own fields (filenames, content types, parameters).
_GRPC_ENVELOPE_BYTES = MIB
MAX_IMAGE_BYTES_PER_CALL = MAX_MESSAGE_BYTES - _GRPC_ENVELOPE_BYTES


class RateLimitRule(BaseModel):
    """At most `limit` attempts in any `window_seconds`; written `10/60` or `5/hour`."""

    model_config = ConfigDict(frozen=True)

    limit: int = Field(ge=1)
    window_seconds: int = Field(ge=1)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        match = _RULE.match(value.lower())
        if match is None:
            raise ValueError(
                "write a rate limit as COUNT/SECONDS or COUNT/(second|minute|hour|day)"
            )
        count, period = match.groups()
        window = int(period) if period.isascii() and period.isdigit() else _PERIODS[period]
        return {"limit": int(count), "window_seconds": window}


# A rate-limit setting: its variable is read as a rule (`10/60`), not decoded as JSON.
RateLimitSetting = Annotated[RateLimitRule, NoDecode]


def _rate_limit(variable: str, *, limit: int, window_seconds: int) -> Any:
    """The field of a rate-limit setting, read from `variable`, with its default rule: every
    limit is declared the same way, so each one states only what is its own."""
    return Field(
        default=RateLimitRule(limit=limit, window_seconds=window_seconds),
        validation_alias=variable,
    )


class GatewaySettings(CommonSettings):
    """Gateway settings; values come from the environment or `.env`."""

    gateway_host: str = Field(default="127.0.0.1", validation_alias="GATEWAY_HOST")
    gateway_port: int = Field(default=8000, ge=0, le=65535, validation_alias="GATEWAY_PORT")
    # /ready and /metrics are served here (on GATEWAY_HOST), never on the public port, which
    # keeps only /health. 0 serves neither.
    gateway_metrics_port: int = Field(
        default=9100, ge=0, le=65535, validation_alias="GATEWAY_METRICS_PORT"
    )
    auth_service_addr: str = Field(default="127.0.0.1:50051", validation_alias="AUTH_SERVICE_ADDR")
    detection_service_addr: str = Field(
        default="127.0.0.1:50052", validation_alias="DETECTION_SERVICE_ADDR"
    )
    notification_service_addr: str = Field(
        default="127.0.0.1:50053", validation_alias="NOTIFICATION_SERVICE_ADDR"
    )
    # JSON routes; upload routes register their own, larger limit (see app.create_app).
    max_request_bytes: int = Field(default=1024 * 1024, ge=0, validation_alias="MAX_REQUEST_BYTES")
    # One uploaded image; the detection service reads the same variable and enforces it too.
    max_upload_bytes: int = Field(
        default=20 * MIB, ge=1, le=MAX_IMAGE_BYTES_PER_CALL, validation_alias="MAX_UPLOAD_BYTES"
    )
    max_batch_files: int = Field(default=100, ge=1, validation_alias="MAX_BATCH_FILES")
    # Deadline of the calls that process images (detect, job submission, annotated images);
    # every other call has GRPC_DEADLINE_SECONDS.
    detect_deadline_seconds: float = Field(
        default=30.0, gt=0, validation_alias="DETECT_DEADLINE_SECONDS"
    )
    # Images by URL (ADR 0027): the whole fetch of one image, every lookup, connection,
    # redirect and byte of it together.
    image_url_timeout_seconds: float = Field(
        default=10.0, gt=0, validation_alias="IMAGE_URL_TIMEOUT_SECONDS"
    )
    # A video by URL (`url` in POST /detect/video's form): the same, for a larger file.
    video_url_timeout_seconds: float = Field(
        default=300.0, gt=0, validation_alias="VIDEO_URL_TIMEOUT_SECONDS"
    )
    # Fetch images and videos from loopback, private and link-local addresses too: tests and
    # local development only, never where the gateway can reach anything worth protecting.
    image_url_allow_private: bool = Field(default=False, validation_alias="IMAGE_URL_ALLOW_PRIVATE")
    # Deadline of a whole export download (job or history as COCO, YOLO or CSV): a large
    # history streams for longer than any single call should take.
    export_deadline_seconds: float = Field(
        default=600.0, gt=0, validation_alias="EXPORT_DEADLINE_SECONDS"
    )
    # Deadline of scoring a job against labels (ADR 0054): a dense job's mAP takes seconds.
    evaluation_deadline_seconds: float = Field(
        default=60.0, gt=0, validation_alias="EVALUATION_DEADLINE_SECONDS"
    )
    # One uploaded video (POST /detect/video); the detection service reads the same variable
    # and enforces it too, with the duration and codec checks only it can make.
    max_video_bytes: int = Field(default=200 * MIB, ge=1, validation_alias="MAX_VIDEO_BYTES")
    # Deadline of a video upload (streamed to the service, which probes it before answering)
    # and of an annotated video's download.
    video_deadline_seconds: float = Field(
        default=600.0, gt=0, validation_alias="VIDEO_DEADLINE_SECONDS"
    )
    rate_limit_login: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_LOGIN", limit=10, window_seconds=60
    )
    # Every login attempt from one network (IPv4 address or IPv6 /64), whatever the email:
    # credential stuffing from one place.
    rate_limit_login_ip: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_LOGIN_IP", limit=60, window_seconds=60
    )
    # Failed logins of one account from anywhere: guessing spread over many addresses. Only
    # failures count, so the owner logging in is never slowed down.
    rate_limit_login_account: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_LOGIN_ACCOUNT", limit=20, window_seconds=900
    )
    rate_limit_signup: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_SIGNUP", limit=5, window_seconds=3600
    )
    # Reset-link requests from one network, whatever the address (ADR 0021).
    rate_limit_forgot_password: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_FORGOT_PASSWORD", limit=10, window_seconds=3600
    )
    # Reset-link requests for one address from anywhere, whether or not it has an account
    # (so the limit tells nothing): caps the reset mail one inbox gets.
    rate_limit_forgot_password_email: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_FORGOT_PASSWORD_EMAIL", limit=3, window_seconds=3600
    )
    # Reset-link uses (tokens tried) from one network.
    rate_limit_reset_password: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_RESET_PASSWORD", limit=10, window_seconds=3600
    )
    # Email verification links used (tokens tried) from one network (ADR 0029).
    rate_limit_verify_email: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_VERIFY_EMAIL", limit=10, window_seconds=3600
    )
    # New verification links asked for by one signed-in account: caps the mail one inbox gets.
    rate_limit_resend_verification: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_RESEND_VERIFICATION", limit=3, window_seconds=3600
    )
    # Changes of address asked for by one signed-in account (ADR 0033): each mails a link to
    # an address of the caller's choosing, so this caps the mail the account can send to
    # strangers' inboxes.
    rate_limit_email_change: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_EMAIL_CHANGE", limit=3, window_seconds=3600
    )
    # Images fetched by URL for one account (ADR 0027): each URL is a download the gateway
    # makes on the caller's behalf from a host of their choosing, so it is counted per
    # account, before anything is fetched.
    rate_limit_image_urls: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_IMAGE_URLS", limit=1200, window_seconds=3600
    )
    # Wrong current passwords given by one signed-in account (changing its password or email,
    # deleting it): a stolen session or API key must not be able to guess the password that
    # would let it take the account over. Only wrong ones count.
    rate_limit_password_confirm: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_PASSWORD_CONFIRM", limit=10, window_seconds=900
    )
    # Reads of shared detections (ADR 0048) from one network, their images included: anyone
    # with a link reads without an account, so this is what one place can make us draw.
    rate_limit_shared_views: RateLimitSetting = _rate_limit(
        "RATE_LIMIT_SHARED_VIEWS", limit=120, window_seconds=60
    )
    # The console's public address: share links (ADR 0048) open its page of a shared
    # detection, as the links in emails open its other pages.
    public_base_url: str = Field(
        default="http://127.0.0.1:8000", validation_alias="PUBLIC_BASE_URL"
    )
    grpc_deadline_seconds: float = Field(
        default=5.0, gt=0, validation_alias="GRPC_DEADLINE_SECONDS"
    )
    # WebSockets (job progress and live detection together) one account may hold open at once
    # on one replica (each holds a gRPC stream while it lives); one more is closed with 4429.
    ws_max_streams_per_account: int = Field(
        default=32, ge=1, le=10_000, validation_alias="WS_MAX_STREAMS_PER_ACCOUNT"
    )
    # How often a WebSocket checks that its credential was not revoked since it opened
    # (logout, new password, revoked key, suspended account); a revoked one closes 4401.
    ws_credential_recheck_seconds: float = Field(
        default=60.0, gt=0, le=3600, validation_alias="WS_CREDENTIAL_RECHECK_SECONDS"
    )
    # Frames a live detection WebSocket reads ahead of its oldest unanswered one (ADR 0059).
    ws_detect_max_in_flight: int = Field(
        default=4, ge=1, le=64, validation_alias="WS_DETECT_MAX_IN_FLIGHT"
    )
    # A live detection WebSocket with no frame for this long is ended (4408): a forgotten
    # one must not hold its socket, stream slot and DetectStream for a day.
    ws_detect_idle_seconds: float = Field(
        default=60.0, gt=0, le=3600, validation_alias="WS_DETECT_IDLE_SECONDS"
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="CORS_ORIGINS"
    )
    # Only behind a proxy that overwrites X-Forwarded-For; otherwise callers pick their own IP.
    trust_proxy_headers: bool = Field(default=False, validation_alias="TRUST_PROXY_HEADERS")
    shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, validation_alias="GATEWAY_SHUTDOWN_GRACE_SECONDS"
    )
    # A token naming an unknown key refetches the key set at most this often, so forged key
    # ids cannot turn the gateway into a load generator against the auth service.
    jwks_min_refresh_seconds: float = Field(
        default=10.0, ge=0, validation_alias="JWKS_MIN_REFRESH_SECONDS"
    )
    # The key set is fetched again once it is this old, so a key the auth service no longer
    # publishes (the end of a key rotation) stops verifying here within this time.
    jwks_max_age_seconds: float = Field(
        default=DEFAULT_MAX_AGE_SECONDS, gt=0, le=24 * 3600, validation_alias="JWKS_MAX_AGE_SECONDS"
    )
    readiness_timeout_seconds: float = Field(
        default=2.0, gt=0, validation_alias="READINESS_TIMEOUT_SECONDS"
    )

    @property
    def max_batch_bytes(self) -> int:
        """All images of one batch together: as many full-size files as fit in one call."""
        return min(self.max_batch_files * self.max_upload_bytes, MAX_IMAGE_BYTES_PER_CALL)

    @model_validator(mode="after")
    def _jwks_max_age_covers_the_refresh_interval(self) -> "GatewaySettings":
        """Refetches are never closer than JWKS_MIN_REFRESH_SECONDS, so a shorter maximum
        age would promise a bound on withdrawn keys that the gateway cannot keep."""
        if self.jwks_max_age_seconds < self.jwks_min_refresh_seconds:
            raise ValueError("JWKS_MAX_AGE_SECONDS must be at least JWKS_MIN_REFRESH_SECONDS")
        return self

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """A comma-separated list in the environment."""
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value
