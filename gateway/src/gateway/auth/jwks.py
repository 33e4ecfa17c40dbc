"""The auth service's verification keys, fetched once and again when a token names a new key."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from gateway.auth.tokens import InvalidTokenError, KeySet
from objectvision.v1 import auth_pb2

logger = logging.getLogger(__name__)


class JwksCache:
    """Holds the current KeySet; an unknown `kid` triggers one refetch (key rotation).

    Refetches are at least `min_refresh_seconds` apart and serialised, so a flood of tokens
    with made-up key ids costs the auth service one GetJwks call per interval.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[auth_pb2.Jwks]],
        *,
        min_refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._min_refresh_seconds = min_refresh_seconds
        self._clock = clock
        self._key_set: KeySet | None = None
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def key_set(self) -> KeySet | None:
        return self._key_set

    async def refresh(self) -> KeySet:
        """Fetch the keys now; raises grpc.aio.AioRpcError when the auth service fails."""
        async with self._lock:
            return await self._refresh_locked()

    async def _refresh_locked(self) -> KeySet:
        self._fetched_at = self._clock()
        key_set = KeySet.from_jwks(await self._fetch())
        if not key_set.keys:
            logger.error("the auth service published no usable EdDSA key")
        self._key_set = key_set
        logger.info("fetched JWKS", extra={"key_ids": sorted(key_set.keys)})
        return key_set

    async def key_set_for(self, kid: str) -> KeySet:
        """A KeySet that holds `kid`, refetching once if needed; InvalidTokenError if none does."""
        current = self._key_set
        if current is not None and kid in current.keys:
            return current
        async with self._lock:
            current = self._key_set
            if current is not None and kid in current.keys:
                return current
            recently = self._fetched_at is not None and (
                self._clock() - self._fetched_at < self._min_refresh_seconds
            )
            if current is None or not recently:
                current = await self._refresh_locked()
        if kid not in current.keys:
            raise InvalidTokenError("the access token is invalid")
        return current
