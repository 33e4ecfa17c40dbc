"""Share links (ADR 0048): an owner shares one stored detection, or one completed video job
(ADR 0052), with people who have no account, lists the links and revokes them; whoever holds a
link's token reads what it shows, and its image or annotated video.

The token travels in the `X-Share-Token` header, never in a URL the gateway sees: the link
people pass around opens the console with the token in the URL's fragment, which browsers
keep to themselves, and the console sends it as the header. So no access log, trace, proxy
log or Referer ever holds one.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import StreamingResponse

from gateway.auth.dependencies import ResultsShareUpstream, signed_in_router, throttle_shared_views
from gateway.dependencies import PageLimit, PageOffset, PublicUpstream, SettingsDep
from gateway.errors import error_responses
from gateway.routers.detect import IMAGE_DOWNLOAD_RESPONSES
from gateway.routers.video import VIDEO_DOWNLOAD_RESPONSES
from gateway.schemas.share_links import (
    CreatedShareLinkOut,
    SharedOut,
    ShareLinkIn,
    ShareLinkListOut,
    ShareLinkOut,
    shared_out,
)
from objectvision.v1 import common_pb2, detection_pb2
from objectvision_common.limits import DEFAULT_PAGE_LIMIT

SHARE_TOKEN_HEADER = "X-Share-Token"  # noqa: S105 - a header name
# Long enough for any token (they are 47 characters), short enough to refuse junk unread.
_MAX_TOKEN_CHARS = 128
# A shared read's answer must not be kept by shared caches, nor indexed, nor leak where it
# was read from: it is one person's detection shown to whoever holds the link.
_SHARED_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

router = signed_in_router("/api/v1/share-links", "share links")
shared_router = APIRouter(
    prefix="/api/v1/shared",
    tags=["shared"],
    dependencies=[Depends(throttle_shared_views)],
    responses=error_responses(429, 500, 503),
)

ShareToken = Annotated[
    str,
    Header(
        alias=SHARE_TOKEN_HEADER,
        min_length=1,
        max_length=_MAX_TOKEN_CHARS,
        description="The share link's token (the `token` its creation answered).",
    ),
]


@router.post(
    "",
    status_code=201,
    summary="Share a stored detection or a completed video job by link",
    responses=error_responses(404, 409, 422),
)
async def create_share_link(
    body: ShareLinkIn, upstream: ResultsShareUpstream, settings: SettingsDep
) -> CreatedShareLinkOut:
    """A new link to one of the caller's detections or completed video jobs, working for
    `expires_in_days`. The answer is the only one that carries its token. At most 10 links of
    one detection or job are active at once (409 `too_many_share_links`); a video job without
    its annotated video yet (running, failed or cancelled) is 409; another account's is 404."""
    created = await upstream.call(
        upstream.detection.CreateShareLink,
        detection_pb2.CreateShareLinkRequest(
            detection_id=str(body.detection_id) if body.detection_id else "",
            job_id=str(body.job_id) if body.job_id else "",
            expires_in_days=body.expires_in_days,
            redact=body.redact,
        ),
    )
    return CreatedShareLinkOut.of(created, console_base_url=settings.public_base_url)


@router.get("", summary="The caller's share links", responses=error_responses(422))
async def list_share_links(
    upstream: ResultsShareUpstream,
    detection_id: Annotated[
        uuid.UUID | None, Query(description="Only this detection's links.")
    ] = None,
    job_id: Annotated[uuid.UUID | None, Query(description="Only this video job's links.")] = None,
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
    offset: PageOffset = 0,
) -> ShareLinkListOut:
    """Newest first, revoked and expired ones included (`active` says which work)."""
    listed = await upstream.call(
        upstream.detection.ListShareLinks,
        detection_pb2.ListShareLinksRequest(
            detection_id=str(detection_id) if detection_id else "",
            job_id=str(job_id) if job_id else "",
            page=common_pb2.Page(limit=limit, offset=offset),
        ),
    )
    return ShareLinkListOut.from_proto(listed)


@router.delete(
    "/{share_link_id:uuid}",
    summary="Revoke a share link",
    responses=error_responses(404, 422),
)
async def revoke_share_link(
    share_link_id: uuid.UUID, upstream: ResultsShareUpstream
) -> ShareLinkOut:
    """The link stops working at once and stays listed as revoked; revoking it again answers
    it unchanged."""
    revoked = await upstream.call(
        upstream.detection.RevokeShareLink,
        detection_pb2.RevokeShareLinkRequest(share_link_id=str(share_link_id)),
    )
    return ShareLinkOut.from_proto(revoked)


@shared_router.get(
    "",
    summary="What a share link shows",
    responses=error_responses(404, 422),
)
async def get_shared(token: ShareToken, upstream: PublicUpstream, response: Response) -> SharedOut:
    """No account needed: the token is the credential. `kind` says what the link shows: a
    detection (its image at /image) or a video job (its annotated video at /video). An
    unknown, expired or revoked link, or one whose owner's account is suspended, is 404 with
    the code `share_link_not_found`, `share_link_expired`, `share_link_revoked` or
    `share_link_unavailable`."""
    shared = await upstream.call(
        upstream.detection.GetShared, detection_pb2.GetSharedRequest(token=token)
    )
    response.headers.update(_SHARED_HEADERS)
    return shared_out(shared)


@shared_router.get(
    "/image",
    summary="A shared detection's image",
    response_class=StreamingResponse,
    responses=IMAGE_DOWNLOAD_RESPONSES,
)
async def get_shared_image(
    token: ShareToken,
    upstream: PublicUpstream,
    settings: SettingsDep,
    annotated: Annotated[
        bool, Query(description="Draw the detected boxes (JPEG); false: the image as uploaded.")
    ] = True,
) -> StreamingResponse:
    """Refused as the detection is (404 and the same codes; 409 `share_link_shows_video` for a
    video job's link). A link made with `redact` pixelates those classes in both forms, so the
    image as uploaded is never sent."""
    download = await upstream.with_deadline(settings.detect_deadline_seconds).download(
        upstream.detection.GetSharedImage,
        detection_pb2.GetSharedImageRequest(token=token, annotated=annotated),
        what="shared image",
    )
    return StreamingResponse(
        download.body,
        media_type=download.first.content_type or "application/octet-stream",
        headers=_SHARED_HEADERS,
    )


@shared_router.get(
    "/video",
    summary="A shared video job's annotated video",
    response_class=StreamingResponse,
    responses=VIDEO_DOWNLOAD_RESPONSES,
)
async def get_shared_video(
    token: ShareToken, upstream: PublicUpstream, settings: SettingsDep
) -> StreamingResponse:
    """Refused as the link is (404 and the same codes; 409 `share_link_shows_image` for a
    detection's link); streamed as the service reads it."""
    download = await upstream.with_deadline(settings.video_deadline_seconds).download(
        upstream.detection.GetSharedVideo,
        detection_pb2.GetSharedVideoRequest(token=token),
        what="shared video",
    )
    return StreamingResponse(
        download.body,
        media_type=download.first.content_type or "video/mp4",
        headers=_SHARED_HEADERS,
    )
