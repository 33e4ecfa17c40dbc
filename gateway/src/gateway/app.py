"""Builds the gateway app: every connection, cache and middleware wired in one place.

Nothing lives at module level: connections are opened in the lifespan and hung on
`app.state`, where dependencies (gateway.dependencies) find them, so several apps can run in
one process and tests can pass their own clients.
"""

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import grpc
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from google.protobuf import empty_pb2

from gateway.auth.jwks import JwksCache
from gateway.clients import ServiceClients
from gateway.config import GatewaySettings
from gateway.errors import install_error_handlers
from gateway.live_streams import LiveStreams
from gateway.media_urls import IMAGE, VIDEO, UrlFetcher
from gateway.metrics import GatewayMetrics
from gateway.middleware import (
    BodySizeLimitMiddleware,
    ObservabilityMiddleware,
    RequestIdMiddleware,
    UnhandledErrorMiddleware,
)
from gateway.ratelimit import RateLimiter
from gateway.routers import ROUTERS, detect, evaluation, health, share_links, video
from objectvision.v1 import auth_pb2
from objectvision_common.limits import MAX_LABELS_BYTES
from objectvision_common.public_urls import pinned_http_client

logger = logging.getLogger(__name__)

_EXPOSED_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "WWW-Authenticate",
    "Location",
    detect.REPLAYED_HEADER,
]
_ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "X-Request-ID",
    "Idempotency-Key",
    share_links.SHARE_TOKEN_HEADER,
]


def _version() -> str:
    try:
        return version("objectvision-gateway")
    except PackageNotFoundError:
        return "0.0.0"


def base64_length(size: int) -> int:
    """How long `size` bytes are in standard base64 (with padding)."""
    return 4 * -(-size // 3)


def body_limits(settings: GatewaySettings) -> Sequence[tuple[str, int]]:
    """Path prefixes with a body limit other than MAX_REQUEST_BYTES; upload routes go here.

    The longest prefix wins: one image under /detect, a whole batch under /detect/batch,
    each with room for the framing around the images. The images may come as base64 in a
    JSON body (ADR 0027), a third longer than as files, so that is the room given; what
    counts against MAX_UPLOAD_BYTES is each image's own bytes, however it came.
    """
    return (
        (
            detect.DETECT_PREFIX,
            base64_length(settings.max_upload_bytes) + detect.MULTIPART_OVERHEAD_BYTES,
        ),
        (
            detect.BATCH_PATH,
            base64_length(settings.max_batch_bytes)
            + detect.MULTIPART_OVERHEAD_BYTES
            + settings.max_batch_files * detect.PART_OVERHEAD_BYTES,
        ),
        (video.VIDEO_PATH, settings.max_video_bytes + detect.MULTIPART_OVERHEAD_BYTES),
        (evaluation.JOBS_PREFIX, MAX_LABELS_BYTES + detect.MULTIPART_OVERHEAD_BYTES),
    )


def _jwks_cache(clients: ServiceClients, settings: GatewaySettings) -> JwksCache:
    async def fetch() -> auth_pb2.Jwks:
        jwks: auth_pb2.Jwks = await clients.auth.GetJwks(
            empty_pb2.Empty(), timeout=settings.grpc_deadline_seconds
        )
        return jwks

    return JwksCache(
        fetch,
        min_refresh_seconds=settings.jwks_min_refresh_seconds,
        max_age_seconds=settings.jwks_max_age_seconds,
    )


async def _prefetch_keys(jwks: JwksCache) -> None:
    """Fetch the keys at startup, but start anyway if the auth service is not up yet:
    the first token then fetches them, and /ready reports the auth service meanwhile."""
    try:
        await jwks.refresh()
    except grpc.aio.AioRpcError as exc:
        logger.warning("could not fetch JWKS at startup", extra={"grpc_code": exc.code().name})


def create_app(settings: GatewaySettings, *, clients: ServiceClients | None = None) -> FastAPI:
    """The gateway app. `clients` are used as given and left open; otherwise the app opens
    its own from `settings` at startup and closes them at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        live = clients if clients is not None else ServiceClients.connect(settings)
        app.state.clients = live
        app.state.rate_limiter = RateLimiter(live.redis)
        app.state.jwks = _jwks_cache(live, settings)
        await _prefetch_keys(app.state.jwks)
        try:
            async with pinned_http_client() as http:
                app.state.image_urls = UrlFetcher(
                    http,
                    kind=IMAGE,
                    allow_private=settings.image_url_allow_private,
                    max_bytes=settings.max_upload_bytes,
                    timeout_seconds=settings.image_url_timeout_seconds,
                )
                app.state.video_urls = UrlFetcher(
                    http,
                    kind=VIDEO,
                    allow_private=settings.image_url_allow_private,
                    max_bytes=settings.max_video_bytes,
                    timeout_seconds=settings.video_url_timeout_seconds,
                )
                yield
        finally:
            if clients is None:
                await live.aclose()

    # fastapi-offline serves Swagger UI's and ReDoc's assets from its own package: /docs and
    # /redoc work without internet, as the console does (nothing loaded from a CDN).
    app = FastAPIOffline(
        title="ObjectVision API",
        version=_version(),
        description="Object detection as a service. Every error response has the shape "
        '`{"error": {"code", "message", "request_id", "details"?}}`.',
        lifespan=lifespan,
        # Starlette answers `/path/` with a redirect to an absolute URL built from the
        # request's Host header (an open redirect through any cache or proxy that keeps the
        # Host). Every route has one spelling; the other is the standard JSON 404.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.metrics = GatewayMetrics()
    app.state.live_streams = LiveStreams(
        settings.ws_max_streams_per_account, metrics=app.state.metrics
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)

    # Added innermost first: the request id wraps everything, so every log line, metric
    # and error body (even a CORS refusal or a 413) carries it.
    app.add_middleware(
        BodySizeLimitMiddleware,
        default_limit=settings.max_request_bytes,
        limits=body_limits(settings),
    )
    app.add_middleware(UnhandledErrorMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=_ALLOWED_HEADERS,
            expose_headers=_EXPOSED_HEADERS,
        )
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    return app


def create_ops_app(app: FastAPI) -> FastAPI:
    """The metrics port's app: /ready, /metrics and /health, and nothing of the API.

    It shares `app`'s state (settings, metrics registry, and the clients the API app's
    lifespan opens), so it must be served beside `app`, after its start-up (gateway.server).
    """
    ops = FastAPI(
        title="ObjectVision gateway operations",
        version=_version(),
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    ops.state = app.state
    install_error_handlers(ops)
    ops.include_router(health.ops_router)
    ops.add_middleware(UnhandledErrorMiddleware)
    ops.add_middleware(RequestIdMiddleware)
    return ops
