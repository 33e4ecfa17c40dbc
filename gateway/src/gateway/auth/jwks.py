"""The auth service's verification keys: fetched at startup, again when a token names a new
key, and again once the copy is older than its maximum age, so that a key the auth service
stopped publishing (the end of a key rotation) stops verifying here too."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import grpc

from gateway.auth.tokens import InvalidTokenError, KeySet
from objectvision.v1 import auth_pb2

logger = logging.getLogger(__name__)

# How long a fetched key set is used before it is fetched again (JWKS_MAX_AGE_SECONDS).
DEFAULT_MAX_AGE_SECONDS = 300.0


class JwksCache:
    """Holds the current KeySet; an unknown `kid` triggers one refetch (a new signing key),
    and so does the first lookup after `max_age_seconds` (a key withdrawn at the end of a
    rotation stops verifying then, docs/runbooks.md).

    Refetches are at least `min_refresh_seconds` apart and serialised, so a flood of tokens
    with made-up key ids costs the auth service one GetJwks call per interval. When the
    refetch of an expired key set fails, that set is kept and the refetch tried again after
    `min_refresh_seconds`: an auth service outage does not turn every request into an
    error (tokens verify here without it), at the price of a withdrawn key verifying until
    the auth service answers again.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[auth_pb2.Jwks]],
        *,
        min_refresh_seconds: float,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._min_refresh_seconds = min_refresh_seconds
        self._max_age_seconds = max_age_seconds
        self._clock = clock
        self._key_set: KeySet | None = None
        # When the key set was fetched (its age), and when a fetch last started (the rate
        # limit); they differ after a failed fetch.
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def key_set(self) -> KeySet | None:
        return self._key_set

    async def refresh(self) -> KeySet:
        """Fetch the keys now; raises grpc.aio.AioRpcError when the auth service fails."""
        async with self._lock:
            return await self._refresh_locked()

    async def _refresh_locked(self) -> KeySet:
        self._attempted_at = self._clock()
        key_set = KeySet.from_jwks(await self._fetch())
        if not key_set.keys:
            logger.error("the auth service published no usable EdDSA key")
        self._key_set, self._fetched_at = key_set, self._attempted_at
        logger.info("fetched JWKS", extra={"key_ids": sorted(key_set.keys)})
        return key_set

    def _expired(self) -> bool:
        return self._fetched_at is None or (
            self._clock() - self._fetched_at >= self._max_age_seconds
        )

    def _attempted_recently(self) -> bool:
        return self._attempted_at is not None and (
            self._clock() - self._attempted_at < self._min_refresh_seconds
        )

    async def key_set_for(self, kid: str) -> KeySet:
        """A live KeySet that holds `kid`, refetching once if needed; InvalidTokenError if
        none does."""
        current = self._key_set
        if current is not None and kid in current.keys and not self._expired():
            return current
        if current is not None and kid in current.keys and self._lock.locked():
            # A refetch is under way: this request does not wait for it, the next ones
            # get its result.
            return current
        async with self._lock:
            current = self._key_set
            if current is None:
                current = await self._refresh_locked()
            elif kid not in current.keys:
                if not self._attempted_recently():
                    current = await self._refresh_locked()
            elif self._expired() and not self._attempted_recently():
                current = await self._refresh_or_keep(current)
        if kid not in current.keys:
            raise InvalidTokenError("the access token is invalid")
        return current

    async def _refresh_or_keep(self, expired: KeySet) -> KeySet:
        """A fresh key set, else `expired` while the auth service cannot be reached."""
        try:
            return await self._refresh_locked()
        except grpc.aio.AioRpcError as exc:
            logger.warning(
                "could not refetch JWKS; keeping the keys fetched before",
                extra={"grpc_code": exc.code().name, "key_ids": sorted(expired.keys)},
            )
            return expired
