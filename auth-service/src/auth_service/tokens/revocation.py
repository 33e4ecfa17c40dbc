"""Revoked access tokens and sessions, in Redis, shared with the gateway.

The key names live in objectvision_common.revocation (the gateway reads the same keys; see
docs/adr/0002-auth-tokens.md). Every entry expires once no token it refuses could still be
accepted, so the list never outgrows the set of live tokens.
"""

import math
import uuid
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth_service.tokens.access import CLOCK_SKEW
from objectvision_common.errors import Unavailable
from objectvision_common.revocation import (
    revocation_keys,
    revoked_session_key,
    revoked_token_key,
)

UNAVAILABLE = "the token revocation list is unavailable"


class RevokedAccessTokens:
    """The revocation list. Fails closed: without Redis no token can be shown to be live."""

    def __init__(self, redis: Redis, *, access_lifetime: timedelta) -> None:
        self._redis = redis
        # A token minted just now is accepted for its lifetime plus the verifiers' leeway;
        # a session's entry must outlive every token the session has minted.
        self._session_ttl = access_lifetime + CLOCK_SKEW

    @property
    def session_ttl(self) -> timedelta:
        """How long an access token minted now can still be accepted."""
        return self._session_ttl

    async def revoke(self, *, jti: str, until: datetime, now: datetime | None = None) -> None:
        """Refuse `jti` until `until`, after which the token is refused as expired anyway."""
        remaining = (until - (now or datetime.now(UTC))).total_seconds()
        if remaining <= 0:
            return
        await self._set(revoked_token_key(jti), math.ceil(remaining))

    async def revoke_session(self, session_id: uuid.UUID) -> None:
        """Refuse every access token minted for session `session_id` so far.

        No new ones can be minted once its refresh-token family is revoked, so the entry is
        needed only as long as the newest existing one could be accepted.
        """
        await self._set(
            revoked_session_key(str(session_id)), math.ceil(self._session_ttl.total_seconds())
        )

    async def is_revoked(self, *, jti: str, session_id: uuid.UUID) -> bool:
        """Whether this token, or the session it belongs to, has been revoked."""
        try:
            return bool(await self._redis.exists(*revocation_keys(jti=jti, sid=str(session_id))))
        except RedisError as exc:
            raise Unavailable(UNAVAILABLE) from exc

    async def _set(self, key: str, ttl_seconds: int) -> None:
        try:
            await self._redis.set(key, "1", ex=ttl_seconds)
        except RedisError as exc:
            raise Unavailable(UNAVAILABLE) from exc
