"""What routes need from the app: settings, clients and helpers, all read from `app.state`.

Typed with HTTPConnection so the same dependencies serve WebSocket routes too. Every
dependency is `async def`, even one that never awaits: FastAPI runs a plain `def` dependency
in its thread pool, one thread hop per dependency per request (gateway/tests/test_app.py
keeps it that way).
"""

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from starlette.requests import HTTPConnection

from gateway.clients import ServiceClients
from gateway.config import GatewaySettings
from gateway.live_streams import LiveStreams
from gateway.media_urls import UrlFetcher
from gateway.metrics import GatewayMetrics
from gateway.ratelimit import RateLimiter
from gateway.upstream import Upstream
from objectvision_common.limits import MAX_PAGE_LIMIT

T = TypeVar("T")
StateGetter = Callable[[HTTPConnection], Awaitable[T]]


def _app_state(name: str) -> StateGetter[Any]:
    """The dependency that answers `app.state.<name>`. app.state is untyped: each getter below
    is declared with the type that build_app put there."""

    async def get(connection: HTTPConnection) -> Any:
        return getattr(connection.app.state, name)

    return get


get_settings: StateGetter[GatewaySettings] = _app_state("settings")
get_clients: StateGetter[ServiceClients] = _app_state("clients")
get_rate_limiter: StateGetter[RateLimiter] = _app_state("rate_limiter")
get_metrics: StateGetter[GatewayMetrics] = _app_state("metrics")
get_image_fetcher: StateGetter[UrlFetcher] = _app_state("image_urls")
get_video_fetcher: StateGetter[UrlFetcher] = _app_state("video_urls")
get_live_streams: StateGetter[LiveStreams] = _app_state("live_streams")

SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
ClientsDep = Annotated[ServiceClients, Depends(get_clients)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
MetricsDep = Annotated[GatewayMetrics, Depends(get_metrics)]
ImageFetcherDep = Annotated[UrlFetcher, Depends(get_image_fetcher)]
VideoFetcherDep = Annotated[UrlFetcher, Depends(get_video_fetcher)]
LiveStreamsDep = Annotated[LiveStreams, Depends(get_live_streams)]


def forwarded_client_ip(header: str | None) -> str | None:
    """The address our proxy appended to X-Forwarded-For: the last entry, the only one a
    caller cannot choose (anything before it came from the caller)."""
    if not header:
        return None
    candidate = header.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


async def client_ip(connection: HTTPConnection, settings: SettingsDep) -> str:
    """The caller's IP, for per-IP rate limits."""
    if settings.trust_proxy_headers:
        forwarded = forwarded_client_ip(connection.headers.get("x-forwarded-for"))
        if forwarded:
            return forwarded
    return connection.client.host if connection.client else "unknown"


ClientIp = Annotated[str, Depends(client_ip)]


async def public_upstream(clients: ClientsDep, settings: SettingsDep) -> Upstream:
    """Calls made before anyone is authenticated (sign-up, login, refresh)."""
    return Upstream(clients=clients, deadline_seconds=settings.grpc_deadline_seconds)


PublicUpstream = Annotated[Upstream, Depends(public_upstream)]


MAX_OFFSET = 2**31 - 1  # Page.offset is an int32
# Page size and offset of every list route (history, jobs, video frames, webhook deliveries):
# the limits defined once.
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT)]
PageOffset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
