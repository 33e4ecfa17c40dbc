"""Usage: the images an account had detected, per day, and its month against its quota
(ADR 0030).

Any credential reads its own account's usage (a device with a `detect` key can see what it
has left). Another account's usage and quotas are an admin's, from a signed-in session;
detection-service refuses anyone else (403).
"""

import uuid
from typing import Annotated

from fastapi import Query

from gateway.auth.dependencies import AccountUpstream, UserUpstream, signed_in_router
from gateway.errors import error_responses
from gateway.schemas.usage import QuotaIn, UsageOut
from gateway.upstream import Upstream
from objectvision.v1 import detection_pb2

router = signed_in_router("/api/v1/users", "usage")

UsageDays = Annotated[int, Query(ge=1, le=366, description="Days listed, ending today (UTC).")]


async def _usage(upstream: Upstream, user_id: str, days: int) -> UsageOut:
    request = detection_pb2.GetUsageRequest(user_id=user_id, days=days)
    return UsageOut.from_proto(await upstream.call(upstream.detection.GetUsage, request))


@router.get(
    "/me/usage",
    summary="Images the caller had detected, per day, and the month against its quota",
    responses=error_responses(422),
)
async def get_my_usage(upstream: UserUpstream, days: UsageDays = 31) -> UsageOut:
    """Every image answered counts once, whatever route brought it: `calls` for the detect
    routes and streams, `jobs` for batch items and video frames; answers from the result
    cache count too. Past `monthly_quota`, detection answers 429 `quota_exceeded` until
    `renews_on`. Counts are a few seconds behind (USAGE_FLUSH_SECONDS) across replicas."""
    return await _usage(upstream, "", days)


@router.get(
    "/{user_id:uuid}/usage",
    summary="An account's usage (admins)",
    responses=error_responses(403, 404, 422),
)
async def get_usage(
    user_id: uuid.UUID, upstream: AccountUpstream, days: UsageDays = 31
) -> UsageOut:
    return await _usage(upstream, str(user_id), days)


@router.put(
    "/{user_id:uuid}/quota",
    summary="Set an account's monthly quota (admins)",
    responses=error_responses(403, 404, 413, 422),
)
async def set_quota(user_id: uuid.UUID, body: QuotaIn, upstream: AccountUpstream) -> UsageOut:
    """Replaces the deployment's USAGE_MONTHLY_IMAGE_QUOTA for this account (0: none). Takes
    effect on the next request; what the account used this month still counts."""
    request = detection_pb2.SetUsageQuotaRequest(
        user_id=str(user_id), monthly_images=body.monthly_images
    )
    return UsageOut.from_proto(await upstream.call(upstream.detection.SetUsageQuota, request))


@router.delete(
    "/{user_id:uuid}/quota",
    summary="Give an account the deployment's quota again (admins)",
    responses=error_responses(403, 404, 422),
)
async def clear_quota(user_id: uuid.UUID, upstream: AccountUpstream) -> UsageOut:
    request = detection_pb2.SetUsageQuotaRequest(user_id=str(user_id))
    return UsageOut.from_proto(await upstream.call(upstream.detection.SetUsageQuota, request))
