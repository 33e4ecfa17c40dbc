"""Retention: how long an account's finished jobs and detections outside jobs are kept
before they are deleted on their own (ADR 0031).

Any credential reads its own account's period. Another account's, and setting or clearing
one, are an admin's, from a signed-in session; detection-service refuses anyone else (403).
"""

import uuid

from gateway.auth.dependencies import AccountUpstream, UserUpstream, signed_in_router
from gateway.errors import error_responses
from gateway.schemas.retention import RetentionIn, RetentionOut
from gateway.upstream import Upstream
from objectvision.v1 import detection_pb2

router = signed_in_router("/api/v1/users", "retention")


async def _retention(upstream: Upstream, user_id: str) -> RetentionOut:
    request = detection_pb2.GetRetentionRequest(user_id=user_id)
    return RetentionOut.from_proto(await upstream.call(upstream.detection.GetRetention, request))


@router.get(
    "/me/retention",
    summary="How long the caller's stored work is kept",
    responses=error_responses(),
)
async def get_my_retention(upstream: UserUpstream) -> RetentionOut:
    """Finished jobs (from when they finished) and detections outside jobs older than
    `days` are deleted with their images and videos, as their owner's own deletions would;
    a pending or processing job never is. `days` 0 keeps everything until its owner deletes
    it. The sweep runs hourly, so work may outlive its period by up to an hour."""
    return await _retention(upstream, "")


@router.get(
    "/{user_id:uuid}/retention",
    summary="An account's retention period (admins)",
    responses=error_responses(403, 404, 422),
)
async def get_retention(user_id: uuid.UUID, upstream: AccountUpstream) -> RetentionOut:
    return await _retention(upstream, str(user_id))


@router.put(
    "/{user_id:uuid}/retention",
    summary="Set an account's retention period (admins)",
    responses=error_responses(403, 404, 413, 422),
)
async def set_retention(
    user_id: uuid.UUID, body: RetentionIn, upstream: AccountUpstream
) -> RetentionOut:
    """Replaces the deployment's RETENTION_DAYS for this account (0: keep forever). The next
    sweep (hourly) deletes what is older than the new period."""
    request = detection_pb2.SetRetentionRequest(user_id=str(user_id), days=body.days)
    return RetentionOut.from_proto(await upstream.call(upstream.detection.SetRetention, request))


@router.delete(
    "/{user_id:uuid}/retention",
    summary="Give an account the deployment's retention period again (admins)",
    responses=error_responses(403, 404, 422),
)
async def clear_retention(user_id: uuid.UUID, upstream: AccountUpstream) -> RetentionOut:
    request = detection_pb2.SetRetentionRequest(user_id=str(user_id))
    return RetentionOut.from_proto(await upstream.call(upstream.detection.SetRetention, request))
